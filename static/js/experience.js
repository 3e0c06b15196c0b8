// The call experience around call.js's mesh: the pre-join screen (prejoin.js), devices and
// their switching (devices.js), screen share (screenshare.js), the active speaker and
// connection quality (media-extras.js), pin, full screen and keyboard shortcuts (stage.js),
// files sent peer to peer (files.js).
//
// call.js creates it once and calls these hooks:
//
//   const experience = setupExperience(api);  // api: what call.js lends (see call.js)
//   await experience.beforeJoin();            // the pre-join screen, before the websocket
//   experience.getUserMedia(constraints);     // instead of navigator.mediaDevices'
//   experience.joinChoices();                 // after devices: "join with ... off"
//   experience.connectionMade(peer, pc);      // a new RTCPeerConnection
//   experience.remoteTrack(peer, track);      // true: a screen, handled here
//   experience.refreshTile(peer);             // a tile (or our own) was repainted
//   experience.peerRemoved(peer);             // before a peer's tile goes
import { setupDevices } from "./devices.js";
import { setupFiles } from "./files.js";
import { setupActiveSpeaker, setupQuality } from "./media-extras.js";
import { setupPrejoin } from "./prejoin.js";
import { setupScreenShare } from "./screenshare.js";
import { setupStage } from "./stage.js";

export function setupExperience(api) {
  const devices = setupDevices(api);
  const stage = setupStage(api);
  const screen = setupScreenShare(api, {
    decorate: (root) => stage.decorate(root),
    // Someone's new screen takes the stage, unless the person pinned something themselves.
    shown: (root) => {
      if (!stage.pinned) stage.setPinned(root);
    },
  });
  const speaker = setupActiveSpeaker(api);
  const quality = setupQuality(api);
  const prejoin = setupPrejoin(api, devices);
  const files = setupFiles(api);

  // Controls: [mic] [camera] [screen] [file] [chat] [settings] [shortcuts] ... [leave]
  const { ui } = api;
  if (screen.button) (ui.camera || ui.mic).after(screen.button);
  if (files.button) (screen.button || ui.camera || ui.mic).after(files.button);
  ui.chatToggle.after(devices.settingsButton, stage.helpButton);
  ui.chatToggle.parentElement.append(devices.settingsPanel, stage.help);
  if (!navigator.mediaDevices?.enumerateDevices) devices.settingsButton.hidden = true;

  // A refusal or an ending before our devices went into the call: the preview stops too.
  api.signaling.on("close", ({ final }) => {
    if (final) devices.dropPreview();
  });

  if (window.confab) window.confab.experience = { devices, screen, speaker, quality, stage, files };

  return {
    async beforeJoin() {
      await prejoin.show();
      stage.enableShortcuts(screen);
    },
    getUserMedia: (constraints) => devices.getUserMedia(constraints),
    joinChoices: () => devices.joinChoices(),
    connectionMade(peer, pc) {
      screen.connectionMade(peer, pc);
      files.connectionMade(peer, pc); // its control channel, before the first offer
    },
    remoteTrack: (peer, track) => screen.remoteTrack(peer, track),
    refreshTile(peer) {
      stage.decorate(peer.tile.root);
      if (peer === api.localPeer) return;
      files.refreshTile(peer);
      screen.refresh(peer);
      quality.refreshTile(peer);
      devices.applySink(peer.element);
    },
    peerRemoved(peer) {
      screen.peerRemoved(peer);
      quality.peerRemoved(peer);
      files.peerRemoved(peer);
    },
  };
}
