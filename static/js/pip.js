// @ts-check
// Picture-in-picture: the person talking keeps playing in a small window of its own while
// the call's tab is behind others, with Mute and Leave where the browser allows.
// - Document Picture-in-Picture (Chromium): a window with our own markup, the speaker's
//   video, their name and the Mute and Leave buttons. Opened by the button, and by the
//   browser itself when the tab is hidden where it offers that to calls (the media
//   session's "enterpictureinpicture" action).
// - Otherwise the video element's own picture-in-picture, whose window shows the media
//   session's microphone and hang-up buttons.
// - Neither (Firefox has only its own PiP toggle on videos, no API): no button.
// It follows the active speaker (media-extras.js), else the last one, else the first
// person in the call; ourselves only when alone. The audio stays with the tiles.
//
//   setupPip({ui, config, session, tiles, speaker});
import { el, gettext, icon, label } from "./dom.js";

const FOLLOW_MS = 500;

/**
 * @param {object} options
 * @param {Record<string, HTMLElement>} options.ui
 * @param {{pip_css?: string}} options.config
 * @param {import("./session.js").CallSession} options.session
 * @param {{rootOf(id: string | null): HTMLElement | null}} options.tiles
 * @param {{readonly active: string | null}} options.speaker
 */
export function setupPip({ ui, config, session, tiles, speaker }) {
  const documentPip = /** @type {any} */ (window).documentPictureInPicture;
  const videoPip = Boolean(document.pictureInPictureEnabled);
  const button = el("button", { type: "button", className: "control pip-button", id: "toggle-pip", "aria-pressed": "false" }, icon("pip"));
  label(button, gettext("Picture in picture"));
  button.hidden = !documentPip && !videoPip;

  /** @type {Window | null} */
  let pipWindow = null;
  /** @type {HTMLVideoElement | null} */
  let pipVideo = null; // the element in the window (Document PiP) or the tile's (video PiP)
  /** @type {HTMLElement | null} */
  let pipName = null;
  /** @type {HTMLButtonElement | null} */
  let pipMute = null;
  let shown = /** @type {string | null | undefined} */ (undefined); // whose video it plays
  let lastSpeaker = /** @type {string | null} */ (null);
  let follow = 0;

  /** Who the window shows: a peer id, or null for ourselves. */
  function target() {
    const active = speaker.active && speaker.active !== "local" ? speaker.active : null;
    if (active && session.participants.has(active)) lastSpeaker = active;
    if (lastSpeaker && session.participants.has(lastSpeaker)) return lastSpeaker;
    return session.participants.keys().next().value ?? null;
  }

  /** @param {string | null} id @returns {MediaStream | null} */
  function streamOf(id) {
    const video = /** @type {HTMLVideoElement | null} */ (tiles.rootOf(id)?.querySelector("video.tile-media") || null);
    return /** @type {MediaStream | null} */ (video?.srcObject || null);
  }

  function nameOf(/** @type {string | null} */ id) {
    return id === null ? session.self.name : session.participants.get(id)?.name || "";
  }

  function paintMute() {
    if (!pipMute) return;
    const on = session.media.audio;
    pipMute.textContent = on ? gettext("Mute") : gettext("Unmute");
    pipMute.setAttribute("aria-pressed", String(!on));
    navigator.mediaSession?.setMicrophoneActive?.(on);
  }

  function followSpeaker() {
    if (!pipWindow || !pipVideo) return;
    const id = target();
    if (id === shown) return;
    shown = id;
    pipVideo.srcObject = streamOf(id);
    pipVideo.play().catch(() => {});
    if (pipName) pipName.textContent = nameOf(id);
  }

  async function openDocumentPip() {
    const win = await documentPip.requestWindow({ width: 360, height: 240 });
    const doc = win.document;
    if (config.pip_css) doc.head.append(Object.assign(doc.createElement("link"), { rel: "stylesheet", href: config.pip_css }));
    doc.title = gettext("Picture in picture");
    const video = doc.createElement("video");
    Object.assign(video, { autoplay: true, playsInline: true, muted: true, className: "pip-video" });
    const name = doc.createElement("span");
    name.className = "pip-name";
    const mute = doc.createElement("button");
    Object.assign(mute, { type: "button", className: "pip-mute" });
    const leave = doc.createElement("button");
    Object.assign(leave, { type: "button", className: "pip-leave", textContent: gettext("Leave") });
    const bar = doc.createElement("div");
    bar.className = "pip-bar";
    bar.append(name, mute, leave);
    doc.body.className = "pip-body";
    doc.body.append(video, bar);
    mute.addEventListener("click", () => ui.mic.click());
    leave.addEventListener("click", () => {
      win.close();
      ui.leave.click();
    });
    win.addEventListener("pagehide", closed);
    pipWindow = win;
    pipVideo = video;
    pipName = name;
    pipMute = mute;
  }

  async function openVideoPip() {
    const id = target();
    const video = /** @type {HTMLVideoElement | null} */ (tiles.rootOf(id)?.querySelector("video.tile-media") || null);
    if (!video) return;
    await video.requestPictureInPicture();
    video.addEventListener("leavepictureinpicture", closed, { once: true });
    pipWindow = window;
    pipVideo = null; // the browser's own window plays the tile itself
    shown = id;
  }

  async function open() {
    if (pipWindow || session.phase !== "joined") return;
    try {
      if (documentPip) await openDocumentPip();
      else await openVideoPip();
    } catch (error) {
      console.warn("pip: not opened", error);
      return;
    }
    shown = undefined;
    followSpeaker();
    paintMute();
    follow = window.setInterval(followSpeaker, FOLLOW_MS);
    button.classList.add("active");
    button.setAttribute("aria-pressed", "true");
  }

  function closed() {
    window.clearInterval(follow);
    pipWindow = pipVideo = null;
    pipName = pipMute = null;
    shown = undefined;
    button.classList.remove("active");
    button.setAttribute("aria-pressed", "false");
  }

  function close() {
    if (!pipWindow) return;
    if (pipWindow === window) document.exitPictureInPicture?.().catch(() => {});
    else pipWindow.close();
    closed();
  }

  button.addEventListener("click", () => (pipWindow ? close() : open()));
  session.on("media", paintMute);
  session.on("phase", ({ phase }) => {
    button.disabled = phase !== "joined";
    if (phase === "closed") close();
  });
  button.disabled = true;

  // The media session: where the browser opens picture-in-picture by itself when a call's
  // tab is hidden, and the buttons of a video element's picture-in-picture window.
  /** @param {string} action @param {() => void} handler */
  const handle = (action, handler) => {
    try {
      navigator.mediaSession?.setActionHandler(/** @type {any} */ (action), handler);
    } catch {
      // This browser does not know that action.
    }
  };
  if (documentPip) handle("enterpictureinpicture", () => open());
  handle("togglemicrophone", () => ui.mic.click());
  handle("hangup", () => ui.leave.click());

  return {
    button,
    /** The open window (Document PiP), the page itself (video PiP) or null. */
    get window() {
      return pipWindow;
    },
  };
}
