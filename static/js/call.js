// The call page: a mesh of RTCPeerConnections (one per remote person), tiles, controls and
// chat. Signaling (the websocket, heartbeat, reconnects) lives in signaling.js; the contract
// with the server is docs/protocol.md. All user text goes through textContent.
import { CLOSE, Signaling } from "./signaling.js";
import { setupExperience } from "./experience.js";
import { setupModeration } from "./moderation.js";
import { startDiagnostics } from "./diagnostics.js";
import { avatarHue, avatarInitial, fmt, gettext, ngettext } from "./dom.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const isVoice = config.kind === "voice";
const KINDS = isVoice ? ["audio"] : ["audio", "video"];
const HISTORY_PAGE = config.history_page_size || 50; // the server's CHAT_HISTORY_SIZE
const CHAT_MAX = 2000;
const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };

const $ = (id) => document.getElementById(id);
const ui = {
  call: $("call"),
  tiles: $("tiles"),
  count: $("people-count"),
  status: $("conn-status"),
  connNotice: $("conn-notice"),
  infoNotice: $("info-notice"),
  locked: $("room-locked"),
  deviceNotice: $("device-notice"),
  deviceNoticeText: $("device-notice-text"),
  deviceRetry: $("device-retry"),
  closed: $("closed"),
  closedTitle: $("closed-title"),
  closedHint: $("closed-hint"),
  closedSignin: $("closed-signin"),
  closedRetry: $("closed-retry"),
  sound: $("enable-sound"),
  mic: $("toggle-mic"),
  camera: $("toggle-camera"), // absent in voice rooms
  chatToggle: $("toggle-chat"),
  chatClose: $("chat-close"),
  unread: $("chat-unread"),
  leave: $("leave"),
  chat: $("chat"),
  chatLog: $("chat-log"),
  chatEmpty: $("chat-empty"),
  messages: $("chat-messages"),
  loadOlder: $("load-older"),
  newMessages: $("new-messages"),
  chatError: $("chat-error"),
  chatForm: $("chat-form"),
  chatInput: $("chat-input"),
  tileTemplate: $("tile-template"),
  messageTemplate: $("message-template"),
};

const state = {
  selfId: null,
  selfName: config.me,
  isModerator: false,
  localStream: new MediaStream(),
  media: { audio: false, video: false, screen: false }, // what we tell others
  iceConfig: { iceServers: [], iceTransportPolicy: "all" },
  leaving: false,
  ended: false,
  joinedOnce: false,
  pastSelfIds: new Set(), // our own earlier seats (before a reconnect): never someone else
};

// peer_id -> Peer (see makePeer). Exposed for tests and debugging as window.confab.peers.
const peers = new Map();

const signaling = new Signaling(wsUrl(config.ws_path), { heartbeat: config.heartbeat_seconds || 20 });

// Tile menus, room controls, Hide buttons and toasts (static/js/moderation.js). Making
// moderators is for the room's owner (or staff): the server refuses anyone else.
const moderation = setupModeration({
  signaling,
  peers,
  root: ui.call,
  isVoice,
  canPromote: Boolean(config.can_promote),
});

window.confab = {
  peers,
  signaling,
  // The last resort of a repair, by hand (tests, the console): a new connection with `id`.
  rebuildConnection: (id) => peers.has(id) && rebuildConnection(peers.get(id)),
  get localStream() {
    return state.localStream;
  },
  get selfId() {
    return state.selfId;
  },
};

// The "Connection details" panel (static/js/diagnostics.js): candidates, routes, TURN hints.
const diagnostics = startDiagnostics({ signaling, peers });

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

function localTrack(kind) {
  return state.localStream.getTracks().find((track) => track.kind === kind && track.readyState === "live") || null;
}

// --- Local media ----------------------------------------------------------------------

async function acquireMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showDeviceNotice(
      gettext(
        "This browser cannot use a camera or microphone on this page (it needs a secure https address). You can still watch, listen and chat.",
      ),
      false,
    );
    refreshLocalTile();
    updateControls();
    return;
  }
  showDeviceNotice(
    isVoice
      ? gettext("Allow the microphone so that others can hear you.")
      : gettext("Allow the camera and microphone so that others can see and hear you."),
    false,
  );
  const attempts = isVoice
    ? [{ audio: true }]
    : [{ audio: true, video: VIDEO_CONSTRAINTS }, { audio: true }, { video: VIDEO_CONSTRAINTS }];
  let stream = null;
  let failure = null;
  for (const constraints of attempts) {
    try {
      stream = await experience.getUserMedia(constraints); // the pre-join preview's tracks, chosen devices
      break;
    } catch (error) {
      failure = failure || error;
      // Refused: asking again for less would be refused too.
      if (error.name === "NotAllowedError" || error.name === "SecurityError") break;
    }
  }
  for (const track of stream ? stream.getTracks() : []) {
    state.localStream.addTrack(track);
    track.addEventListener("ended", () => deviceLost(track));
  }
  const hasAudio = Boolean(localTrack("audio"));
  const hasVideo = Boolean(localTrack("video"));
  state.media.audio = hasAudio;
  state.media.video = hasVideo;
  experience.joinChoices(); // "Join with microphone off / camera off" (the pre-join screen)
  if (!hasAudio && !hasVideo) {
    const denied = failure && (failure.name === "NotAllowedError" || failure.name === "SecurityError");
    const what = isVoice ? gettext("microphone") : gettext("camera and microphone");
    showDeviceNotice(
      denied
        ? fmt(
            gettext(
              "You did not allow the %(devices)s, so nobody can see or hear you. You can still watch, listen and chat. To take part, allow them in your browser's site settings and try again.",
            ),
            { devices: what },
          )
        : fmt(
            gettext(
              "No %(devices)s could be used (none was found, or another app is using it). You can still watch, listen and chat.",
            ),
            { devices: what },
          ),
      true,
    );
  } else if (!isVoice && !hasVideo) {
    showDeviceNotice(gettext("No camera could be used: you are in the call with your microphone only."), true);
  } else if (!hasAudio) {
    showDeviceNotice(gettext("No microphone could be used: others can see you but not hear you."), true);
  } else {
    hideDeviceNotice();
  }
  refreshLocalTile();
  updateControls();
}

function showDeviceNotice(text, canRetry) {
  ui.deviceNoticeText.textContent = text;
  ui.deviceRetry.hidden = !canRetry;
  ui.deviceNotice.hidden = false;
}

function hideDeviceNotice() {
  ui.deviceNotice.hidden = true;
}

async function retryMedia() {
  ui.deviceRetry.disabled = true;
  for (const track of state.localStream.getTracks()) {
    track.stop();
    state.localStream.removeTrack(track);
  }
  await acquireMedia();
  ui.deviceRetry.disabled = false;
  // New tracks go into the existing transceivers: a renegotiation (perfect negotiation).
  for (const peer of peers.values()) if (peer.pc) attachLocalTracks(peer, false);
  sendMedia();
}

function deviceLost(track) {
  state.localStream.removeTrack(track);
  state.media[track.kind] = false;
  updateControls();
  refreshLocalTile();
  sendMedia();
  showDeviceNotice(
    track.kind === "video"
      ? gettext("Your camera stopped (it was unplugged or another app took it).")
      : gettext("Your microphone stopped (it was unplugged or another app took it)."),
    true,
  );
}

function stopLocalMedia() {
  for (const track of state.localStream.getTracks()) track.stop();
}

// --- Peers and negotiation --------------------------------------------------------------

function makePeer(id, info = {}) {
  const peer = {
    id,
    name: info.name || gettext("Someone"),
    media: { audio: true, video: !isVoice, screen: false, ...(info.media || {}) },
    pc: null,
    polite: false,
    makingOffer: false,
    ignoreOffer: false,
    settingRemoteAnswer: false,
    pendingCandidates: [], // candidates that came before the remote description
    queue: Promise.resolve(), // this peer's signaling messages, handled in order
    stream: new MediaStream(),
    tile: null,
    element: null,
    meter: null,
    loudAt: 0,
  };
  peer.tile = createTile(peer);
  return peer;
}

function ensurePeer(id, info = {}) {
  let peer = peers.get(id);
  if (!peer) {
    peer = makePeer(id, info);
    peers.set(id, peer);
    ui.tiles.append(peer.tile.root);
    peersChanged();
  } else {
    if (info.name) peer.name = info.name;
    if (info.media) Object.assign(peer.media, info.media);
  }
  peer.polite = state.selfId !== null && state.selfId < id;
  refreshTile(peer);
  return peer;
}

function removePeer(id) {
  const peer = peers.get(id);
  if (!peer) return;
  peers.delete(id);
  closeConnection(peer);
  peer.meter?.disconnect();
  if (peer.element) peer.element.srcObject = null;
  blockedMedia.delete(peer.element);
  if (blockedMedia.size === 0) ui.sound.hidden = true;
  experience.peerRemoved(peer);
  peer.tile.root.remove();
  peersChanged();
}

function removeAllPeers() {
  for (const id of [...peers.keys()]) removePeer(id);
}

function createConnection(peer) {
  const pc = new RTCPeerConnection(state.iceConfig);
  peer.pc = pc;
  experience.connectionMade(peer, pc); // before our own listeners: it notes stream ids
  diagnostics.watch(peer, pc);
  pc.addEventListener("negotiationneeded", () => makeOffer(peer, pc));
  pc.addEventListener("icecandidate", ({ candidate }) => {
    // A null candidate (end of candidates) is not sent: Chrome and Firefox do not need it.
    if (candidate && peer.pc === pc) signaling.send({ type: "candidate", to: peer.id, candidate: candidate.toJSON() });
  });
  pc.addEventListener("track", ({ track }) => remoteTrack(peer, track));
  pc.addEventListener("connectionstatechange", () => {
    if (peer.pc !== pc) return;
    refreshTile(peer);
    if (pc.connectionState === "connected") {
      capBitrates();
      repaired(peer);
    } else if (pc.connectionState === "failed") {
      restartIce(peer, pc);
    } else if (pc.connectionState === "disconnected" && !peer.graceTimer) {
      peer.graceTimer = setTimeout(() => {
        peer.graceTimer = null;
        if (peer.pc === pc && pc.connectionState === "disconnected") restartIce(peer, pc);
      }, DISCONNECTED_GRACE_MS);
    }
  });
  return pc;
}

// Repairing a connection. "disconnected" is often a blip that ICE's own consent checks get
// over, so it has DISCONNECTED_GRACE_MS first; past that, or on "failed", ICE restarts: new
// candidates on the same connection (negotiationneeded fires and perfect negotiation takes
// it from there), so tracks, screens and file channels stay as they are and nobody's tile
// changes. Only a connection still not connected REBUILD_AFTER_MS after its restart is
// replaced by a new one.
const DISCONNECTED_GRACE_MS = 2000;
const REBUILD_AFTER_MS = 15000;

function restartIce(peer, pc) {
  if (peer.pc !== pc || peer.rebuildTimer) return; // a restart is under way: its timer decides
  peer.iceRestarts = (peer.iceRestarts || 0) + 1;
  pc.restartIce();
  peer.rebuildTimer = setTimeout(() => {
    peer.rebuildTimer = null;
    if (peer.pc === pc && pc.connectionState !== "connected") rebuildConnection(peer);
  }, REBUILD_AFTER_MS);
}

function repaired(peer) {
  clearTimeout(peer.graceTimer);
  clearTimeout(peer.rebuildTimer);
  peer.graceTimer = peer.rebuildTimer = null;
}

// A new RTCPeerConnection for this peer, offered from our side. The other side sees a new
// DTLS fingerprint in the offer and takes it on a new connection of its own.
function rebuildConnection(peer) {
  console.info(`call: rebuilding the connection with ${peer.id}`);
  replaceConnection(peer);
  attachLocalTracks(peer, false); // negotiationneeded: our offer goes out
}

function replaceConnection(peer) {
  peer.rebuilds = (peer.rebuilds || 0) + 1;
  closeConnection(peer);
  peer.pendingCandidates = [];
  peer.makingOffer = false;
  peer.ignoreOffer = false;
  peer.stream = new MediaStream();
  return createConnection(peer);
}

// The peer's connection and its timers (offer re-sends, repairs) end.
function closeConnection(peer) {
  clearTimeout(peer.offerRetry);
  repaired(peer);
  peer.pc?.close();
}

async function makeOffer(peer, pc) {
  if (peer.pc !== pc) return;
  try {
    peer.makingOffer = true;
    await pc.setLocalDescription();
    // A polite peer's offer may have been rolled back meanwhile by the other side's offer.
    if (pc.signalingState === "have-local-offer" && pc.localDescription.type === "offer") {
      signaling.send({ type: "offer", to: peer.id, sdp: pc.localDescription.sdp });
      peer.offerSerial = (peer.offerSerial || 0) + 1;
      retryOffer(peer, pc, peer.offerSerial);
    }
  } catch (error) {
    console.warn(`call: offer to ${peer.id} failed`, error);
  } finally {
    peer.makingOffer = false;
  }
}

// An offer can be lost with a dropped socket, or go to a peer whose socket was down. While
// it stays unanswered it is sent again now and then: the other side answers it, or, if both
// offered, perfect negotiation settles which offer wins. (The offer is told apart by a
// serial number: its SDP text grows as candidates are gathered.)
const OFFER_RETRY_MS = 2500;

function retryOffer(peer, pc, serial, attempt = 0) {
  clearTimeout(peer.offerRetry);
  peer.offerRetry = setTimeout(() => {
    if (peer.pc !== pc || peer.offerSerial !== serial || pc.signalingState !== "have-local-offer") return;
    signaling.send({ type: "offer", to: peer.id, sdp: pc.localDescription.sdp });
    if (attempt < 5) retryOffer(peer, pc, serial, attempt + 1);
  }, OFFER_RETRY_MS * 2 ** attempt);
}

// Put our tracks on the connection, one transceiver per kind. With no track of a kind the
// transceiver is recvonly, so people without a camera or microphone still get media.
// `answering`: inside an offer from the other side (reuse its transceivers, add nothing
// that the offer did not ask for unless we have something to send).
async function attachLocalTracks(peer, answering) {
  const pc = peer.pc;
  for (const kind of KINDS) {
    const track = localTrack(kind);
    const transceiver = pc
      .getTransceivers()
      .find((t) => !t.stopped && t.receiver.track && t.receiver.track.kind === kind);
    if (transceiver) {
      if (track && transceiver.sender.track !== track) {
        await transceiver.sender.replaceTrack(track);
        if (transceiver.direction === "recvonly" || transceiver.direction === "inactive") {
          transceiver.direction = "sendrecv";
        }
      }
    } else if (track || !answering) {
      pc.addTransceiver(track || kind, {
        direction: track ? "sendrecv" : "recvonly",
        streams: [state.localStream],
      });
    }
  }
}

function enqueue(peer, task) {
  peer.queue = peer.queue.then(task).catch((error) => console.warn(`call: signaling with ${peer.id}`, error));
}

async function handleDescription(peer, description) {
  let pc = peer.pc;
  if (!pc) {
    if (description.type !== "offer") return; // an answer for a connection we dropped
    pc = createConnection(peer);
  }
  // A second copy of an answer (our offer was sent again): that negotiation is settled.
  if (description.type === "answer" && pc.signalingState !== "have-local-offer") return;
  // An offer with a new DTLS identity comes from a peer that rebuilt its connection (the
  // last step of a repair): take it on a new connection of ours too.
  if (description.type === "offer" && pc.remoteDescription && fingerprint(description.sdp) !== fingerprint(pc.remoteDescription.sdp)) {
    console.info(`call: ${peer.id} rebuilt the connection; so do we`);
    pc = replaceConnection(peer);
  }
  // Perfect negotiation (docs/protocol.md, "Negotiation").
  const readyForOffer = !peer.makingOffer && (pc.signalingState === "stable" || peer.settingRemoteAnswer);
  const collision = description.type === "offer" && !readyForOffer;
  peer.ignoreOffer = !peer.polite && collision;
  if (peer.ignoreOffer) return;
  peer.settingRemoteAnswer = description.type === "answer";
  try {
    // For the polite peer in a collision this rolls its own offer back implicitly.
    await pc.setRemoteDescription(description);
  } finally {
    peer.settingRemoteAnswer = false;
  }
  for (const candidate of peer.pendingCandidates.splice(0)) await addCandidate(peer, candidate);
  if (description.type === "offer") {
    await attachLocalTracks(peer, true);
    await pc.setLocalDescription();
    signaling.send({ type: "answer", to: peer.id, sdp: pc.localDescription.sdp });
  }
}

function fingerprint(sdp) {
  return (sdp.match(/^a=fingerprint:(.+)$/m) || [])[1]?.trim() || null;
}

async function addCandidate(peer, candidate) {
  try {
    await peer.pc.addIceCandidate(candidate);
  } catch (error) {
    if (!peer.ignoreOffer) console.warn(`call: candidate from ${peer.id} refused`, error);
  }
}

const watchedTracks = new WeakSet();

function remoteTrack(peer, track) {
  if (experience.remoteTrack(peer, track)) return; // a shared screen: a tile of its own
  const tracks = peer.stream.getTracks().filter((t) => t.kind !== track.kind);
  peer.stream = new MediaStream([...tracks, track]);
  if (!watchedTracks.has(track)) {
    // A renegotiation can announce the same track again.
    watchedTracks.add(track);
    for (const type of ["mute", "unmute", "ended"]) track.addEventListener(type, () => refreshTile(peer));
  }
  bindRemoteMedia(peer);
  if (track.kind === "audio") {
    peer.meter?.disconnect();
    peer.meter = levelMeter(new MediaStream([track]));
  }
  refreshTile(peer);
}

// Video bitrate per sender: in a mesh everyone uploads one copy per person.
function capBitrates() {
  const people = peers.size + 1;
  const maxBitrate = people <= 2 ? 1_500_000 : people <= 4 ? 800_000 : people <= 6 ? 500_000 : 300_000;
  for (const peer of peers.values()) {
    for (const sender of peer.pc ? peer.pc.getSenders() : []) {
      if (!sender.track || sender.track.kind !== "video") continue;
      const parameters = sender.getParameters();
      if (!parameters.encodings || parameters.encodings.length === 0) continue;
      if (parameters.encodings[0].maxBitrate === maxBitrate) continue;
      parameters.encodings[0].maxBitrate = maxBitrate;
      sender.setParameters(parameters).catch(() => {});
    }
  }
}

// --- Signaling events ---------------------------------------------------------------------

// Devices are asked for once we are admitted: a refused person (room full, banned...) is
// not asked for a camera at all. The first welcome starts it; later ones reuse it.
let mediaReady = null;

let welcomes = 0; // a newer welcome supersedes one still waiting for devices

signaling.on("welcome", async (welcome) => {
  const generation = ++welcomes;
  // After a drop the page asks for its seat back. Resumed (same peer id): the peer
  // connections carry on, since media flows peer to peer and usually outlives the socket.
  // Otherwise this is a fresh join: new peer id, new connections.
  const resumed = Boolean(welcome.resumed) && state.selfId !== null && welcome.self.peer_id === state.selfId;
  if (!resumed) {
    removeAllPeers();
    if (state.selfId) state.pastSelfIds.add(state.selfId);
  }
  state.selfId = welcome.self.peer_id;
  state.selfName = welcome.self.name || config.me;
  state.isModerator = Boolean(welcome.self.is_moderator);
  state.iceConfig = {
    iceServers: Array.isArray(welcome.ice_servers) ? welcome.ice_servers : [],
    iceTransportPolicy: welcome.ice_transport_policy === "relay" ? "relay" : "all",
  };
  if (welcome.room) {
    if (welcome.room.capacity) config.capacity = welcome.room.capacity;
    ui.locked.hidden = !welcome.room.locked;
  }
  setCallState("joined");
  ui.connNotice.hidden = true;
  refreshLocalTile();
  mergeHistory(welcome.history || [], !state.joinedOnce);
  state.joinedOnce = true;
  if (resumed) {
    // Whoever left while we were away: their peer-left went to the lost socket.
    const present = new Set((welcome.peers || []).map((info) => info.peer_id));
    for (const id of [...peers.keys()]) if (!present.has(id)) removePeer(id);
  }
  // The server may still hold our previous seat for a while after a drop: not a person.
  const listed = (welcome.peers || [])
    .filter((info) => !state.pastSelfIds.has(info.peer_id))
    .map((info) => ensurePeer(info.peer_id, info).id);
  mediaReady = mediaReady || acquireMedia();
  await mediaReady;
  if (generation !== welcomes || state.ended || state.leaving) return; // superseded
  sendMedia();
  // The newcomer offers to everyone already here (attachLocalTracks -> negotiationneeded);
  // after a resume, to those who came while we were away.
  for (const id of listed) {
    const peer = peers.get(id);
    if (!peer) continue;
    if (peer.pc) {
      if (resumed) resumeConnection(peer);
      continue;
    }
    createConnection(peer);
    attachLocalTracks(peer, false);
  }
  // People who came after us while we waited for devices already offered and got an
  // answer without our tracks: adding them renegotiates.
  for (const peer of peers.values()) if (peer.pc && !listed.includes(peer.id)) attachLocalTracks(peer, false);
  peersChanged();
});

// A connection kept across a resumed seat: an offer that may have been lost goes out again,
// and a connection that suffered meanwhile restarts ICE.
function resumeConnection(peer) {
  const pc = peer.pc;
  if (pc.signalingState === "have-local-offer" && pc.localDescription) {
    signaling.send({ type: "offer", to: peer.id, sdp: pc.localDescription.sdp });
  }
  const states = [pc.connectionState, pc.iceConnectionState];
  if (states.includes("disconnected") || states.includes("failed")) restartIce(peer, pc);
}

function isSomeoneElse(id) {
  return typeof id === "string" && id !== state.selfId && !state.pastSelfIds.has(id);
}

signaling.on("peer-joined", ({ peer: info }) => {
  // They will send the offer; the connection is made when it arrives.
  if (isSomeoneElse(info.peer_id)) ensurePeer(info.peer_id, info);
});

signaling.on("peer-left", ({ peer_id: id }) => removePeer(id));

for (const type of ["offer", "answer"]) {
  signaling.on(type, (message) => {
    if (!isSomeoneElse(message.from)) return;
    const peer = ensurePeer(message.from);
    enqueue(peer, () => handleDescription(peer, { type, sdp: message.sdp }));
  });
}

signaling.on("candidate", (message) => {
  if (!message.candidate || !isSomeoneElse(message.from)) return;
  const peer = ensurePeer(message.from);
  enqueue(peer, async () => {
    if (!peer.pc || !peer.pc.remoteDescription) peer.pendingCandidates.push(message.candidate);
    else await addCandidate(peer, message.candidate);
  });
});

signaling.on("media", (message) => {
  const peer = peers.get(message.from);
  if (!peer) return;
  peer.media = { audio: Boolean(message.audio), video: Boolean(message.video), screen: Boolean(message.screen) };
  refreshTile(peer);
});

signaling.on("chat", (message) => addLiveMessage(message));

signaling.on("chat-hidden", ({ id }) => {
  // A moderator hid it. Its id stays known, so a reconnect's history cannot bring it back.
  ui.messages.querySelector(`[data-id="${CSS.escape(String(id))}"]`)?.remove();
  ui.chatEmpty.hidden = ui.messages.children.length > 0;
});

// Fresh TURN credentials: for ICE restarts and connections made from now on.
signaling.on("ice-servers", (message) => {
  if (!Array.isArray(message.ice_servers)) return;
  state.iceConfig = { ...state.iceConfig, iceServers: message.ice_servers };
  for (const peer of peers.values()) {
    try {
      peer.pc?.setConfiguration(state.iceConfig);
    } catch (error) {
      console.warn("call: new ICE servers refused", error);
    }
  }
});

// The server has already told the others; we turn the device off here and say why.
signaling.on("moderator-request", ({ action }) => {
  const kind = { mute: "audio", "stop-video": "video" }[action];
  if (!kind) return;
  const track = localTrack(kind);
  if (track) track.enabled = false;
  state.media[kind] = false;
  updateControls();
  refreshLocalTile();
  sendMedia();
  moderation.toast(kind === "audio" ? gettext("A moderator muted you.") : gettext("A moderator turned your camera off."));
});

signaling.on("role", ({ peer_id: id, is_moderator: isModerator }) => {
  if (id === state.selfId) {
    state.isModerator = Boolean(isModerator); // moderation.js says so in a toast
  } else if (peers.has(id)) {
    peers.get(id).isModerator = Boolean(isModerator);
  }
});

signaling.on("room-updated", (message) => {
  if (typeof message.locked === "boolean") ui.locked.hidden = !message.locked;
});

let infoTimer = null;

function showInfo(text) {
  ui.infoNotice.textContent = text;
  ui.infoNotice.hidden = false;
  clearTimeout(infoTimer);
  infoTimer = setTimeout(() => {
    ui.infoNotice.hidden = true;
  }, 8000);
}

signaling.on("error", (message) => {
  if (message.ref === "chat" || (message.code === "rate_limited" && !message.ref)) {
    showChatError(chatErrorWords(message));
  } else {
    console.warn("call: the server refused a message", message);
  }
});

signaling.on("close", ({ code, reason, final, welcomed, delay, superseded }) => {
  // 4408: a newer socket of this page holds the seat; it carries on, nothing to say.
  if (superseded) return;
  if (state.leaving) {
    removeAllPeers();
    return;
  }
  if (!final) {
    // The peer connections stay: a resumed seat keeps them (see "welcome").
    setCallState("reconnecting");
    ui.connNotice.textContent = gettext("Connection lost — reconnecting…");
    ui.connNotice.hidden = false;
    console.info(`call: connection closed (${code}); next try in ${delay} ms`);
    return;
  }
  removeAllPeers();
  showClosed(code, reason, welcomed);
});

function sendMedia() {
  signaling.send({ type: "media", audio: state.media.audio, video: state.media.video, screen: state.media.screen });
}

function setCallState(value) {
  ui.call.dataset.state = value;
  ui.status.dataset.state = value;
  ui.status.textContent =
    {
      joining: gettext("Connecting…"),
      joined: gettext("Connected"),
      reconnecting: gettext("Reconnecting…"),
      closed: gettext("Not connected"),
    }[value] || "";
}

// --- Close codes, worded for people ----------------------------------------------------------

function closeWords(code, reason, welcomed) {
  reason = reason || "";
  switch (code) {
    case CLOSE.ABUSE:
      return gettext("Your connection was closed because it sent too many invalid messages.");
    case CLOSE.NOT_SIGNED_IN:
      return gettext("Please sign in to join this room.");
    case CLOSE.NOT_FOUND:
      return gettext("This room does not exist or has been closed.");
    case CLOSE.RATE_LIMITED:
      if (/connections/i.test(reason))
        return gettext("You have too many connections open to this room. Close another tab, then try again.");
      if (/joins/i.test(reason)) return gettext("You joined too many times in a short while. Wait a minute, then try again.");
      return gettext("Your connection sent too much too fast and was closed.");
    case CLOSE.ENDED:
      return gettext("The meeting was ended by a moderator.");
    case CLOSE.FULL: {
      const numbers = reason.match(/(\d+)\s*(?:of|\/)\s*(\d+)/);
      const capacity = numbers ? numbers[2] : config.capacity;
      const count = numbers ? numbers[1] : capacity;
      return fmt(gettext("This room is full (%(count)s of %(capacity)s)."), { count, capacity });
    }
    case CLOSE.FORBIDDEN: {
      const why = reason.toLowerCase();
      if (why.includes("banned")) return gettext("You are banned from this room.");
      if (why.includes("password") || why.includes("private"))
        return gettext("This room is private: enter its password to join.");
      if (why.includes("locked")) return gettext("This room is locked: nobody new can join right now.");
      if (why.includes("removed") || why.includes("kick"))
        return gettext("You were removed from this room by a moderator.");
      if (why.includes("ended")) return gettext("The meeting was ended by a moderator.");
      if (reason) return fmt(gettext("You cannot be in this room: %(reason)s."), { reason });
      // No reason (daphne drops it). In the call, only a moderator can close with 4403.
      return welcomed
        ? gettext("You were removed from this room by a moderator.")
        : gettext("You cannot join this room right now: it may be locked, or you may be banned from it.");
    }
    default:
      return reason
        ? fmt(gettext("The connection was closed: %(reason)s."), { reason })
        : gettext("The connection was closed.");
  }
}

function closeHint(code, reason, welcomed) {
  const why = (reason || "").toLowerCase();
  if (code === CLOSE.NOT_SIGNED_IN) return gettext("Sign in, then open the room again.");
  if (code === CLOSE.ENDED) return gettext("The room is closed now. You can go back to the lobby and pick another room.");
  if (code === CLOSE.FORBIDDEN && why.includes("banned"))
    return gettext("You cannot join this room again while the ban lasts.");
  if (code === CLOSE.FORBIDDEN && (why.includes("removed") || (!why && welcomed)))
    return gettext("You may join this room again later, or go back to the lobby.");
  return gettext("You can go back to the lobby and pick another room.");
}

function showClosed(code, reason, welcomed) {
  state.ended = true;
  stopLocalMedia();
  setCallState("closed");
  ui.connNotice.hidden = true;
  ui.closedTitle.textContent = closeWords(code, reason, welcomed);
  ui.closedHint.textContent = closeHint(code, reason, welcomed);
  ui.closed.dataset.code = String(code);
  ui.closedSignin.hidden = code !== CLOSE.NOT_SIGNED_IN;
  ui.closedRetry.hidden = !(code === CLOSE.FORBIDDEN && /password|private/i.test(reason || ""));
  ui.closed.hidden = false;
  peersChanged();
  for (const button of ui.call.querySelectorAll(".controls .control:not(#toggle-chat)")) button.disabled = true;
  ui.chatInput.disabled = true;
  ui.closed.querySelector("a:not([hidden])")?.focus();
}

// --- Tiles ------------------------------------------------------------------------------

function createTile(peer, local = false) {
  const root = ui.tileTemplate.content.firstElementChild.cloneNode(true);
  const element = document.createElement(isVoice ? "audio" : "video");
  element.autoplay = true;
  element.playsInline = true;
  element.setAttribute("playsinline", "");
  element.className = "tile-media";
  if (local) element.muted = true; // never play our own microphone back
  root.prepend(element);
  if (local) root.classList.add("local");
  else root.dataset.peer = peer.id;
  peer.element = element;
  return {
    root,
    element,
    name: root.querySelector(".tile-name"),
    initial: root.querySelector(".avatar-initial"),
    avatar: root.querySelector(".avatar"),
    state: root.querySelector(".tile-state"),
    micOff: root.querySelector(".mic-off"),
    camOff: root.querySelector(".cam-off"),
  };
}

function paintAvatar(tile, name) {
  tile.initial.textContent = avatarInitial(name);
  tile.avatar.style.setProperty("--avatar-hue", avatarHue(name));
}

const STATE_WORDS = {
  joining: () => gettext("Joining…"),
  new: () => gettext("Connecting…"),
  connecting: () => gettext("Connecting…"),
  disconnected: () => gettext("Connection interrupted…"),
  failed: () => gettext("Connection failed, retrying…"),
};

function refreshTile(peer) {
  const tile = peer.tile;
  tile.name.textContent = peer.name;
  tile.root.setAttribute("aria-label", peer.name);
  paintAvatar(tile, peer.name);
  const connection = peer.pc ? peer.pc.connectionState : "joining";
  tile.root.dataset.state = connection;
  const words = STATE_WORDS[connection];
  tile.state.textContent = words ? words() : "";
  tile.state.hidden = !words;
  tile.micOff.hidden = peer.media.audio;
  tile.camOff.hidden = isVoice || peer.media.video;
  moderation.refreshTile(peer);
  const video = peer.stream.getVideoTracks()[0];
  const showVideo = !isVoice && peer.media.video && video && video.readyState === "live" && !video.muted;
  tile.root.classList.toggle("no-video", !showVideo);
  if (!peer.media.audio) tile.root.classList.remove("speaking");
  experience.refreshTile(peer);
}

function bindRemoteMedia(peer) {
  const element = peer.element;
  if (element.srcObject !== peer.stream) element.srcObject = peer.stream;
  play(element);
}

// Autoplay: a page without a user gesture may not play sound. Video then plays muted and a
// button offers to turn sound on.
const blockedMedia = new Set();

async function play(element) {
  try {
    await element.play();
  } catch (error) {
    if (error.name !== "NotAllowedError") return; // AbortError: a newer srcObject took over
    blockedMedia.add(element);
    ui.sound.hidden = false;
    if (element.tagName === "VIDEO" && !element.muted) {
      element.muted = true;
      element.play().catch(() => {});
    }
  }
}

function enableSound() {
  for (const element of blockedMedia) {
    element.muted = false;
    element.play().catch(() => {});
  }
  blockedMedia.clear();
  ui.sound.hidden = true;
  audioContext?.resume().catch(() => {});
}

// Our own tile: the preview is muted and mirrored, like a mirror.
const localPeer = {
  id: "local",
  name: config.me,
  media: state.media,
  stream: state.localStream,
  pc: null,
  meter: null,
  loudAt: 0,
};
localPeer.tile = createTile(localPeer, true);
ui.tiles.append(localPeer.tile.root);

function refreshLocalTile() {
  const tile = localPeer.tile;
  localPeer.name = state.selfName || config.me;
  const label = fmt(gettext("%(name)s (you)"), { name: localPeer.name });
  tile.name.textContent = label;
  tile.root.setAttribute("aria-label", label);
  paintAvatar(tile, localPeer.name);
  tile.state.hidden = true;
  tile.micOff.hidden = state.media.audio;
  tile.camOff.hidden = isVoice || state.media.video;
  tile.root.classList.toggle("no-video", isVoice || !state.media.video);
  if (!isVoice && localTrack("video")) {
    if (!tile.element.srcObject) {
      tile.element.srcObject = new MediaStream([localTrack("video")]);
      tile.element.play().catch(() => {});
    } else if (tile.element.srcObject.getVideoTracks()[0] !== localTrack("video")) {
      tile.element.srcObject = new MediaStream([localTrack("video")]);
    }
  }
  const audio = localTrack("audio");
  if (audio && (!localPeer.meter || localPeer.meterTrack !== audio)) {
    localPeer.meter?.disconnect();
    localPeer.meter = levelMeter(new MediaStream([audio]));
    localPeer.meterTrack = audio;
  }
  experience.refreshTile(localPeer);
}

function peersChanged() {
  const people = peers.size + 1;
  // Only once we are in: before (or after) that the count would be a guess.
  ui.count.textContent =
    state.selfId && !state.ended
      ? fmt(gettext("%(count)s of %(capacity)s"), { count: people, capacity: config.capacity })
      : "";
  ui.count.setAttribute(
    "aria-label",
    fmt(ngettext("%(count)s person in the call", "%(count)s people in the call", people), { count: people }),
  );
  layout();
  capBitrates();
}

// The grid: the tile width (from the number of columns) that gives the largest tiles for this
// many people in this space (16:9 for video, 4:3 for voice); on small screens tiles keep a
// usable size and the grid scrolls.
function layout() {
  const container = ui.tiles;
  const count = container.children.length;
  container.dataset.count = String(count);
  const style = getComputedStyle(container);
  const gap = parseFloat(style.columnGap) || 0;
  const width = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const height = container.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  if (width <= 0 || count === 0) return;
  const aspect = isVoice ? 4 / 3 : 16 / 9;
  const minWidth = Math.min(width, isVoice ? 130 : 150);
  let best = { columns: 1, size: 0 };
  for (let columns = 1; columns <= count; columns += 1) {
    const rows = Math.ceil(count / columns);
    const byWidth = (width - gap * (columns - 1)) / columns;
    const byHeight = ((height - gap * (rows - 1)) / rows) * aspect;
    const size = Math.min(byWidth, byHeight);
    if (size > best.size) best = { columns, size };
  }
  if (best.size < minWidth) {
    // Too small to fit without scrolling: as many columns of the minimum size as fit.
    const columns = Math.max(1, Math.min(count, Math.floor((width + gap) / (minWidth + gap))));
    best = { columns, size: (width - gap * (columns - 1)) / columns };
  }
  container.style.setProperty("--tile-width", `${Math.floor(best.size)}px`);
}

new ResizeObserver(() => layout()).observe(ui.tiles);

// --- Speaking indicator: the level of each audio track, through Web Audio ---------------

let audioContext = null;

function levelMeter(stream) {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  try {
    audioContext = audioContext || new Context();
    const source = audioContext.createMediaStreamSource(stream);
    const analyser = audioContext.createAnalyser();
    // Each look sees the last ~170 ms of sound, longer than the 100 ms between looks, so a
    // short sound (a syllable, the fake microphone's 35 ms beep) is never missed between
    // two looks. The level is the loudest 10 ms inside that window: averaging over the whole
    // window would drown a short sound in the silence around it.
    analyser.fftSize = 8192;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const block = Math.max(1, Math.round(audioContext.sampleRate / 100));
    return {
      level() {
        analyser.getFloatTimeDomainData(samples);
        let loudest = 0;
        for (let start = 0; start < samples.length; start += block) {
          const end = Math.min(samples.length, start + block);
          let sum = 0;
          for (let i = start; i < end; i += 1) sum += samples[i] * samples[i];
          loudest = Math.max(loudest, sum / (end - start));
        }
        return Math.sqrt(loudest);
      },
      disconnect() {
        source.disconnect();
      },
    };
  } catch (error) {
    console.warn("call: no level meter", error);
    return null;
  }
}

const SPEAKING_LEVEL = 0.02;
const SPEAKING_HOLD_MS = 500;

setInterval(() => {
  if (!audioContext || audioContext.state !== "running") return;
  const now = performance.now();
  for (const peer of [localPeer, ...peers.values()]) {
    if (!peer.meter) continue;
    if (peer.media.audio && peer.meter.level() > SPEAKING_LEVEL) peer.loudAt = now;
    peer.tile.root.classList.toggle("speaking", now - peer.loudAt < SPEAKING_HOLD_MS);
  }
}, 100);

// Browsers start an AudioContext suspended until the person interacts with the page.
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => audioContext?.resume().catch(() => {}), { capture: true });
}

// --- Controls -----------------------------------------------------------------------------

function setToggle(button, available, on) {
  if (!button) return;
  button.disabled = !available || state.ended;
  button.classList.toggle("off", !available || !on);
  const label = !available ? button.dataset.labelNone : on ? button.dataset.labelOn : button.dataset.labelOff;
  button.setAttribute("aria-label", label);
  button.title = label;
}

function updateControls() {
  setToggle(ui.mic, Boolean(localTrack("audio")), state.media.audio);
  setToggle(ui.camera, Boolean(localTrack("video")), state.media.video);
}

function toggleTrack(kind) {
  const track = localTrack(kind);
  if (!track) return;
  // Only enabled changes: the transceiver keeps its track, so nothing is renegotiated.
  track.enabled = !track.enabled;
  state.media[kind] = track.enabled;
  updateControls();
  refreshLocalTile();
  sendMedia();
}

ui.mic.addEventListener("click", () => toggleTrack("audio"));
ui.camera?.addEventListener("click", () => toggleTrack("video"));
ui.deviceRetry.addEventListener("click", () => retryMedia());
ui.sound.addEventListener("click", enableSound);

async function leave() {
  if (state.leaving) return;
  state.leaving = true;
  ui.leave.disabled = true;
  removeAllPeers();
  stopLocalMedia();
  await signaling.leave();
  location.assign(config.lobby_url);
}

ui.leave.addEventListener("click", leave);

window.addEventListener("pagehide", () => {
  if (!state.leaving && !state.ended) {
    state.leaving = true;
    signaling.send({ type: "leave" });
    signaling.close();
  }
});

// The chat panel: open beside the stage on wide screens, over it on phones.
const narrow = window.matchMedia("(max-width: 760px)");

function setChatOpen(open) {
  ui.call.classList.toggle("chat-closed", !open);
  ui.chatToggle.setAttribute("aria-expanded", String(open));
  ui.chatToggle.classList.toggle("active", open);
  if (open) {
    unread = 0;
    ui.unread.hidden = true;
    if (atBottom || ui.chatLog.scrollTop === 0) scrollChatToBottom();
  }
  layout();
}

ui.chatToggle.addEventListener("click", () => {
  const open = ui.call.classList.contains("chat-closed");
  setChatOpen(open);
  if (open) ui.chatInput.focus();
});
ui.chatClose.addEventListener("click", () => {
  setChatOpen(false);
  ui.chatToggle.focus();
});

// --- Chat ---------------------------------------------------------------------------------

const shownIds = new Set();
let oldestId = null;
let newestId = null;
let unread = 0;
let atBottom = true;
let lastSent = "";

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

function renderMessage(message) {
  const item = ui.messageTemplate.content.firstElementChild.cloneNode(true);
  item.dataset.id = String(message.id);
  if (message.from && message.from === state.selfId) item.classList.add("mine");
  item.querySelector(".message-name").textContent = message.name;
  const time = item.querySelector(".message-time");
  time.dateTime = message.sent_at;
  time.textContent = formatTime(message.sent_at);
  time.title = new Date(message.sent_at).toLocaleString();
  item.querySelector(".message-body").textContent = message.body;
  moderation.decorateMessage(item, message);
  return item;
}

function isAtBottom() {
  const log = ui.chatLog;
  return log.scrollHeight - log.scrollTop - log.clientHeight < 24;
}

function scrollChatToBottom() {
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
  atBottom = true;
  ui.newMessages.hidden = true;
}

function noteIds(list) {
  for (const message of list) {
    shownIds.add(message.id);
    if (oldestId === null || message.id < oldestId) oldestId = message.id;
    if (newestId === null || message.id > newestId) newestId = message.id;
  }
  ui.chatEmpty.hidden = ui.messages.children.length > 0;
}

// welcome.history: on the first join it is the whole log; after a reconnect only what is
// newer than what we have is added.
function mergeHistory(history, first) {
  if (!first) {
    // Messages hidden while we were away: shown here, missing from the history's span.
    const visible = new Set(history.map((m) => m.id));
    const from = history.length < HISTORY_PAGE ? -Infinity : Math.min(...visible);
    for (const item of [...ui.messages.children]) {
      const id = Number(item.dataset.id);
      if (id >= from && !visible.has(id)) item.remove();
    }
  }
  const fresh = history.filter((m) => !shownIds.has(m.id) && (first || newestId === null || m.id > newestId));
  for (const message of fresh) ui.messages.append(renderMessage(message));
  noteIds(fresh);
  if (first) ui.loadOlder.hidden = history.length < HISTORY_PAGE;
  scrollChatToBottom();
}

function addLiveMessage(message) {
  if (shownIds.has(message.id)) return;
  const wasAtBottom = isAtBottom();
  ui.messages.append(renderMessage(message));
  noteIds([message]);
  const mine = message.from === state.selfId;
  if (mine) {
    hideChatError();
    lastSent = "";
  }
  if (mine || wasAtBottom) scrollChatToBottom();
  else ui.newMessages.hidden = false;
  if (ui.call.classList.contains("chat-closed") && !mine) {
    unread += 1;
    ui.unread.textContent = unread > 9 ? "9+" : String(unread);
    ui.unread.hidden = false;
  }
}

async function loadOlder() {
  if (oldestId === null) return;
  ui.loadOlder.disabled = true;
  try {
    const response = await fetch(`${config.messages_url}?before=${encodeURIComponent(oldestId)}`, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const page = await response.json();
    const older = page.messages.filter((m) => !shownIds.has(m.id));
    const log = ui.chatLog;
    const fromBottom = log.scrollHeight - log.scrollTop;
    const fragment = document.createDocumentFragment();
    for (const message of older) fragment.append(renderMessage(message));
    ui.messages.prepend(fragment);
    noteIds(older);
    log.scrollTop = log.scrollHeight - fromBottom; // keep what the person was reading in place
    ui.loadOlder.hidden = !page.has_more;
  } catch (error) {
    console.warn("call: older messages", error);
    showChatError(gettext("Older messages could not be loaded. Try again in a moment."));
  } finally {
    ui.loadOlder.disabled = false;
  }
}

function chatErrorWords(message) {
  switch (message.code) {
    case "rate_limited":
      return gettext("You are sending messages too quickly. Wait a moment, then try again.");
    case "server_error":
      return gettext("Your message could not be saved. Please send it again.");
    case "bad_message":
      return fmt(gettext("That message could not be sent: it must not be empty or longer than %(max)s characters."), {
        max: CHAT_MAX.toLocaleString(),
      });
    default:
      return gettext("That message could not be sent.");
  }
}

function showChatError(text) {
  ui.chatError.textContent = text;
  ui.chatError.hidden = false;
  // Give the text back so that it can be sent again.
  if (lastSent && !ui.chatInput.value) ui.chatInput.value = lastSent;
}

function hideChatError() {
  ui.chatError.hidden = true;
  ui.chatError.textContent = "";
}

function sendChat() {
  const body = ui.chatInput.value.trim();
  if (!body) return;
  if (body.length > CHAT_MAX) {
    showChatError(
      fmt(gettext("Messages can be at most %(max)s characters long (this one has %(length)s)."), {
        max: CHAT_MAX.toLocaleString(),
        length: body.length.toLocaleString(),
      }),
    );
    return;
  }
  if (!signaling.send({ type: "chat", body })) {
    showChatError(gettext("You are not connected right now; the message was not sent."));
    return;
  }
  lastSent = body;
  ui.chatInput.value = "";
  hideChatError();
}

ui.chatForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sendChat();
});
ui.chatInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendChat();
  }
});
ui.chatLog.addEventListener("scroll", () => {
  atBottom = isAtBottom();
  if (atBottom) ui.newMessages.hidden = true;
});
ui.newMessages.addEventListener("click", scrollChatToBottom);
ui.loadOlder.addEventListener("click", loadOlder);

// --- Pre-join screen, devices, screen share, active speaker, quality, pin, shortcuts -------
// static/js/experience.js and its modules; they reach the call only through this.

const experience = setupExperience({
  config,
  isVoice,
  ui,
  state,
  peers,
  signaling,
  moderation, // its toasts and tile menus (files.js adds "Send a file…")
  localPeer,
  localTrack,
  sendMedia,
  showInfo,
  updateControls,
  refreshTile,
  refreshLocalTile,
  attachLocalTracks,
  deviceLost,
  layout,
  levelMeter,
  get audioContext() {
    return audioContext;
  },
});

// --- Start --------------------------------------------------------------------------------

async function start() {
  setCallState("joining");
  setChatOpen(!narrow.matches);
  refreshLocalTile();
  peersChanged();
  updateControls();
  await experience.beforeJoin(); // the pre-join screen: preview, devices, who is here, Join
  signaling.connect();
}

start();
