// The pre-join screen: shown on the room page before the websocket connects. A camera
// preview, a live microphone level (Web Audio analyser), camera / microphone / speaker
// pickers, "Join with microphone off" and "Join with camera off", who is already in the
// room (GET config.people_url), and the Join button. Choices are remembered per browser
// (devices.js); the preview's tracks go on into the call, so joining asks for nothing new.
//
//   const prejoin = setupPrejoin({config, isVoice, ui}, devices);
//   await prejoin.show();   // resolves when the person clicks Join (at once if they chose
//                           // to skip this screen)
import { avatarHue, avatarInitial, el, fmt, gettext, icon, label, ngettext } from "./dom.js";
import { audioContext, levelMeter, resumeAudio } from "./media/level.js";

const PEOPLE_EVERY_MS = 5000;
const METER_SEGMENTS = 12;

function avatar(name, className = "avatar") {
  const node = el("span", { className }, el("span", { className: "avatar-initial", text: avatarInitial(name) }));
  node.style.setProperty("--avatar-hue", avatarHue(name));
  return node;
}

// Sound level in [0, 1] from an RMS amplitude: -54 dB (silence) .. -12 dB (loud speech).
function loudness(rms) {
  if (!rms) return 0;
  const db = 20 * Math.log10(rms);
  return Math.max(0, Math.min(1, (db + 54) / 42));
}

export function setupPrejoin({ config, isVoice, ui }, devices) {
  const kinds = isVoice ? ["audio"] : ["audio", "video"];

  function show() {
    if (devices.skipPreview()) {
      ui.call.classList.remove("prejoining"); // room.html starts with the call hidden
      return Promise.resolve();
    }
    return new Promise((resolve) => build(resolve));
  }

  function build(resolve) {
    const root = ui.call;
    const prefs = devices.prefs;
    let tracks = { audio: null, video: null };
    let meter = null;
    let shown = 0;
    let frame = 0;
    let lastAria = 0;
    let peopleTimer = null;
    let closed = false;
    let opening = Promise.resolve();

    // --- The preview ------------------------------------------------------------------------
    const video = el("video", { className: "prejoin-video", autoplay: true, playsinline: true });
    video.muted = true;
    const previewState = el("p", { className: "prejoin-preview-state", "aria-live": "polite" });
    const micBadge = el("span", { className: "prejoin-badge", hidden: true }, icon("micOff"));
    label(micBadge, gettext("Your microphone will be off"));
    micBadge.setAttribute("role", "img");
    const preview = el(
      "div",
      { className: "prejoin-preview", "data-camera": isVoice ? "none" : "starting" },
      video,
      el("div", { className: "prejoin-avatar", "aria-hidden": "true" }, avatar(config.me)),
      previewState,
      el("div", { className: "prejoin-name" }, el("span", { text: fmt(gettext("%(name)s (you)"), { name: config.me }) }), micBadge),
    );

    const meterBar = el("div", {
      className: "prejoin-meter",
      role: "meter",
      "aria-label": gettext("Microphone level"),
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": "0",
    });
    for (let i = 0; i < METER_SEGMENTS; i += 1) meterBar.append(el("span", { className: "prejoin-meter-segment" }));
    const meterHint = el("p", { className: "prejoin-meter-hint", hidden: true });

    // --- Pickers ------------------------------------------------------------------------------
    const selects = {};
    function picker(kind, text, iconName, extra = null) {
      const id = `prejoin-${kind}`;
      const select = el("select", { id, name: kind });
      selects[kind] = select;
      return el(
        "div",
        { className: `prejoin-field prejoin-field-${kind}` },
        el("label", { for: id }, icon(iconName), el("span", { text })),
        el("div", { className: "prejoin-select-row" }, select, extra),
      );
    }
    const testButton = el("button", { type: "button", className: "prejoin-test", text: gettext("Test") });
    label(testButton, gettext("Play a test sound on this speaker"));
    const speakerField = picker("audiooutput", gettext("Speaker"), "speaker", testButton);
    const micField = picker("audioinput", gettext("Microphone"), "mic");
    micField.append(meterBar, meterHint);

    // --- Choices ------------------------------------------------------------------------------
    function toggle(id, text, checked) {
      const input = el("input", { type: "checkbox", id, role: "switch" });
      input.checked = checked;
      return {
        input,
        row: el("label", { className: "prejoin-switch", for: id }, input, el("span", { className: "prejoin-switch-text", text })),
      };
    }
    const micOff = toggle("prejoin-mic-off", gettext("Join with microphone off"), Boolean(prefs.micOff));
    const camOff = toggle("prejoin-cam-off", gettext("Join with camera off"), Boolean(prefs.camOff));
    const skip = el("input", { type: "checkbox", id: "prejoin-skip" });
    const notice = el("p", { className: "prejoin-notice", role: "status", hidden: true });

    // --- Who is here --------------------------------------------------------------------------
    const faces = el("div", { className: "prejoin-faces", "aria-hidden": "true" });
    const peopleText = el("p", { className: "prejoin-people-text", text: gettext("Checking who is here…") });
    const roomNote = el("p", { className: "prejoin-room-note", hidden: true });
    const people = el("div", { className: "prejoin-people", "aria-live": "polite" }, faces, peopleText);

    const join = el("button", { type: "submit", className: "button primary prejoin-join", text: gettext("Join now") });
    const form = el(
      "form",
      { className: "prejoin-panel", "aria-labelledby": "prejoin-title" },
      el("p", { className: "prejoin-kicker", text: gettext("Ready to join?") }),
      el("h1", { id: "prejoin-title", className: "prejoin-title", text: config.name || document.title }),
      el("p", { className: "prejoin-kind", text: isVoice ? gettext("Voice room") : gettext("Video room") }),
      people,
      roomNote,
      el(
        "fieldset",
        { className: "prejoin-devices" },
        el("legend", { className: "visually-hidden", text: gettext("Devices") }),
        isVoice ? null : picker("videoinput", gettext("Camera"), "camera"),
        micField,
        speakerField,
      ),
      el(
        "fieldset",
        { className: "prejoin-choices" },
        el("legend", { className: "visually-hidden", text: gettext("When you join") }),
        micOff.row,
        isVoice ? null : camOff.row,
      ),
      notice,
      join,
      el("label", { className: "prejoin-skip", for: skip.id }, skip, el("span", { text: gettext("Skip this screen next time") })),
    );
    form.noValidate = true;

    const section = el(
      "section",
      { className: "prejoin", id: "prejoin", "aria-label": gettext("Before you join") },
      el("div", { className: "prejoin-card" }, el("div", { className: "prejoin-stage" }, preview), form),
    );
    root.prepend(section);
    root.classList.add("prejoining");

    // --- Behaviour ----------------------------------------------------------------------------

    function paint() {
      const camera = isVoice ? "none" : camOff.input.checked ? "off" : tracks.video ? "on" : preview.dataset.camera;
      preview.dataset.camera = camera;
      previewState.textContent =
        {
          off: gettext("Your camera is off"),
          starting: gettext("Starting your camera…"),
          missing: gettext("No camera"),
        }[camera] || "";
      micBadge.hidden = !micOff.input.checked;
      meterBar.classList.toggle("off", micOff.input.checked || !tracks.audio);
    }

    function showNotice(error, missing) {
      if (!error && missing.length === 0) {
        notice.hidden = true;
        return;
      }
      const denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
      let text;
      if (error && error.name === "NotSupportedError") {
        text = gettext("This browser cannot use a camera or microphone on this page (it needs a secure https address). You can still join to watch, listen and chat.");
      } else if (denied) {
        text = isVoice
          ? gettext("You did not allow the microphone. You can still join to listen and chat; to speak, allow it in your browser's site settings.")
          : gettext("You did not allow the camera and microphone. You can still join to watch, listen and chat; to take part, allow them in your browser's site settings.");
      } else if (missing.length === kinds.length) {
        text = isVoice
          ? gettext("No microphone could be used. You can still join to listen and chat.")
          : gettext("No camera or microphone could be used. You can still join to watch, listen and chat.");
      } else if (missing.includes("video")) {
        text = gettext("No camera could be used: you will join with your microphone only.");
      } else {
        text = gettext("No microphone could be used: others will see you but not hear you.");
      }
      notice.textContent = text;
      notice.hidden = false;
    }

    function useTracks(list) {
      for (const track of list) {
        if (tracks[track.kind] && tracks[track.kind] !== track) tracks[track.kind].stop();
        tracks[track.kind] = track;
      }
      devices.setPreview(Object.values(tracks).filter(Boolean));
      if (tracks.video && !camOff.input.checked) {
        if (video.srcObject?.getVideoTracks()[0] !== tracks.video) video.srcObject = new MediaStream([tracks.video]);
        video.play().catch(() => {});
      }
      if (list.some((track) => track.kind === "audio")) startMeter();
      paint();
    }

    function dropVideo() {
      tracks.video?.stop();
      tracks.video = null;
      video.srcObject = null;
      devices.setPreview(Object.values(tracks).filter(Boolean));
    }

    // Open (or reopen) devices; `ids`: {audio, video} picked just now.
    function open(wanted, ids = {}) {
      opening = opening.then(async () => {
        if (closed || wanted.length === 0) return;
        const { tracks: got, error } = await devices.openPreview(wanted, ids);
        if (closed) {
          for (const track of got) track.stop();
          return;
        }
        if (!isVoice && wanted.includes("video") && !got.some((t) => t.kind === "video")) preview.dataset.camera = "missing";
        useTracks(got);
        const missing = kinds.filter((kind) => !tracks[kind] && !(kind === "video" && camOff.input.checked));
        showNotice(got.length === 0 || Object.keys(ids).length ? error : null, missing);
        await refreshPickers();
      });
      return opening;
    }

    async function refreshPickers() {
      const found = await devices.list();
      if (closed) return;
      if (selects.videoinput) devices.fill(selects.videoinput, "videoinput", found.videoinput, devices.trackDevice(tracks.video));
      devices.fill(selects.audioinput, "audioinput", found.audioinput, devices.trackDevice(tracks.audio));
      devices.fill(selects.audiooutput, "audiooutput", found.audiooutput, prefs.audiooutput);
      speakerField.hidden = !devices.sinkSupported || found.audiooutput.length === 0;
    }

    // The level meter: Web Audio (media/level.js) on the preview's microphone track.
    function startMeter() {
      meter?.disconnect();
      meter = tracks.audio ? levelMeter(new MediaStream([tracks.audio])) : null;
      if (!frame) frame = requestAnimationFrame(drawMeter);
    }

    // Every frame, but the page is only touched when what it shows changes: a write, even of
    // the same text, makes the browser lay out and paint the screen again, 60 times a
    // second, while the person is about to join (and the call to start).
    function drawMeter(now) {
      frame = closed ? 0 : requestAnimationFrame(drawMeter);
      const context = audioContext();
      const running = context && context.state === "running";
      const hint = running || !meter;
      if (meterHint.hidden !== hint) meterHint.hidden = hint;
      if (!running && meter && !meterHint.textContent) meterHint.textContent = gettext("Click anywhere on the page to see your microphone level.");
      const value = running && meter ? loudness(meter.level()) : 0;
      shown = Math.max(value, shown * 0.9);
      const lit = Math.round(shown * METER_SEGMENTS);
      if (meterBar.dataset.lit !== String(lit)) {
        meterBar.dataset.lit = String(lit);
        [...meterBar.children].forEach((segment, index) => segment.classList.toggle("lit", index < lit));
      }
      const percent = String(Math.round(shown * 100));
      if (now - lastAria > 250 && meterBar.getAttribute("aria-valuenow") !== percent) {
        lastAria = now;
        meterBar.setAttribute("aria-valuenow", percent);
      }
    }

    async function loadPeople() {
      if (closed) return;
      const url = config.people_url || `/rooms/${encodeURIComponent(config.slug)}/people`;
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        renderPeople(await response.json());
      } catch (error) {
        console.info("prejoin: who is here is not known yet", error);
      } finally {
        if (!closed) peopleTimer = setTimeout(loadPeople, PEOPLE_EVERY_MS);
      }
    }

    function renderPeople(data) {
      const names = Array.isArray(data.names) ? data.names.filter((name) => typeof name === "string") : [];
      const count = names.length;
      faces.replaceChildren(...names.slice(0, 5).map((name) => avatar(name, "avatar prejoin-face")));
      if (count > 5) faces.append(el("span", { className: "prejoin-face more", text: `+${count - 5}` }));
      if (count === 0) {
        peopleText.textContent = gettext("Nobody is in the call yet. You will be the first.");
      } else {
        let list = names.join(", ");
        try {
          list = new Intl.ListFormat(document.documentElement.lang || undefined, { type: "conjunction" }).format(names);
        } catch {
          // an old browser: commas will do
        }
        peopleText.textContent = fmt(ngettext("%(names)s is in the call.", "%(names)s are in the call.", count), { names: list });
      }
      const capacity = Number(data.capacity) || config.capacity;
      if (data.is_locked) {
        roomNote.textContent = gettext("This room is locked: only moderators can join right now.");
      } else if (capacity && count >= capacity) {
        roomNote.textContent = fmt(gettext("This room is full right now (%(count)s of %(capacity)s). You can join when someone leaves."), { count, capacity });
      } else {
        roomNote.textContent = "";
      }
      roomNote.hidden = !roomNote.textContent;
    }

    function close() {
      closed = true;
      clearTimeout(peopleTimer);
      cancelAnimationFrame(frame);
      meter?.disconnect();
      video.srcObject = null;
      section.remove();
      root.classList.remove("prejoining");
    }

    micOff.input.addEventListener("change", () => {
      devices.save({ micOff: micOff.input.checked });
      paint();
    });
    camOff.input.addEventListener("change", () => {
      devices.save({ camOff: camOff.input.checked });
      if (camOff.input.checked) dropVideo();
      else {
        preview.dataset.camera = "starting";
        open(["video"], selects.videoinput?.value ? { video: selects.videoinput.value } : {});
      }
      paint();
    });
    selects.videoinput?.addEventListener("change", () => {
      devices.save({ videoinput: selects.videoinput.value });
      if (!camOff.input.checked) open(["video"], { video: selects.videoinput.value });
    });
    selects.audioinput.addEventListener("change", () => {
      devices.save({ audioinput: selects.audioinput.value });
      open(["audio"], { audio: selects.audioinput.value });
    });
    selects.audiooutput.addEventListener("change", () => devices.save({ audiooutput: selects.audiooutput.value }));
    testButton.addEventListener("click", () => devices.testSpeaker(selects.audiooutput.value));
    skip.addEventListener("change", () => devices.setSkipPreview(skip.checked));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      join.disabled = true;
      devices.save({ micOff: micOff.input.checked, camOff: !isVoice && camOff.input.checked });
      // Whatever is still opening joins the call too. The call starts (its socket opens)
      // first; the screen goes right after, in a task of its own: taking its video and
      // meter down costs the socket two milliseconds.
      opening.finally(() => {
        resumeAudio();
        resolve();
        setTimeout(close);
      });
    });
    window.addEventListener("pagehide", () => {
      if (!closed) devices.dropPreview();
    });

    paint();
    open(kinds.filter((kind) => !(kind === "video" && camOff.input.checked)));
    if (camOff.input.checked) refreshPickers();
    loadPeople();
    join.focus({ preventScroll: true });
  }

  return { show };
}
