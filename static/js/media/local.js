// @ts-check
// Our own media: the camera and microphone (one MediaStream, whose id is the msid the others
// see) and the shared screen (a MediaStream of its own), and what we say about them: the
// media state {audio, video, screen}. No DOM here.
//
// The session (session.js) asks for devices once we are admitted (acquire), and changes
// the state only through setMedia (session.setMedia wraps it and tells the server). The
// transport listens to what to send:
//
//   "tracks"    new tracks joined the stream (devices found, "Try again", a device where
//               there was none): handlers may return promises; they are awaited
//   "replaced"  {old, track}: a switched device (the same senders carry the new track)
//   "screen"    {track, stream, old}: sharing started (track) or stopped (track null)
//   "change"    {media}: the state changed, whatever the cause (the page repaints, the
//               session tells the server)
//   "lost"      {kind}: a device stopped by itself (unplugged, taken by another app)
//   "processing" {on}: the microphone's voice processing was turned on or off
import { Emitter } from "../emitter.js";

export const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
const SCREEN_CONSTRAINTS = { video: { frameRate: { ideal: 15, max: 30 } }, audio: false };

/**
 * The browser's own voice processing, all together: noise suppression, echo cancellation,
 * automatic gain. Off is for a good microphone or music, where they do harm.
 * @param {boolean} on
 */
export const voiceProcessing = (on) => ({ noiseSuppression: on, echoCancellation: on, autoGainControl: on });

/** @typedef {"audio" | "video" | "screen"} MediaKind */
/** @typedef {{audio: boolean, video: boolean, screen: boolean}} MediaState */

/**
 * @typedef {object} AcquireResult
 * @property {boolean} unsupported   no getUserMedia on this page (not a secure context)
 * @property {DOMException | Error | null} failure  the first failure, if any
 * @property {boolean} audio         a microphone track is live
 * @property {boolean} video         a camera track is live
 */

const refused = (/** @type {any} */ error) => error && (error.name === "NotAllowedError" || error.name === "SecurityError");

export class LocalMedia extends Emitter {
  /**
   * @param {object} options
   * @param {("audio" | "video")[]} options.kinds  ["audio"] in voice rooms
   * @param {(constraints: MediaStreamConstraints) => Promise<MediaStream>} options.getUserMedia
   *   asks for devices (devices.js: the pre-join preview's tracks first, the chosen devices)
   */
  constructor({ kinds, getUserMedia }) {
    super();
    this.kinds = kinds;
    this.getUserMedia = getUserMedia;
    this.stream = new MediaStream();
    /** @type {MediaStreamTrack | null} */
    this.screenTrack = null;
    /** @type {MediaStream | null} */
    this.screenStream = null;
    /** @type {MediaState} */
    this.state = { audio: false, video: false, screen: false };
    this.screenSupported = kinds.includes("video") && Boolean(navigator.mediaDevices?.getDisplayMedia);
    this.processing = true; // voiceProcessing(): what browsers do by default
  }

  /** What a microphone is asked for: the voice processing chosen. */
  audioConstraints() {
    return voiceProcessing(this.processing);
  }

  /** @returns {MediaState} a copy */
  get media() {
    return { ...this.state };
  }

  /**
   * Our live track of a kind, or null.
   * @param {"audio" | "video"} kind
   */
  track(kind) {
    return this.stream.getTracks().find((track) => track.kind === kind && track.readyState === "live") || null;
  }

  changed() {
    this.emit("change", { media: this.media });
  }

  // Devices, once: the camera and microphone, or what can be had of them. `off`: kinds to
  // join with turned off ("Join with microphone off"): their tracks start disabled.
  /** @param {{audio?: boolean, video?: boolean}} [off] @returns {Promise<AcquireResult>} */
  async acquire(off = {}) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return { unsupported: true, failure: null, audio: false, video: false };
    }
    const video = this.kinds.includes("video");
    const attempts = video
      ? [{ audio: this.audioConstraints(), video: VIDEO_CONSTRAINTS }, { audio: this.audioConstraints() }, { video: VIDEO_CONSTRAINTS }]
      : [{ audio: this.audioConstraints() }];
    let stream = null;
    let failure = null;
    for (const constraints of attempts) {
      try {
        stream = await this.getUserMedia(constraints);
        break;
      } catch (error) {
        failure = failure || /** @type {Error} */ (error);
        if (refused(error)) break; // refused: asking again for less would be refused too
      }
    }
    for (const track of stream ? stream.getTracks() : []) {
      if (off[/** @type {"audio" | "video"} */ (track.kind)]) track.enabled = false;
      const ready = await this.processed(track);
      if (ready !== track) track.stop();
      this.addTrack(ready);
    }
    this.state.audio = Boolean(this.track("audio")?.enabled);
    this.state.video = Boolean(this.track("video")?.enabled);
    await Promise.all(this.emit("tracks"));
    this.changed();
    return { unsupported: false, failure, audio: Boolean(this.track("audio")), video: Boolean(this.track("video")) };
  }

  // "Try again": the devices are asked for again from scratch.
  async reacquire() {
    for (const track of this.stream.getTracks()) {
      track.stop();
      this.stream.removeTrack(track);
    }
    return this.acquire();
  }

  /** @param {MediaStreamTrack} track */
  addTrack(track) {
    this.stream.addTrack(track);
    track.addEventListener("ended", () => this.lost(track));
  }

  /** @param {MediaStreamTrack} track */
  lost(track) {
    if (!this.stream.getTracks().includes(track)) return;
    this.stream.removeTrack(track);
    const kind = /** @type {"audio" | "video"} */ (track.kind);
    this.state[kind] = false;
    this.changed();
    this.emit("lost", { kind });
  }

  // Put `track` in place of our current track of its kind (a device switched in the call):
  // the same senders carry it, nothing is renegotiated. Without a current track (none could
  // be had before) it joins the call like "Try again" does, by renegotiation, turned on.
  /** @param {MediaStreamTrack} track */
  async useTrack(track) {
    const kind = /** @type {"audio" | "video"} */ (track.kind);
    const old = this.track(kind);
    if (old) track.enabled = old.enabled;
    const ready = await this.processed(track);
    if (ready !== track) track.stop();
    track = ready;
    if (old) {
      track.enabled = old.enabled;
      await Promise.all(this.emit("replaced", { old, track }));
      this.stream.removeTrack(old);
      old.stop();
    }
    this.addTrack(track);
    if (!old) {
      this.state[kind] = track.enabled;
      await Promise.all(this.emit("tracks"));
    }
    this.changed();
  }

  /**
   * Turn a kind on or off. Audio and video: the track is enabled or disabled (the
   * transceiver keeps it, nothing is renegotiated; others receive silence or black); without
   * a track it stays off. Screen: sharing starts (the browser asks which screen) or stops.
   * Resolves to the state of that kind afterwards.
   * @param {MediaKind} kind @param {boolean} on
   * @returns {Promise<boolean>}
   */
  async setMedia(kind, on) {
    if (kind === "screen") {
      if (on) await this.startScreen();
      else await this.stopScreen();
      return this.state.screen;
    }
    const track = this.track(kind);
    const value = Boolean(track) && on;
    if (track) track.enabled = value;
    if (this.state[kind] !== value) {
      this.state[kind] = value;
      this.changed();
    }
    return value;
  }

  /**
   * Turn the microphone's voice processing on or off (voiceProcessing), on the live
   * microphone and on every one from now on. Nothing is renegotiated: applyConstraints
   * where the engine changes processing on a live track (Firefox), otherwise a new track
   * of the same microphone with it, put into the same senders (Chromium changes it only
   * when the device opens). Resolves to the microphone's settings afterwards.
   * @param {boolean} on
   */
  async setProcessing(on) {
    this.processing = on;
    const track = this.track("audio");
    if (track) {
      const ready = await this.processed(track);
      if (ready !== track) await this.useTrack(ready);
    }
    this.emit("processing", { on });
    return this.track("audio")?.getSettings() ?? null;
  }

  /**
   * Whether this microphone can have its voice processing on and off (a fake or some
   * professional devices offer only one; then there is nothing to switch).
   */
  processingSwitchable() {
    const track = this.track("audio");
    const capabilities = /** @type {Record<string, unknown>} */ (track?.getCapabilities?.() || {});
    const offered = capabilities.noiseSuppression;
    return !Array.isArray(offered) || (offered.includes(true) && offered.includes(false));
  }

  /** @param {MediaStreamTrack} track */
  hasProcessing(track) {
    const settings = /** @type {Record<string, unknown>} */ (track.getSettings());
    const capabilities = /** @type {Record<string, unknown>} */ (track.getCapabilities?.() || {});
    return Object.entries(voiceProcessing(this.processing)).every(([name, value]) => {
      const offered = capabilities[name];
      // Unknown to the engine, already so, or not possible on this device: nothing to do.
      return settings[name] === undefined || settings[name] === value || (Array.isArray(offered) && !offered.includes(value));
    });
  }

  /**
   * `track` with the wanted voice processing, or a new track of the same microphone that
   * has it (its `enabled` copied). Anything else than audio is returned as it is.
   * @param {MediaStreamTrack} track
   */
  async processed(track) {
    if (track.kind !== "audio" || this.hasProcessing(track)) return track;
    try {
      await track.applyConstraints({ ...track.getConstraints(), ...voiceProcessing(this.processing) });
    } catch (error) {
      console.warn("media: voice processing not applied to the live track", error);
    }
    if (this.hasProcessing(track)) return track;
    const { deviceId } = track.getSettings();
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { ...voiceProcessing(this.processing), ...(deviceId ? { deviceId: { exact: deviceId } } : {}) },
      });
      const [fresh] = stream.getAudioTracks();
      fresh.enabled = track.enabled;
      return fresh;
    } catch (error) {
      console.warn("media: the microphone could not be opened again with its new processing", error);
      return track;
    }
  }

  // Throws when the screen could not be had for another reason than a refusal.
  async startScreen() {
    if (this.screenTrack || !this.screenSupported) return;
    let display;
    try {
      display = await navigator.mediaDevices.getDisplayMedia(SCREEN_CONSTRAINTS);
    } catch (error) {
      const name = /** @type {any} */ (error).name;
      if (name === "NotAllowedError" || name === "AbortError") return; // the person said no
      throw error;
    }
    const [screen] = display.getVideoTracks();
    if (!screen) return;
    if ("contentHint" in screen) screen.contentHint = "detail";
    this.screenTrack = screen;
    this.screenStream = new MediaStream([screen]);
    // The browser's own "Stop sharing" bar ends the track.
    screen.addEventListener("ended", () => {
      if (this.screenTrack === screen) this.stopScreen();
    });
    this.state.screen = true;
    this.changed();
    await Promise.all(this.emit("screen", { track: screen, stream: this.screenStream, old: null }));
  }

  async stopScreen() {
    const old = this.screenTrack;
    if (!old) return;
    this.screenTrack = null;
    this.screenStream = null;
    old.stop();
    this.state.screen = false;
    this.changed();
    await Promise.all(this.emit("screen", { track: null, stream: null, old }));
  }

  // The call is over: every device is let go.
  stop() {
    for (const track of this.stream.getTracks()) track.stop();
    this.stopScreen();
  }
}
