// @ts-check
// The SFU transport (transport/index.js describes the interface): two RTCPeerConnections
// whatever the room size, both with the room's Janus server, which the page never talks
// to: every message goes through Confab's websocket (docs/protocol.md, "SFU rooms").
//
// - Publisher (send-only): our microphone and camera, the camera simulcast in three layers
//   (rids h, m /2, l /4), and a screen as a further video track when we share one. Offered
//   with `sfu-publish`; Janus's answer comes back as `sfu-answer {pc: "publisher"}`. A new
//   camera or microphone goes into the same sender (replaceTrack): nothing is renegotiated.
// - Subscriber (receive-only): everyone else's streams on one connection that Janus offers
//   (`sfu-offer`, with a map of m-lines to people) and updates as people come and go; we
//   answer with `sfu-answer`. Each m-line's track is announced as that person's ("track"),
//   and taken back ("track-removed") when the m-line ends or passes to someone else.
// - Layers: `preferLayer(id, layer)` asks Janus for that simulcast layer of someone's
//   camera (`sfu-layer`); Janus drops a weak subscriber to a lower layer by itself.
// - A welcome (a join or a resumed seat) starts both connections afresh: the server gives
//   every socket a Janus session of its own.
//
// Per-participant events stay keyed by peer id: "connection" reports the subscriber's
// state for everyone who sends us something, "stats" hands each person the subscriber's
// report without the others' inbound streams.
import { Emitter } from "../emitter.js";

const STATS_EVERY_MS = 2000;
// Three layers of the camera. The top one at the camera's own size; bitrates keep a room of
// 30 within an ordinary uplink (one stream up, whatever the room size).
const SIMULCAST = [
  { rid: "h", maxBitrate: 1_200_000 },
  { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 350_000 },
  { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 120_000 },
];
// The camera is asked for at 720p here (the mesh takes 360p): browsers send fewer layers
// for small frames (Chrome two at 640x360), and the stage should get a large one.
const CAMERA_SIZE = { width: { ideal: 1280 }, height: { ideal: 720 } };

/** @param {MediaStreamTrack | null} track */
async function largeCamera(track) {
  if (!track || track.kind !== "video") return;
  try {
    await track.applyConstraints({ ...track.getConstraints(), ...CAMERA_SIZE });
  } catch (error) {
    console.info("sfu: the camera keeps its size", error);
  }
}

/**
 * What the server says an m-line of our subscriber carries.
 * @typedef {object} StreamInfo
 * @property {string} mid
 * @property {string} peer_id
 * @property {"audio" | "video"} kind
 * @property {import("./index.js").TrackSource} source
 */

export class SfuTransport extends Emitter {
  /** @param {import("./index.js").TransportOptions} options */
  constructor({ signaling, local, accept }) {
    super();
    this.kind = "sfu";
    this.signaling = signaling;
    this.local = local;
    this.accept = accept;
    /** @type {string | null} */
    this.selfId = null;
    /** @type {RTCConfiguration} */
    this.iceConfig = { iceServers: [], iceTransportPolicy: "all" };
    /** @type {RTCPeerConnection | null} */
    this.publisher = null;
    /** @type {RTCPeerConnection | null} */
    this.subscriber = null;
    this.generation = 0; // connections made so far (stats counters restart with each)
    /** @type {Map<string, StreamInfo>} mid -> what it carries, as last offered */
    this.streams = new Map();
    /** @type {Map<string, {id: string, track: MediaStreamTrack, source: import("./index.js").TrackSource}>} mid -> announced */
    this.announced = new Map();
    /** @type {Map<string, "low" | "medium" | "high">} */
    this.layers = new Map();
    /** @type {Set<string>} participants we were asked to connect with */
    this.wanted = new Set();
    /** @type {RTCRtpTransceiver | null} */
    this.screenTransceiver = null;
    this.publishing = Promise.resolve(); // offers to Janus, one at a time
    this.subscribing = Promise.resolve(); // Janus's offers, one at a time
    this.seated = false; // between a welcome and the end of our seat

    signaling.on("sfu-answer", (message) => {
      if (message.pc !== "publisher" || !this.publisher) return;
      const pc = this.publisher;
      this.publishing = this.publishing.then(() => this.takeAnswer(pc, message.sdp));
    });
    signaling.on("sfu-offer", (message) => {
      this.subscribing = this.subscribing.then(() => this.takeOffer(message.sdp, message.streams || []));
    });
    signaling.on("sfu-candidate", (message) => {
      const pc = message.pc === "publisher" ? this.publisher : this.subscriber;
      if (pc && message.candidate) pc.addIceCandidate(message.candidate).catch((error) => console.warn("sfu: candidate", error));
    });
    // The room's Janus went away and the room moved to another (docs/protocol.md): both
    // connections start over there; the people stay.
    signaling.on("sfu-restart", () => {
      if (!this.seated) return;
      this.closeAll();
      this.startPublisher();
    });
    signaling.on("ice-servers", (message) => {
      if (!Array.isArray(message.ice_servers)) return;
      this.iceConfig = { ...this.iceConfig, iceServers: message.ice_servers };
      for (const pc of this.pcs()) {
        try {
          pc.setConfiguration(this.iceConfig);
        } catch (error) {
          console.warn("sfu: new ICE servers refused", error);
        }
      }
    });

    // Our media: new tracks and switched devices go into the existing senders (no
    // renegotiation); a screen adds or retires an m-line (a new offer to Janus).
    local.on("tracks", () => this.attachLocalTracks());
    local.on("replaced", ({ track }) => this.attachLocalTracks(track));
    local.on("screen", ({ track }) => this.setScreen(track));

    setInterval(() => this.pollStats(), STATS_EVERY_MS);
  }

  // --- The interface ----------------------------------------------------------------------

  /** @param {{selfId: string, iceServers: RTCIceServer[], iceTransportPolicy: RTCIceTransportPolicy}} settings */
  configure({ selfId, iceServers, iceTransportPolicy }) {
    this.selfId = selfId;
    this.iceConfig = { iceServers, iceTransportPolicy };
    // Every welcome comes with a fresh Janus session on the server: start over.
    this.closeAll();
    this.seated = true;
    this.startPublisher();
  }

  /** @param {string} id */
  connect(id) {
    this.wanted.add(id);
    this.emit("connection", { id, state: this.stateOf(id) });
    return true;
  }

  /** @param {string} _id */
  resume(_id) {
    // Nothing per person: configure() restarted both connections.
  }

  /** @param {string} id */
  remove(id) {
    this.wanted.delete(id);
    this.layers.delete(id);
    for (const [mid, announced] of [...this.announced]) {
      if (announced.id === id) this.retract(mid);
    }
  }

  removeAll() {
    for (const id of [...this.wanted]) this.remove(id);
    this.seated = false;
    this.closeAll();
  }

  /** @param {string} id */
  has(id) {
    return this.wanted.has(id) && this.publisher !== null;
  }

  ids() {
    return [...this.wanted];
  }

  /** @param {string} id */
  info(id) {
    if (!this.has(id)) return null;
    const pc = this.subscriber || this.publisher;
    return {
      state: this.stateOf(id),
      iceState: pc ? pc.iceConnectionState : "new",
      generation: this.generation,
      iceRestarts: 0,
      rebuilds: 0,
    };
  }

  // The subscriber's report, less the inbound streams of everyone else: each tile's quality
  // bars measure that person's media.
  /** @param {string} id */
  async getStats(id) {
    const pc = this.subscriber;
    if (!pc || pc.connectionState === "closed") return null;
    const report = await pc.getStats();
    const mids = new Set([...this.streams.values()].filter((s) => s.peer_id === id).map((s) => s.mid));
    /** @type {Map<string, any>} */
    const mine = new Map();
    report.forEach((stat, key) => {
      if (stat.type === "inbound-rtp" && stat.mid !== undefined && !mids.has(String(stat.mid))) return;
      mine.set(key, stat);
    });
    return /** @type {RTCStatsReport} */ (/** @type {unknown} */ (mine));
  }

  /** @param {string | null} [_id] */
  restartIce(_id = null) {
    const pc = this.publisher;
    if (!pc || pc.connectionState === "closed") return 0;
    pc.restartIce();
    this.offerToJanus(pc);
    return 1;
  }

  /** @param {string} _id */
  rebuild(_id) {
    return false; // both connections are the room's, not one person's
  }

  /** @param {string} id @param {"low" | "medium" | "high"} layer */
  preferLayer(id, layer) {
    if (this.layers.get(id) === layer) return true;
    this.layers.set(id, layer);
    this.signaling.send({ type: "sfu-layer", peer_id: id, layer });
    return true;
  }

  /** @param {string} _id */
  connections(_id) {
    return this.pcs();
  }

  // --- Publisher --------------------------------------------------------------------------

  pcs() {
    return /** @type {RTCPeerConnection[]} */ ([this.publisher, this.subscriber].filter(Boolean));
  }

  closeAll() {
    for (const mid of [...this.announced.keys()]) this.retract(mid);
    for (const pc of this.pcs()) pc.close();
    this.publisher = null;
    this.subscriber = null;
    this.screenTransceiver = null;
    this.streams.clear();
    this.layers.clear();
  }

  startPublisher() {
    const pc = new RTCPeerConnection(this.iceConfig);
    this.publisher = pc;
    this.generation += 1;
    this.watch(pc, "publisher");
    const video = this.local.kinds.includes("video");
    pc.addTransceiver(this.local.track("audio") || "audio", { direction: "sendonly", streams: [this.local.stream] });
    if (video) {
      pc.addTransceiver(this.local.track("video") || "video", {
        direction: "sendonly",
        streams: [this.local.stream],
        sendEncodings: SIMULCAST,
      });
    }
    if (this.local.screenTrack) this.addScreen(pc, this.local.screenTrack);
    this.publishing = this.publishing.then(() => largeCamera(this.local.track("video")));
    this.offerToJanus(pc);
  }

  /** @param {MediaStreamTrack} [only] */
  async attachLocalTracks(only) {
    const pc = this.publisher;
    if (!pc) return;
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver === this.screenTransceiver || transceiver.stopped) continue;
      const kind = /** @type {"audio" | "video"} */ (transceiver.receiver.track.kind);
      const track = this.local.track(kind);
      if (only && track !== only) continue;
      if (track && transceiver.sender.track !== track) {
        await largeCamera(track);
        await transceiver.sender.replaceTrack(track);
      }
    }
  }

  /** @param {RTCPeerConnection} pc @param {MediaStreamTrack} track */
  addScreen(pc, track) {
    const stream = this.local.screenStream || new MediaStream([track]);
    this.screenTransceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  }

  /** @param {MediaStreamTrack | null} track */
  async setScreen(track) {
    const pc = this.publisher;
    if (!pc) return;
    if (track) {
      if (this.screenTransceiver && !this.screenTransceiver.stopped) {
        await this.screenTransceiver.sender.replaceTrack(track);
        this.screenTransceiver.direction = "sendonly";
      } else {
        this.addScreen(pc, track);
      }
    } else if (this.screenTransceiver) {
      await this.screenTransceiver.sender.replaceTrack(null);
      this.screenTransceiver.direction = "inactive";
    }
    this.offerToJanus(pc);
  }

  /** @param {RTCPeerConnection} pc */
  offerToJanus(pc) {
    this.publishing = this.publishing.then(async () => {
      if (this.publisher !== pc) return;
      try {
        await pc.setLocalDescription(await pc.createOffer());
        const screen = this.screenTransceiver;
        const screenMid = screen && screen.direction === "sendonly" ? screen.mid : null;
        this.signaling.send({ type: "sfu-publish", sdp: pc.localDescription?.sdp, screen_mid: screenMid });
      } catch (error) {
        console.warn("sfu: publishing failed", error);
      }
    });
  }

  /** @param {RTCPeerConnection} pc @param {string} sdp */
  async takeAnswer(pc, sdp) {
    if (this.publisher !== pc || pc.signalingState !== "have-local-offer") return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp });
    } catch (error) {
      console.warn("sfu: Janus's answer refused", error);
    }
  }

  // --- Subscriber -------------------------------------------------------------------------

  /** @param {string} sdp @param {StreamInfo[]} streams */
  async takeOffer(sdp, streams) {
    if (!this.seated) return; // our seat is gone
    let pc = this.subscriber;
    if (!pc) {
      pc = new RTCPeerConnection(this.iceConfig);
      this.subscriber = pc;
      this.watch(pc, "subscriber");
      pc.addEventListener("track", () => this.announce());
    }
    this.streams = new Map(streams.filter((s) => this.accept(s.peer_id)).map((s) => [String(s.mid), s]));
    try {
      await pc.setRemoteDescription({ type: "offer", sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      this.signaling.send({ type: "sfu-answer", sdp: pc.localDescription?.sdp });
    } catch (error) {
      console.warn("sfu: Janus's offer refused", error);
      return;
    }
    this.announce();
    for (const id of new Set([...this.streams.values()].map((s) => s.peer_id))) {
      this.wanted.add(id);
      const layer = this.layers.get(id);
      if (layer) this.signaling.send({ type: "sfu-layer", peer_id: id, layer });
      this.emit("connection", { id, state: this.stateOf(id) });
    }
  }

  // Announce each live m-line's track as its person's; take back what changed hands.
  announce() {
    const pc = this.subscriber;
    if (!pc) return;
    const live = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const mid = transceiver.mid;
      const info = mid === null ? undefined : this.streams.get(mid);
      if (!info || transceiver.currentDirection === "inactive" || transceiver.stopped) continue;
      live.set(mid, { id: info.peer_id, track: transceiver.receiver.track, source: info.source });
    }
    for (const [mid, was] of [...this.announced]) {
      const now = live.get(mid);
      if (!now || now.id !== was.id || now.track !== was.track || now.source !== was.source) this.retract(mid);
    }
    for (const [mid, now] of live) {
      if (this.announced.has(mid)) continue;
      this.announced.set(mid, now);
      this.emit("track", now);
    }
  }

  /** @param {string} mid */
  retract(mid) {
    const was = this.announced.get(mid);
    if (!was) return;
    this.announced.delete(mid);
    this.emit("track-removed", was);
  }

  // --- Both -------------------------------------------------------------------------------

  /** @param {RTCPeerConnection} pc @param {"publisher" | "subscriber"} role */
  watch(pc, role) {
    pc.addEventListener("icecandidate", ({ candidate }) => {
      if (!candidate || !this.pcs().includes(pc)) return;
      this.signaling.send({ type: "sfu-candidate", pc: role, candidate: candidate.toJSON() });
      this.emit("candidate", {
        id: this.selfId || "",
        candidate: {
          type: candidate.type,
          protocol: candidate.protocol,
          address: candidate.address,
          port: candidate.port,
          // @ts-ignore: RTCIceCandidate.url is not in every lib.dom
          url: candidate.url || null,
        },
      });
    });
    pc.addEventListener("icecandidateerror", (event) => {
      const error = /** @type {RTCPeerConnectionIceErrorEvent} */ (event);
      this.emit("candidate-error", { id: this.selfId || "", url: error.url || "", code: error.errorCode, text: error.errorText || "" });
    });
    pc.addEventListener("connectionstatechange", () => {
      if (!this.pcs().includes(pc)) return;
      for (const id of this.wanted) this.emit("connection", { id, state: this.stateOf(id) });
    });
  }

  // What carries this person's media: the subscriber once they send us something; until
  // then our publisher (we are connected to the room even if they send nothing).
  /** @param {string} id @returns {import("./index.js").ConnectionState} */
  stateOf(id) {
    const sends = [...this.streams.values()].some((s) => s.peer_id === id);
    const pc = sends && this.subscriber ? this.subscriber : this.publisher;
    return /** @type {import("./index.js").ConnectionState} */ (pc ? pc.connectionState : "new");
  }

  async pollStats() {
    if (!this.subscriber || this.subscriber.connectionState !== "connected") return;
    for (const id of this.wanted) {
      const report = await this.getStats(id);
      if (report) this.emit("stats", { id, generation: this.generation, report });
    }
  }
}
