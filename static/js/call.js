// The call page. It builds the media layer (local media, the session and its transport: no
// DOM there) and the UI modules that listen to it, and paints the page's own state: the
// connection status, notices and the screen shown when the call is over. The contract with
// the server is docs/protocol.md; docs/architecture.md has the module layout. All user text
// goes through textContent.
import { Signaling } from "./signaling.js";
import { setupChat } from "./chat.js";
import { setupControls } from "./controls.js";
import { exposeDebugHandle } from "./debug.js";
import { startDiagnostics } from "./diagnostics.js";
import { gettext } from "./dom.js";
import { setupExperience } from "./experience.js";
import { setupHands } from "./hands.js";
import { setupInvites } from "./invites.js";
import { setupWaiting } from "./waiting.js";
import { LocalMedia } from "./media/local.js";
import { resumeAudio } from "./media/level.js";
import { setupModeration } from "./moderation.js";
import { setupReactions } from "./reactions.js";
import { setupRecording } from "./recording.js";
import { CallSession } from "./session.js";
import { setupTiles } from "./tiles.js";
import { closedWords, phaseWords, reconnectingWords } from "./words.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const isVoice = config.kind === "voice";

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

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

// --- The media layer ----------------------------------------------------------------------------

const signaling = new Signaling(wsUrl(config.ws_path), { heartbeat: config.heartbeat_seconds || 20 });
let experience = null; // made below; the media layer asks it for devices once admitted
const local = new LocalMedia({
  kinds: isVoice ? ["audio"] : ["audio", "video"],
  getUserMedia: (constraints) => experience.getUserMedia(constraints), // the pre-join preview's tracks, chosen devices
});
const session = new CallSession({
  config,
  signaling,
  local,
  isVoice,
  joinChoices: () => experience.joinChoices(), // "Join with microphone off / camera off"
  someone: gettext("Someone"),
});
const { transport } = session;

// The handle for tests and the console: window.confab (debug.js).
exposeDebugHandle({ signaling, session, local, transport });

// --- The UI -------------------------------------------------------------------------------------

// Tile menus, room controls, Hide buttons and toasts. Making moderators is for the room's
// owner (or staff): the server refuses anyone else.
const moderation = setupModeration({
  signaling,
  session,
  root: ui.call,
  isVoice,
  canPromote: Boolean(config.can_promote),
});
const tiles = setupTiles({ ui, config, isVoice, session, local });
moderation.attachTiles(tiles);
const chat = setupChat({ ui, config, signaling, session, moderation, layout: tiles.layout });
setupControls({ ui, config, isVoice, session, local });
// The meeting: raised hands and their queue, reactions over the tiles.
setupHands({ ui, session, tiles, moderation });
setupReactions({ ui, config, session, tiles });
// Invite links for guests (moderators only: config.invites_url), and the waiting room.
setupInvites({ config, root: ui.call, moderation });
setupWaiting({ ui, session, moderation });
// A moderator's recording, on their own computer; everyone sees that it runs.
setupRecording({ ui, config, session, local });
// The "Connection details" panel: candidates, routes, TURN hints.
startDiagnostics({ signaling, session, transport, config });

let infoTimer = null;

function showInfo(text) {
  ui.infoNotice.textContent = text;
  ui.infoNotice.hidden = false;
  clearTimeout(infoTimer);
  infoTimer = setTimeout(() => {
    ui.infoNotice.hidden = true;
  }, 8000);
}

// Pre-join screen, devices, screen share, active speaker, quality, pin, shortcuts, files.
experience = setupExperience({ config, isVoice, ui, signaling, session, local, transport, tiles, moderation, showInfo });

// --- The page's own state -----------------------------------------------------------------------

function paintPhase(phase) {
  ui.call.dataset.state = phase;
  ui.status.dataset.state = phase;
  ui.status.textContent = phaseWords(phase);
}

function showClosed(close) {
  ui.connNotice.hidden = true;
  const words = closedWords(close, document.documentElement.lang || undefined, { guest: Boolean(config.is_guest) });
  ui.closedTitle.textContent = words.title;
  ui.closedHint.textContent = words.hint;
  ui.closed.dataset.code = String(close.code);
  ui.closedSignin.hidden = !words.signin;
  ui.closedRetry.hidden = !words.retry;
  ui.closed.hidden = false;
  ui.closed.querySelector("a:not([hidden])")?.focus();
}

session.on("phase", ({ phase, close }) => {
  paintPhase(phase);
  if (phase === "joined") {
    ui.connNotice.hidden = true;
  } else if (phase === "reconnecting") {
    ui.connNotice.textContent = reconnectingWords(close);
    ui.connNotice.hidden = false;
  } else if (phase === "closed") {
    showClosed(close);
  }
});

session.on("room", ({ locked }) => {
  ui.locked.hidden = !locked;
});

session.on("moderator-request", ({ kind }) => {
  moderation.toast(kind === "audio" ? gettext("A moderator muted you.") : gettext("A moderator turned your camera off."));
});

window.addEventListener("pagehide", () => session.pagehide());

// Browsers start an AudioContext suspended until the person interacts with the page.
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, resumeAudio, { capture: true });
}

// --- Start --------------------------------------------------------------------------------------

async function start() {
  paintPhase("joining");
  chat.setOpen(!window.matchMedia("(max-width: 760px)").matches);
  tiles.paintOwn();
  tiles.layout();
  await experience.beforeJoin(); // the pre-join screen: preview, devices, who is here, Join
  // The socket first: the server's join takes longer than handing the preview's devices
  // to the call, and the welcome waits for them if it comes first.
  signaling.connect();
  if (experience.previewHeld()) session.takeDevices();
}

start();
