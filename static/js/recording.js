// @ts-check
// Recording the meeting, in a moderator's own browser (nothing goes to the server): the
// tiles as the page shows them, drawn on a canvas, and everyone's sound mixed with Web
// Audio, recorded with MediaRecorder and saved as a WebM file on this machine. Consent is
// shown: the page asks the server first (`recording {on}`) and starts its recorder only
// when the server has told the whole room, and every page shows who is recording for as
// long as it lasts (docs/protocol.md, `recording`). Stopping, leaving or losing the socket
// ends it and saves what was recorded.
//
//   setupRecording({ui, config, session, local});
import { el, fmt, gettext, icon, label } from "./dom.js";
import { withDuration } from "./media/webm.js";

const FPS = 15;
const WIDTH = 1280;
const HEIGHT = 720;
const TYPES = ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm"];

/**
 * @param {object} options
 * @param {Record<string, HTMLElement>} options.ui
 * @param {Record<string, any>} options.config
 * @param {import("./session.js").CallSession} options.session
 * @param {import("./media/local.js").LocalMedia} options.local
 */
export function setupRecording({ ui, config, session, local }) {
  const supported = typeof MediaRecorder !== "undefined" && TYPES.some((type) => MediaRecorder.isTypeSupported(type));
  const indicator = el("span", { className: "stage-recording", id: "recording-indicator", role: "status", hidden: true });
  ui.locked.after(indicator);

  const button = el("button", { type: "button", className: "control mod-only record-button", id: "toggle-recording", "aria-pressed": "false" }, icon("record"));
  if (supported) ui.chatToggle.before(button);

  /** @type {{recorder: MediaRecorder, chunks: Blob[], startedAt: number, stop(): Promise<void>} | null} */
  let running = null;
  let asked = false; // we asked the server to start and wait for its `recording`

  function paint() {
    const names = [...session.recordings.values()].map((r) => r.name);
    indicator.hidden = names.length === 0;
    indicator.textContent = names.length ? fmt(gettext("Recording: %(names)s"), { names: names.join(", ") }) : "";
    const mine = Boolean(running) || asked;
    button.classList.toggle("active", mine);
    button.setAttribute("aria-pressed", String(mine));
    label(button, mine ? gettext("Stop recording and save it") : gettext("Record the meeting on this computer"));
    /** @type {HTMLButtonElement} */ (button).disabled = session.phase !== "joined";
  }

  button.addEventListener("click", async () => {
    if (running || asked) {
      await finish(true);
    } else if (session.setRecording(true)) {
      asked = true;
      paint();
    }
  });

  session.on("recordings", async ({ changed }) => {
    paint();
    if (!changed || changed.id !== session.self.id) return;
    if (changed.on && asked && !running) {
      asked = false;
      start();
    } else if (!changed.on && running) {
      await finish(false); // the server ended it (our socket dropped): save what we have
    }
    paint();
  });
  session.on("phase", async ({ phase }) => {
    if (phase !== "joined") {
      asked = false;
      await finish(false); // the socket is gone: the others no longer see it
    }
    paint();
  });
  session.on("leaving", () => finish(true));
  session.on("self", paint);

  // --- The recorder --------------------------------------------------------------------

  function start() {
    const canvas = /** @type {HTMLCanvasElement} */ (el("canvas", { width: WIDTH, height: HEIGHT }));
    const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    const audio = new AudioContext();
    const mix = audio.createMediaStreamDestination();
    /** @type {Map<string, MediaStreamAudioSourceNode>} */
    const sources = new Map();

    // Everyone's sound: our microphone and each tile's, as tracks come and go.
    function connectSound() {
      const tracks = [local.track("audio"), ...[...ui.tiles.querySelectorAll(".tile:not(.local) .tile-media")].flatMap((media) => {
        const stream = /** @type {HTMLMediaElement} */ (media).srcObject;
        return stream instanceof MediaStream ? stream.getAudioTracks() : [];
      })].filter((track) => track && track.readyState === "live");
      const live = new Set(tracks.map((track) => /** @type {MediaStreamTrack} */ (track).id));
      for (const track of tracks) {
        const t = /** @type {MediaStreamTrack} */ (track);
        if (sources.has(t.id)) continue;
        const source = audio.createMediaStreamSource(new MediaStream([t]));
        source.connect(mix);
        sources.set(t.id, source);
      }
      for (const [id, source] of sources) {
        if (!live.has(id)) {
          source.disconnect();
          sources.delete(id);
        }
      }
    }

    let frame = 0;
    // A timer, not requestAnimationFrame: it goes on (slower) in a background tab.
    const timer = setInterval(() => {
      drawGrid(context, ui.tiles);
      frame += 1;
      if (frame % FPS === 1) connectSound();
    }, 1000 / FPS);
    drawGrid(context, ui.tiles);
    connectSound();

    const stream = new MediaStream([...canvas.captureStream(FPS).getVideoTracks(), ...mix.stream.getAudioTracks()]);
    const mimeType = TYPES.find((type) => MediaRecorder.isTypeSupported(type));
    const recorder = new MediaRecorder(stream, { mimeType, videoBitsPerSecond: 2_500_000 });
    /** @type {Blob[]} */
    const chunks = [];
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size) chunks.push(event.data);
    });
    const startedAt = performance.now();
    const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve, { once: true }));
    recorder.start(1000);
    running = {
      recorder,
      chunks,
      startedAt,
      async stop() {
        clearInterval(timer);
        if (recorder.state !== "inactive") recorder.stop();
        await stopped;
        for (const track of stream.getTracks()) track.stop();
        for (const source of sources.values()) source.disconnect();
        audio.close().catch(() => {});
      },
    };
  }

  /** @param {boolean} tell  say so to the server (it knows already when our socket went) */
  async function finish(tell) {
    const was = running;
    running = null;
    if (tell && (was || asked)) session.setRecording(false);
    asked = false;
    paint();
    if (!was) return;
    await was.stop();
    const duration = performance.now() - was.startedAt;
    const raw = new Uint8Array(await new Blob(was.chunks).arrayBuffer());
    save(new Blob([withDuration(raw, duration)], { type: "video/webm" }));
  }

  /** @param {Blob} blob */
  function save(blob) {
    const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-");
    const link = el("a", { href: URL.createObjectURL(blob), download: `confab-${config.slug}-${stamp}.webm`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(/** @type {HTMLAnchorElement} */ (link).href), 60_000);
  }

  paint();
  return { button, indicator, get recording() { return Boolean(running); } };
}

// The tiles as a grid, with their names: what the person recording sees, roughly.
/** @param {CanvasRenderingContext2D} context @param {HTMLElement} tiles */
function drawGrid(context, tiles) {
  context.fillStyle = "#0e1117";
  context.fillRect(0, 0, WIDTH, HEIGHT);
  const shown = [...tiles.querySelectorAll(".tile")].filter((tile) => !(/** @type {HTMLElement} */ (tile).hidden));
  const count = Math.max(1, shown.length);
  const columns = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const gap = 8;
  const cellWidth = (WIDTH - gap * (columns + 1)) / columns;
  const cellHeight = (HEIGHT - gap * (rows + 1)) / rows;
  shown.forEach((tile, index) => {
    const x = gap + (index % columns) * (cellWidth + gap);
    const y = gap + Math.floor(index / columns) * (cellHeight + gap);
    context.fillStyle = "#1a1f29";
    context.fillRect(x, y, cellWidth, cellHeight);
    const video = /** @type {HTMLVideoElement | null} */ (tile.querySelector("video.tile-media"));
    const showsVideo = video && !tile.classList.contains("no-video") && video.readyState >= 2 && video.videoWidth > 0;
    if (video && showsVideo) {
      const scale = Math.min(cellWidth / video.videoWidth, cellHeight / video.videoHeight);
      const w = video.videoWidth * scale;
      const h = video.videoHeight * scale;
      context.drawImage(video, x + (cellWidth - w) / 2, y + (cellHeight - h) / 2, w, h);
    } else {
      const initial = tile.querySelector(".avatar-initial")?.textContent || "";
      context.fillStyle = "#4f46e5";
      context.beginPath();
      context.arc(x + cellWidth / 2, y + cellHeight / 2, Math.min(cellWidth, cellHeight) / 6, 0, 2 * Math.PI);
      context.fill();
      context.fillStyle = "#fff";
      context.font = `bold ${Math.round(Math.min(cellWidth, cellHeight) / 7)}px sans-serif`;
      context.textAlign = "center";
      context.textBaseline = "middle";
      context.fillText(initial, x + cellWidth / 2, y + cellHeight / 2);
    }
    const name = tile.querySelector(".tile-name")?.textContent || "";
    if (name) {
      context.font = "600 20px sans-serif";
      context.textAlign = "left";
      context.textBaseline = "bottom";
      const width = context.measureText(name).width;
      context.fillStyle = "rgb(0 0 0 / 55%)";
      context.fillRect(x + 10, y + cellHeight - 40, width + 20, 30);
      context.fillStyle = "#fff";
      context.fillText(name, x + 20, y + cellHeight - 14);
    }
  });
}
