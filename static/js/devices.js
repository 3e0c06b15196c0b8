// Cameras, microphones and speakers: the choices remembered per browser (localStorage), the
// pre-join preview's tracks handed over to the call, switching a device during the call
// without renegotiation (RTCRtpSender.replaceTrack on every peer connection), the speaker
// for every remote media element (setSinkId), and the in-call settings popover.
//
// experience.js creates it once: `const devices = setupDevices({isVoice, local, tiles})`.
// Switching a device hands the new track to local media (media/local.js, useTrack); the
// transport puts it into its senders.
import { el, fmt, gettext, icon, label, popover } from "./dom.js";
import { VIDEO_CONSTRAINTS } from "./media/local.js";

const PREFS_KEY = "confab.devices"; // {audioinput, videoinput, audiooutput, micOff, camOff}
const SKIP_KEY = "confab.skipPreview"; // "1": go straight into the call
const KIND_OF = { audio: "audioinput", video: "videoinput" };

function readJSON(key) {
  try {
    const value = JSON.parse(localStorage.getItem(key) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

// Constraints for one kind: the call's own (or true) with a device, exactly that one.
export function withDevice(base, deviceId) {
  if (!deviceId) return base || true;
  return { ...(typeof base === "object" ? base : {}), deviceId: { exact: deviceId } };
}

export function setupDevices({ isVoice, local, tiles }) {
  const prefs = readJSON(PREFS_KEY);
  let preview = []; // live tracks of the pre-join screen, handed over at the first join
  let choicesApplied = false;
  let videoBase = VIDEO_CONSTRAINTS;
  const gum = (constraints) => navigator.mediaDevices.getUserMedia(constraints);

  // Ask for `kinds` on the devices named in `ids` (kind -> deviceId, else the remembered
  // ones). A device that is gone (unplugged, or the browser forgot its id) falls back to the
  // default one, unless `strict` (the person picked it just now).
  async function ask(kinds, base, ids = {}, strict = false) {
    const constraints = {};
    let named = false;
    for (const kind of kinds) {
      const id = ids[kind] ?? prefs[KIND_OF[kind]];
      named ||= Boolean(id);
      constraints[kind] = withDevice(base[kind], id);
    }
    try {
      return await gum(constraints);
    } catch (error) {
      if (strict || !named || (error.name !== "OverconstrainedError" && error.name !== "NotFoundError")) throw error;
      const plain = {};
      for (const kind of kinds) plain[kind] = base[kind] || true;
      return gum(plain);
    }
  }

  function save(patch) {
    Object.assign(prefs, patch);
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
    } catch {
      // private mode or full storage: the choice lasts for this page only
    }
  }

  function skipPreview() {
    try {
      return localStorage.getItem(SKIP_KEY) === "1";
    } catch {
      return false;
    }
  }

  function setSkipPreview(skip) {
    try {
      if (skip) localStorage.setItem(SKIP_KEY, "1");
      else localStorage.removeItem(SKIP_KEY);
    } catch {
      // as above
    }
  }

  // --- Listing devices ----------------------------------------------------------------------

  async function list() {
    const found = { audioinput: [], videoinput: [], audiooutput: [] };
    if (!navigator.mediaDevices?.enumerateDevices) return found;
    try {
      for (const device of await navigator.mediaDevices.enumerateDevices()) {
        if (found[device.kind] && device.deviceId) found[device.kind].push(device);
      }
    } catch (error) {
      console.warn("devices: cannot list devices", error);
    }
    return found;
  }

  const sinkSupported = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

  function deviceName(kind, device, index) {
    if (device.label) return device.label;
    const number = index + 1;
    if (kind === "videoinput") return fmt(gettext("Camera %(number)s"), { number });
    if (kind === "audioinput") return fmt(gettext("Microphone %(number)s"), { number });
    return fmt(gettext("Speaker %(number)s"), { number });
  }

  // Fill a <select> with the devices of a kind; `current` is selected. Returns how many.
  function fill(select, kind, devices, current) {
    const options = devices.map((device, index) =>
      el("option", { value: device.deviceId, text: deviceName(kind, device, index) }),
    );
    if (options.length === 0) {
      const none = {
        videoinput: gettext("No camera found"),
        audioinput: gettext("No microphone found"),
        audiooutput: gettext("The system's default speaker"),
      }[kind];
      options.push(el("option", { value: "", text: none }));
    }
    select.replaceChildren(...options);
    const wanted = current || prefs[kind] || "";
    if (devices.some((device) => device.deviceId === wanted)) select.value = wanted;
    select.disabled = devices.length === 0;
    return devices.length;
  }

  // The device a live track comes from (its id as enumerateDevices names it).
  function trackDevice(track) {
    return track?.getSettings?.().deviceId || "";
  }

  // --- The pre-join preview, handed over to the call ------------------------------------------

  // Ask for the preview's devices (remembered choices, or what `ids` names). Resolves to
  // {tracks, error}: whatever could be had, and the first failure.
  async function openPreview(kinds, ids = {}) {
    if (!navigator.mediaDevices?.getUserMedia) return { tracks: [], error: new DOMException("", "NotSupportedError") };
    const base = { audio: local.audioConstraints(), video: VIDEO_CONSTRAINTS };
    const strict = Object.keys(ids).length > 0;
    let error = null;
    try {
      return { tracks: (await ask(kinds, base, ids, strict)).getTracks(), error };
    } catch (failure) {
      error = failure;
    }
    // Refused: asking again for less would be refused too. Otherwise one at a time.
    if (kinds.length < 2 || error.name === "NotAllowedError" || error.name === "SecurityError") {
      return { tracks: [], error };
    }
    const tracks = [];
    for (const kind of kinds) {
      try {
        tracks.push(...(await ask([kind], base, ids, strict)).getTracks());
      } catch {
        // the first failure is the one worth telling
      }
    }
    return { tracks, error };
  }

  function setPreview(tracks) {
    for (const track of preview) if (!tracks.includes(track)) track.stop();
    preview = tracks.filter((track) => track.readyState === "live");
    if (previewCovers()) for (const listener of previewListeners) listener([...preview]);
  }

  function dropPreview() {
    setPreview([]);
  }

  // Told the preview's tracks each time they change and hold every kind the call sends
  // (the tracks that the Join click will hand over).
  /** @type {((tracks: MediaStreamTrack[]) => void)[]} */
  const previewListeners = [];

  // Whether the preview holds a live track of every kind the call sends: handing them over
  // then asks the browser for nothing.
  function previewCovers() {
    return local.kinds.every((kind) => preview.some((track) => track.kind === kind && track.readyState === "live"));
  }

  // Local media asks for devices through this (once admitted): the preview's tracks first, then
  // the remembered devices for whatever is still missing.
  async function getUserMedia(constraints) {
    if (constraints.video && typeof constraints.video === "object") videoBase = constraints.video;
    const wanted = ["audio", "video"].filter((kind) => constraints[kind]);
    const handed = preview;
    preview = [];
    const have = handed.filter((track) => wanted.includes(track.kind) && track.readyState === "live");
    for (const track of handed) if (!have.includes(track)) track.stop();
    const missing = wanted.filter((kind) => !have.some((track) => track.kind === kind));
    if (missing.length === 0) return new MediaStream(have);
    try {
      const stream = await ask(missing, constraints);
      return new MediaStream([...have, ...stream.getTracks()]);
    } catch (error) {
      if (have.length) return new MediaStream(have);
      throw error;
    }
  }

  // "Join with microphone off / camera off": the kinds whose tracks start disabled, so that
  // the first `media` message already says so and others receive silence (or black). Once:
  // "Try again" later asks for everything on.
  function joinChoices() {
    if (choicesApplied) return {};
    choicesApplied = true;
    return { audio: Boolean(prefs.micOff), video: Boolean(prefs.camOff) && !isVoice };
  }

  // --- Switching during the call ---------------------------------------------------------------

  // Put `track` in place of our current track of its kind (local media and the transport
  // do it: the same transceivers and m-lines, so nothing is renegotiated).
  const useTrack = (track) => local.useTrack(track);

  async function switchDevice(kind, deviceId) {
    save({ [KIND_OF[kind]]: deviceId });
    const old = local.track(kind);
    if (old && trackDevice(old) === deviceId) return;
    const constraints = { [kind]: withDevice(kind === "video" ? videoBase : local.audioConstraints(), deviceId) };
    let stream;
    try {
      stream = await gum(constraints);
    } catch (error) {
      // Some cameras cannot be open twice (phones): free the old one, then try again.
      if (!old || error.name !== "NotReadableError") throw error;
      old.stop();
      stream = await gum(constraints);
    }
    const [track] = stream.getTracks();
    await useTrack(track);
  }

  // --- Speakers ----------------------------------------------------------------------------------

  function applySink(element) {
    const id = prefs.audiooutput;
    if (!sinkSupported || !element || !id || element.sinkId === id) return;
    element.setSinkId(id).catch((error) => console.warn("devices: speaker not available", error));
  }

  function remoteElements() {
    return tiles.elements();
  }

  async function setSpeaker(deviceId) {
    save({ audiooutput: deviceId });
    await Promise.all(remoteElements().map((element) => (sinkSupported ? element.setSinkId(deviceId) : null)));
  }

  // A short tone on the chosen speaker (Web Audio into an <audio> element with that sink).
  function testSpeaker(deviceId) {
    const context = new (window.AudioContext || window.webkitAudioContext)();
    const destination = context.createMediaStreamDestination();
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.frequency.value = 660;
    gain.gain.setValueAtTime(0.0001, context.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.25, context.currentTime + 0.05);
    gain.gain.exponentialRampToValueAtTime(0.0001, context.currentTime + 0.6);
    oscillator.connect(gain).connect(destination);
    const audio = new Audio();
    audio.srcObject = destination.stream;
    const sink = deviceId && sinkSupported ? audio.setSinkId(deviceId).catch(() => {}) : Promise.resolve();
    sink.then(() => audio.play().catch(() => {}));
    oscillator.start();
    oscillator.stop(context.currentTime + 0.65);
    oscillator.addEventListener("ended", () => {
      audio.srcObject = null;
      context.close().catch(() => {});
    });
  }

  // --- The settings popover in the call -----------------------------------------------------------

  const settingsButton = el("button", { type: "button", className: "control xp-settings-button" }, icon("settings"));
  label(settingsButton, gettext("Camera, microphone and speaker settings"));
  const fields = {};
  const error = el("p", { className: "xp-field-error", role: "alert", hidden: true });

  function field(kind, text, iconName) {
    const id = `xp-${kind}`;
    const select = el("select", { id, name: kind });
    const row = el(
      "div",
      { className: "xp-field" },
      el("label", { for: id }, icon(iconName), el("span", { text })),
      select,
    );
    fields[kind] = { row, select };
    return row;
  }

  const skip = el("input", { type: "checkbox", id: "xp-show-preview" });
  const settingsPanel = popover(settingsButton, {
    className: "xp-settings",
    title: gettext("Settings"),
    onOpen: () => refreshSettings(),
  });
  settingsPanel.append(
    el("h2", { className: "xp-popover-title", text: gettext("Settings") }),
    isVoice ? null : field("videoinput", gettext("Camera"), "camera"),
    field("audioinput", gettext("Microphone"), "mic"),
    field("audiooutput", gettext("Speaker"), "speaker"),
    error,
    el(
      "label",
      { className: "xp-check", for: skip.id },
      skip,
      el("span", { text: gettext("Show the preview before joining a call") }),
    ),
  );

  async function refreshSettings() {
    const found = await list();
    for (const [kind, { select, row }] of Object.entries(fields)) {
      const input = kind === "audioinput" ? "audio" : kind === "videoinput" ? "video" : null;
      const current = input ? trackDevice(local.track(input)) : prefs.audiooutput;
      fill(select, kind, found[kind], current);
      if (kind === "audiooutput") row.hidden = !sinkSupported || found.audiooutput.length === 0;
    }
    skip.checked = !skipPreview();
  }

  for (const [kind, { select }] of Object.entries(fields)) {
    select.addEventListener("change", async () => {
      error.hidden = true;
      select.disabled = true;
      try {
        if (kind === "audiooutput") await setSpeaker(select.value);
        else await switchDevice(kind === "audioinput" ? "audio" : "video", select.value);
      } catch (failure) {
        console.warn("devices: switch failed", failure);
        error.textContent =
          kind === "videoinput"
            ? gettext("That camera could not be used. It may be in use by another app.")
            : kind === "audioinput"
              ? gettext("That microphone could not be used. It may be in use by another app.")
              : gettext("That speaker could not be used.");
        error.hidden = false;
        refreshSettings();
      } finally {
        select.disabled = false;
      }
    });
  }
  skip.addEventListener("change", () => setSkipPreview(!skip.checked));

  navigator.mediaDevices?.addEventListener?.("devicechange", () => {
    if (settingsPanel.matches(":popover-open")) refreshSettings();
  });

  return {
    prefs,
    save,
    list,
    fill,
    trackDevice,
    sinkSupported,
    skipPreview,
    setSkipPreview,
    openPreview,
    setPreview,
    dropPreview,
    previewCovers,
    onPreview: (/** @type {(tracks: MediaStreamTrack[]) => void} */ listener) => previewListeners.push(listener),
    getUserMedia,
    joinChoices,
    switchDevice,
    useTrack,
    applySink,
    setSpeaker,
    testSpeaker,
    settingsButton,
    settingsPanel,
  };
}
