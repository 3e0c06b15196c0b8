// @ts-check
// Voice options, in the call's settings popover: the browser's voice processing (noise
// suppression, echo cancellation, automatic gain: media/local.js setProcessing, applied to
// the live microphone without renegotiating) and push-to-talk (while muted, holding Space
// turns the microphone on until it is let go). Both are remembered in this browser with
// the device choices.
//
//   setupVoice({local, session, devices});
import { el, gettext, isTyping } from "./dom.js";

/**
 * @param {object} options
 * @param {import("./media/local.js").LocalMedia} options.local
 * @param {import("./session.js").CallSession} options.session
 * @param {{prefs: Record<string, any>, save(patch: Record<string, any>): void, settingsPanel: HTMLElement}} options.devices
 */
export function setupVoice({ local, session, devices }) {
  const { prefs } = devices;
  const processing = el("input", { type: "checkbox", id: "xp-voice-processing" });
  const pushToTalk = el("input", { type: "checkbox", id: "xp-push-to-talk" });
  const processingBox = /** @type {HTMLInputElement} */ (processing);
  const pushToTalkBox = /** @type {HTMLInputElement} */ (pushToTalk);
  processingBox.checked = prefs.voiceProcessing !== false;
  pushToTalkBox.checked = Boolean(prefs.pushToTalk);
  devices.settingsPanel.append(
    el("h3", { className: "xp-popover-subtitle", text: gettext("Voice") }),
    el("label", { className: "xp-check", for: processing.id }, processing, el("span", { text: gettext("Noise suppression and echo cancellation") })),
    el("label", { className: "xp-check", for: pushToTalk.id }, pushToTalk, el("span", { text: gettext("Push to talk: hold Space to speak while muted") })),
  );
  const processingNote = el("p", { className: "xp-check-note", text: gettext("This microphone has no noise suppression to turn on or off."), hidden: true });
  processing.closest("label")?.after(processingNote);
  // Before any microphone is opened: the preview's and the call's tracks get it too.
  local.setProcessing(processingBox.checked);

  // A microphone that offers only one way (a fake one, some studio devices): nothing to switch.
  function paintProcessing() {
    const switchable = local.processingSwitchable();
    processingBox.disabled = !switchable;
    processingNote.hidden = switchable;
  }
  devices.settingsPanel.addEventListener("beforetoggle", (event) => {
    if (/** @type {ToggleEvent} */ (event).newState === "open") paintProcessing();
  });

  processing.addEventListener("change", async () => {
    devices.save({ voiceProcessing: processingBox.checked });
    processingBox.disabled = true;
    await local.setProcessing(processingBox.checked);
    paintProcessing();
  });
  pushToTalk.addEventListener("change", () => {
    devices.save({ pushToTalk: pushToTalkBox.checked });
    if (!pushToTalkBox.checked) release();
  });

  // --- Push to talk ------------------------------------------------------------------------

  let holding = false; // the microphone is on because Space is held

  function release() {
    if (!holding) return;
    holding = false;
    session.setMedia("audio", false);
  }

  /** @param {KeyboardEvent} event */
  function isSpace(event) {
    return event.code === "Space" && !event.ctrlKey && !event.metaKey && !event.altKey && !event.isComposing;
  }

  document.addEventListener("keydown", (event) => {
    if (!isSpace(event) || !pushToTalkBox.checked || session.phase !== "joined" || session.ended) return;
    if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
    // Held: the key repeats, and a focused button must not take Space as a click.
    event.preventDefault();
    if (holding || event.repeat || session.media.audio || !local.track("audio")) return;
    holding = true;
    session.setMedia("audio", true);
  });
  document.addEventListener("keyup", (event) => {
    if (event.code !== "Space" || !holding) return;
    event.preventDefault();
    release();
  });
  // Let go where the page cannot see the key come up (another window took the focus).
  window.addEventListener("blur", release);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) release();
  });
  // Turned off some other way meanwhile (a moderator's mute, the M key): nothing to release.
  local.on("change", ({ media }) => {
    if (!media.audio) holding = false;
  });

  return {
    get pushToTalk() {
      return pushToTalkBox.checked;
    },
    get holding() {
      return holding;
    },
  };
}
