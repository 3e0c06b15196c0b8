// Screen share (video rooms): getDisplayMedia, sent to everyone as a second video track
// next to the camera, and shown by the others as a tile of its own beside the sharer's.
//
// How a screen travels (docs/protocol.md, "Negotiation"): the camera and microphone go in
// one MediaStream (call.js's localStream), so their m-lines carry the same msid stream id; a
// screen goes in a MediaStream of its own, on a video m-line of its own. The sharer puts its
// screen track on a spare video transceiver of each connection (one the other side made for
// its own screen, direction recvonly, or a new one, direction sendrecv), renegotiates through
// perfect negotiation, and says `media {screen: true}`. A receiver takes a video track for a
// screen when its stream id is not the one of that peer's microphone; for a peer that sends
// no sound, when it is not on the first video m-line (the camera's comes first: it is made
// with the connection, screens only after the first negotiation). It shows a screen tile
// while the peer says screen:true and the track is live and unmuted. Stopping empties the
// sender (replaceTrack(null)), sets the direction back to recvonly (a renegotiation, the
// receiver's track is muted) and says `media {screen: false}`.
import { el, fmt, gettext, icon, label } from "./dom.js";

const SCREEN_CONSTRAINTS = { video: { frameRate: { ideal: 15, max: 30 } }, audio: false };

function live(transceiver) {
  return transceiver.currentDirection !== "stopped" && transceiver.direction !== "stopped";
}

function isVideo(transceiver) {
  return live(transceiver) && transceiver.receiver.track?.kind === "video";
}

// The transceiver call.js sends the camera on: the first video one it made or found.
function cameraTransceiver(pc) {
  return pc.getTransceivers().find(isVideo) || null;
}

// Video transceivers in m-line order (negotiated ones by their place in the SDP).
export function videoTransceivers(pc) {
  const sdp = pc.remoteDescription?.sdp || pc.localDescription?.sdp || "";
  const order = [...sdp.matchAll(/^a=mid:(\S+)/gm)].map((match) => match[1]);
  const rank = (t) => (t.mid !== null && order.includes(t.mid) ? order.indexOf(t.mid) : Infinity);
  return pc.getTransceivers().filter(isVideo).sort((a, b) => rank(a) - rank(b));
}

export function setupScreenShare(api, { decorate = () => {}, shown = () => {} } = {}) {
  const supported = !api.isVoice && Boolean(navigator.mediaDevices?.getDisplayMedia);
  let track = null; // our screen track while sharing
  let stream = null; // its own MediaStream: the msid the others see
  let localTile = null;
  const pending = new WeakSet(); // connections being given the screen right now
  const watched = new WeakSet();

  const button = supported ? el("button", { type: "button", className: "control xp-screen-button" }, icon("screen"), icon("screenStop")) : null;

  function paintButton() {
    if (!button) return;
    button.classList.toggle("active", Boolean(track));
    button.setAttribute("aria-pressed", String(Boolean(track)));
    label(button, track ? gettext("Stop sharing your screen") : gettext("Share your screen"));
  }
  paintButton();

  async function start() {
    if (track || !supported || api.state.ended) return;
    let display;
    try {
      display = await navigator.mediaDevices.getDisplayMedia(SCREEN_CONSTRAINTS);
    } catch (error) {
      if (error.name !== "NotAllowedError" && error.name !== "AbortError") {
        api.showInfo(gettext("Your screen could not be shared."));
        console.warn("screen: getDisplayMedia failed", error);
      }
      return;
    }
    const [screen] = display.getVideoTracks();
    if (!screen) return;
    if ("contentHint" in screen) screen.contentHint = "detail";
    track = screen;
    stream = new MediaStream([screen]);
    // The browser's own "Stop sharing" bar ends the track.
    screen.addEventListener("ended", () => {
      if (track === screen) stop();
    });
    api.state.media.screen = true;
    api.sendMedia();
    showLocalTile();
    paintButton();
    for (const peer of api.peers.values()) send(peer);
  }

  async function stop() {
    const old = track;
    if (!old) return;
    track = null;
    stream = null;
    old.stop();
    api.state.media.screen = false;
    if (!api.state.ended) api.sendMedia();
    hideLocalTile();
    paintButton();
    for (const peer of api.peers.values()) {
      const pc = peer.pc;
      if (!pc || pc.connectionState === "closed") continue;
      for (const transceiver of pc.getTransceivers()) {
        if (transceiver.sender.track !== old) continue;
        try {
          await transceiver.sender.replaceTrack(null);
          if (live(transceiver)) transceiver.direction = "recvonly";
        } catch (error) {
          console.warn("screen: stop on a connection failed", error);
        }
      }
    }
  }

  function toggle() {
    return track ? stop() : start();
  }

  button?.addEventListener("click", toggle);

  // Give our screen to one connection, once its first negotiation is done (so that the
  // camera's m-line comes first). Called when sharing starts and whenever a connection
  // settles (a newcomer's connection gets the screen after its first offer and answer).
  async function send(peer) {
    const pc = peer.pc;
    const screen = track;
    if (!screen || !pc || pending.has(pc) || pc.connectionState === "closed") return;
    if (pc.signalingState !== "stable" || !pc.currentRemoteDescription) return;
    const camera = cameraTransceiver(pc);
    const videos = pc.getTransceivers().filter(isVideo);
    if (!camera || videos.some((t) => t.sender.track === screen)) return;
    pending.add(pc);
    try {
      const free = videos.find((t) => t !== camera && !t.sender.track);
      if (free) {
        await free.sender.replaceTrack(screen);
        free.sender.setStreams?.(stream);
        if (free.direction !== "sendrecv") free.direction = "sendrecv";
      } else {
        pc.addTransceiver(screen, { direction: "sendrecv", streams: [stream] });
      }
    } catch (error) {
      console.warn(`screen: sharing with ${peer.id} failed`, error);
    } finally {
      pending.delete(pc);
    }
  }

  const streamsOf = new WeakMap(); // remote track -> the stream ids it came with (msid)

  // Called before call.js adds its own listeners, so that a track's stream ids are known
  // when call.js hands the track to remoteTrack().
  function connectionMade(peer, pc) {
    pc.addEventListener("track", ({ track: remote, streams }) => {
      const ids = streams.map((stream) => stream.id);
      streamsOf.set(remote, ids);
      if (remote.kind === "audio" && ids.length) peer.mainStreamId = ids[0];
    });
    pc.addEventListener("signalingstatechange", () => {
      if (peer.pc === pc && track) send(peer);
    });
  }

  function isScreen(peer, remote) {
    const ids = streamsOf.get(remote) || [];
    if (peer.mainStreamId && ids.length) return !ids.includes(peer.mainStreamId);
    const videos = videoTransceivers(peer.pc);
    const transceiver = videos.find((t) => t.receiver.track === remote);
    return Boolean(transceiver) && transceiver !== videos[0];
  }

  // A remote track: a screen gets its own tile; the camera and microphone stay call.js's.
  // Returns true when it was a screen.
  function remoteTrack(peer, remote) {
    if (remote.kind !== "video" || !peer.pc || !isScreen(peer, remote)) return false;
    peer.screenTrack = remote;
    if (!watched.has(remote)) {
      watched.add(remote);
      for (const type of ["mute", "unmute", "ended"]) remote.addEventListener(type, () => refresh(peer));
    }
    refresh(peer);
    return true;
  }

  function makeTile(className) {
    const video = el("video", { className: "tile-media", autoplay: true, playsinline: true });
    video.muted = true; // a screen carries no sound here
    const name = el("span", { className: "tile-name" });
    const root = el(
      "div",
      { className: `tile screen ${className}`, role: "listitem" },
      video,
      el("div", { className: "tile-label" }, el("span", { className: "tile-screen-icon" }, icon("screen")), name),
    );
    return { root, video, name };
  }

  function refresh(peer) {
    const remote = peer.screenTrack;
    const show = Boolean(peer.media?.screen && remote && remote.readyState === "live" && !remote.muted && peers().has(peer.id));
    if (show && !peer.screenTile) {
      peer.screenTile = makeTile("remote-screen");
      peer.screenTile.root.dataset.screenOf = peer.id;
      peer.tile.root.after(peer.screenTile.root);
      api.layout();
      shown(peer.screenTile.root);
    }
    if (!show && peer.screenTile) {
      removeTile(peer.screenTile);
      peer.screenTile = null;
      api.layout();
    }
    if (!show) return;
    const tile = peer.screenTile;
    if (tile.video.srcObject?.getVideoTracks()[0] !== remote) {
      tile.video.srcObject = new MediaStream([remote]);
      tile.video.play().catch(() => {});
    }
    const words = fmt(gettext("%(name)s's screen"), { name: peer.name });
    tile.name.textContent = words;
    tile.root.setAttribute("aria-label", words);
    decorate(tile.root);
  }

  const peers = () => api.peers;

  function removeTile(tile) {
    tile.video.srcObject = null;
    tile.root.remove();
  }

  function showLocalTile() {
    if (localTile) return;
    localTile = makeTile("local-screen");
    localTile.video.srcObject = stream;
    localTile.video.play().catch(() => {});
    localTile.name.textContent = gettext("Your screen");
    localTile.root.setAttribute("aria-label", gettext("Your screen"));
    api.localPeer.tile.root.after(localTile.root);
    decorate(localTile.root);
    api.layout();
  }

  function hideLocalTile() {
    if (!localTile) return;
    removeTile(localTile);
    localTile = null;
    api.layout();
  }

  function peerRemoved(peer) {
    if (peer.screenTile) removeTile(peer.screenTile);
    peer.screenTile = null;
    peer.screenTrack = null;
  }

  // The call is over (left, refused, ended): the screen stops with it.
  api.signaling.on("close", ({ final, superseded }) => {
    if (final && !superseded) stop();
  });

  return {
    supported,
    button,
    start,
    stop,
    toggle,
    connectionMade,
    remoteTrack,
    refresh,
    peerRemoved,
    get sharing() {
      return Boolean(track);
    },
  };
}
