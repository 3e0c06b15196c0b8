// The call's own controls: the microphone and camera buttons, Leave, and the device notice
// with its "Try again". They ask the session for changes (setMedia, retryMedia, leave) and
// paint what it says; they never change media themselves.
//
//   setupControls({ui, config, isVoice, session, local});
import { askingWords, deviceLostWords, devicesWords } from "./words.js";

export function setupControls({ ui, config, isVoice, session, local }) {
  function setToggle(button, available, on) {
    if (!button) return;
    button.disabled = !available || session.ended;
    button.classList.toggle("off", !available || !on);
    const label = !available ? button.dataset.labelNone : on ? button.dataset.labelOn : button.dataset.labelOff;
    button.setAttribute("aria-label", label);
    button.title = label;
  }

  function paint() {
    const media = session.media;
    setToggle(ui.mic, Boolean(local.track("audio")), media.audio);
    setToggle(ui.camera, Boolean(local.track("video")), media.video);
  }

  session.on("media", paint);

  ui.mic.addEventListener("click", () => session.setMedia("audio", !session.media.audio));
  ui.camera?.addEventListener("click", () => session.setMedia("video", !session.media.video));

  // --- Devices: asking, what came of it, a device that stopped ------------------------------------

  function showNotice(text, canRetry) {
    ui.deviceNoticeText.textContent = text;
    ui.deviceRetry.hidden = !canRetry;
    ui.deviceNotice.hidden = false;
  }

  session.on("devices", (event) => {
    if (event.phase === "asking") {
      // Without getUserMedia the browser asks nothing: the result says so at once.
      if (navigator.mediaDevices?.getUserMedia) showNotice(askingWords(isVoice), false);
    } else if (event.phase === "ready") {
      const words = devicesWords(event.result, isVoice);
      if (words) showNotice(words.text, words.retry);
      else ui.deviceNotice.hidden = true;
      paint();
    } else if (event.phase === "lost") {
      showNotice(deviceLostWords(event.kind), true);
    }
  });

  ui.deviceRetry.addEventListener("click", async () => {
    ui.deviceRetry.disabled = true;
    await session.retryMedia();
    ui.deviceRetry.disabled = false;
  });

  // --- Leave --------------------------------------------------------------------------------------

  ui.leave.addEventListener("click", async () => {
    ui.leave.disabled = true;
    if (!(await session.leave())) return;
    // A guest has no lobby: the goodbye form ends their visit (rooms/guests.py).
    const goodbye = /** @type {HTMLFormElement | null} */ (document.getElementById("goodbye-form"));
    if (config.is_guest && goodbye) goodbye.submit();
    else location.assign(config.lobby_url);
  });

  session.on("phase", ({ phase }) => {
    if (phase !== "closed") return;
    for (const button of ui.call.querySelectorAll(".controls .control:not(#toggle-chat)")) button.disabled = true;
  });

  return { paint };
}
