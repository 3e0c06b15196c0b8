// Screen share on the page (video rooms): the Share button, our screen's tile, and a tile of
// its own for each screen shared with us, beside the sharer's. How a screen travels (its own
// MediaStream, a reused m-line, how a receiver tells a screen from a camera) is the
// transport's business (transport/mesh.js); here the button asks the session for
// setMedia("screen", on) and the tiles follow the transport's tracks tagged "screen".
//
// A remote screen tile is shown while the sharer's last `media` said screen: true and the
// track is live and unmuted (stopping mutes it on our side: the m-line stays for next time).
import { el, fmt, gettext, icon, label } from "./dom.js";

export function setupScreenShare({ session, local, transport, tiles, showInfo }, { decorate = () => {}, shown = () => {} } = {}) {
  const supported = local.screenSupported;
  let localTile = null;
  const screens = new Map(); // peer_id -> {track, tile}: what they share with us
  const watched = new WeakSet();

  const button = supported ? el("button", { type: "button", className: "control xp-screen-button" }, icon("screen"), icon("screenStop")) : null;

  function sharing() {
    return Boolean(local.screenTrack);
  }

  function paintButton() {
    if (!button) return;
    button.classList.toggle("active", sharing());
    button.setAttribute("aria-pressed", String(sharing()));
    label(button, sharing() ? gettext("Stop sharing your screen") : gettext("Share your screen"));
  }
  paintButton();

  async function start() {
    try {
      await session.setMedia("screen", true);
    } catch (error) {
      showInfo(gettext("Your screen could not be shared."));
      console.warn("screen: getDisplayMedia failed", error);
    }
  }

  const stop = () => session.setMedia("screen", false);
  const toggle = () => (sharing() ? stop() : start());

  button?.addEventListener("click", toggle);

  // --- Our screen -----------------------------------------------------------------------------

  local.on("screen", ({ track, stream }) => {
    if (track) showLocalTile(stream);
    else hideLocalTile();
    paintButton();
  });

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

  function removeTile(tile) {
    tile.video.srcObject = null;
    tile.root.remove();
  }

  function showLocalTile(stream) {
    if (localTile) return;
    localTile = makeTile("local-screen");
    localTile.video.srcObject = stream;
    localTile.video.play().catch(() => {});
    localTile.name.textContent = gettext("Your screen");
    localTile.root.setAttribute("aria-label", gettext("Your screen"));
    tiles.rootOf(null).after(localTile.root);
    decorate(localTile.root);
    tiles.layout();
  }

  function hideLocalTile() {
    if (!localTile) return;
    removeTile(localTile);
    localTile = null;
    tiles.layout();
  }

  // --- Their screens ---------------------------------------------------------------------------

  transport.on("track", ({ id, track, source }) => {
    if (source !== "screen") return;
    const screen = screens.get(id) || { track: null, tile: null };
    screen.track = track;
    screens.set(id, screen);
    if (!watched.has(track)) {
      watched.add(track);
      for (const type of ["mute", "unmute", "ended"]) track.addEventListener(type, () => refresh(id));
    }
    refresh(id);
  });

  transport.on("track-removed", ({ id, track, source }) => {
    const screen = screens.get(id);
    if (source !== "screen" || !screen || screen.track !== track) return;
    screen.track = null;
    refresh(id);
  });

  session.on("participant-updated", (participant) => refresh(participant.id));

  session.on("participant-removed", ({ id }) => {
    const screen = screens.get(id);
    if (screen?.tile) removeTile(screen.tile);
    screens.delete(id);
  });

  function refresh(id) {
    const screen = screens.get(id);
    const participant = session.participants.get(id);
    if (!screen) return;
    const remote = screen.track;
    const show = Boolean(participant?.media.screen && remote && remote.readyState === "live" && !remote.muted);
    const sharerTile = tiles.rootOf(id);
    if (show && !screen.tile && sharerTile) {
      screen.tile = makeTile("remote-screen");
      screen.tile.root.dataset.screenOf = id;
      sharerTile.after(screen.tile.root);
      tiles.layout();
      shown(screen.tile.root);
    }
    if (!show && screen.tile) {
      removeTile(screen.tile);
      screen.tile = null;
      tiles.layout();
    }
    if (!show || !screen.tile) return;
    const tile = screen.tile;
    if (tile.video.srcObject?.getVideoTracks()[0] !== remote) {
      tile.video.srcObject = new MediaStream([remote]);
      tile.video.play().catch(() => {});
    }
    const words = fmt(gettext("%(name)s's screen"), { name: participant.name });
    tile.name.textContent = words;
    tile.root.setAttribute("aria-label", words);
    decorate(tile.root);
  }

  return {
    supported,
    button,
    start,
    stop,
    toggle,
    get sharing() {
      return sharing();
    },
  };
}
