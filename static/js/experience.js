// The call experience around the session and its tiles: the pre-join screen (prejoin.js),
// devices and their switching (devices.js), screen share (screenshare.js), the active
// speaker and connection quality (media-extras.js), pin, full screen and keyboard shortcuts
// (stage.js), files sent peer to peer (files.js), voice processing and push to talk
// (voice.js), the people panel and join and leave notices (people.js). Each gets only the parts it needs.
//
// call.js creates it once:
//
//   const experience = setupExperience({config, isVoice, ui, signaling, session, local,
//                                       transport, tiles, moderation, showInfo});
//   await experience.beforeJoin();            // the pre-join screen, before the websocket
//   experience.getUserMedia(constraints);     // local media asks for devices through this
//   experience.joinChoices();                 // kinds to join with off (once)
//   experience.previewHeld();                 // the preview holds every device the call needs
import { setupDevices } from "./devices.js";
import { setupFiles } from "./files.js";
import { setupLayers } from "./layers.js";
import { setupActiveSpeaker, setupQuality } from "./media-extras.js";
import { setupPeople } from "./people.js";
import { setupPrejoin } from "./prejoin.js";
import { setupPip } from "./pip.js";
import { setupScreenShare } from "./screenshare.js";
import { setupStage } from "./stage.js";
import { setupVoice } from "./voice.js";

export function setupExperience({ config, isVoice, ui, signaling, session, local, transport, tiles, moderation, showInfo }) {
  const devices = setupDevices({ isVoice, local, tiles });
  const voice = setupVoice({ local, session, devices });
  const stage = setupStage({ ui, isVoice, session, layout: tiles.layout });
  const screen = setupScreenShare(
    { session, local, transport, tiles, showInfo },
    {
      decorate: (root) => stage.decorate(root),
      // Someone's new screen takes the stage, unless the person pinned something themselves.
      shown: (root) => {
        if (!stage.pinned) stage.setPinned(root);
      },
    },
  );
  // SFU rooms: the simulcast layer of each camera follows what the stage shows.
  setupLayers({ ui, transport });
  const speaker = setupActiveSpeaker({ tiles });
  const quality = setupQuality({ session, transport, tiles });
  const prejoin = setupPrejoin({ config, isVoice, ui }, devices);
  const files = setupFiles({ config, ui, session, transport, tiles, moderation });
  const people = setupPeople({ ui, session, moderation, devices, isVoice });
  // The person talking in a small window of its own while the tab is behind others.
  const pip = isVoice ? null : setupPip({ ui, config, session, tiles, speaker });

  // Controls: [mic] [camera] [screen] [file] [hand] [react] [people] [chat] [settings]
  // [shortcuts] ... [leave]
  if (screen.button) (ui.camera || ui.mic).after(screen.button);
  if (files.button) (screen.button || ui.camera || ui.mic).after(files.button);
  ui.chatToggle.after(devices.settingsButton, stage.helpButton);
  if (pip) stage.helpButton.after(pip.button);
  ui.chatToggle.parentElement.append(devices.settingsPanel, stage.help);
  if (!navigator.mediaDevices?.enumerateDevices) devices.settingsButton.hidden = true;

  // Every tile gets pin and full-screen tools; remote ones play on the chosen speaker.
  tiles.on("painted", ({ id, root, element }) => {
    stage.decorate(root);
    if (id !== null) devices.applySink(element);
  });

  // The preview's devices are the call's to be: its first connection can be made with them.
  devices.onPreview((tracks) => session.prepare(tracks));

  // A refusal or an ending before our devices went into the call: the preview stops too.
  signaling.on("close", ({ final }) => {
    if (final) devices.dropPreview();
  });

  if (window.confab) window.confab.experience = { devices, voice, screen, speaker, quality, stage, files, people, pip };

  return {
    async beforeJoin() {
      await prejoin.show();
      stage.enableShortcuts(screen);
    },
    // The pre-join screen holds every device the call needs (session.takeDevices).
    previewHeld: () => devices.previewCovers(),
    getUserMedia: (constraints) => devices.getUserMedia(constraints),
    joinChoices: () => devices.joinChoices(),
  };
}
