// @ts-check
// The mesh transport (transport/index.js describes the interface): one RTCPeerConnection
// per other participant, negotiated through the signaling relay. docs/protocol.md,
// "Negotiation", is the contract; in short:
//
// - The newcomer offers to everyone already there (connect); the others make their
//   connection when the offer arrives. Later renegotiations (a camera that appears, a screen)
//   use perfect negotiation: the peer with the smaller peer_id is polite and rolls back its
//   own offer on a collision; the impolite one ignores the colliding offer. Candidates that
//   come before the remote description wait in a queue. An unanswered offer is sent again.
// - Repair: "disconnected" for DISCONNECTED_GRACE_MS, or "failed", restarts ICE on the same
//   connection; still not connected REBUILD_AFTER_MS later, the connection is rebuilt (a new
//   RTCPeerConnection and a fresh offer). The other side sees a new DTLS fingerprint and
//   rebuilds too. Restarted and connected again, but their audio or video no longer
//   arriving for MEDIA_CHECK_MS, it is rebuilt as well: see verifyMedia.
// - Our tracks: camera and microphone in one MediaStream (their msid), one transceiver per
//   kind (recvonly without a track, so people without devices still receive). Switching a
//   device replaces the track in the same sender: nothing is renegotiated.
// - Screen share: the screen goes in a MediaStream of its own on a spare video transceiver
//   (one the other side made for its screen, recvonly here, or a new one), once the
//   connection's first negotiation is done so that the camera's m-line comes first.
//   Stopping empties the sender and sets it back to recvonly; the m-line stays for the next
//   share. A remote video track is a screen when its stream id differs from that peer's
//   audio track's; without audio, when it is not on the first video m-line.
// - Data channels: "datalink" is emitted as each connection is made. Negotiated channels
//   that every connection has from the start (files.js's control channel) are declared
//   first (declareChannel): a connection made ahead has them in its first offer.
// - A newcomer's first connection is made ahead (prime), on the pre-join screen: its
//   transceivers, declared channels, offer and first candidates are ready before the
//   welcome, which then only names whom it goes to. It is used only if it still fits: the
//   same tracks of each kind, the same ICE servers and policy, credentials still fresh.
// - Fresh TURN credentials (`ice-servers`) go into every connection (setConfiguration) and
//   into connections made from now on.
import { Emitter } from "../emitter.js";

const DISCONNECTED_GRACE_MS = 2000;
const REBUILD_AFTER_MS = 15000;
// After an ICE restart connects: a moment for the media to move to the new candidate pair,
// then how long their media may stay away before the connection is rebuilt.
const MEDIA_SETTLE_MS = 1500;
const MEDIA_CHECK_MS = 5000;
// Rebuilds in a row for want of media, before the connection is left as it is.
const MAX_MEDIA_REBUILDS = 3;
// An offer can be lost with a dropped socket, or go to a peer whose socket was down. While
// it stays unanswered it is sent again now and then: the other side answers it, or, if both
// offered, perfect negotiation settles which offer wins. (The offer is told apart by a
// serial number: its SDP text grows as candidates are gathered.)
const OFFER_RETRY_MS = 2500;
const STATS_EVERY_MS = 2000;
// A connection is made ahead for the next person (newConnection) this long after the last
// one was taken, once the page is idle.
const SPARE_AFTER_MS = 3000;
// Remote tracks are announced when the page is idle after a negotiation, or after this.
const ANNOUNCE_WITHIN_MS = 100;
// A new connection's video bitrate is capped (capBitrates) this long after it connects.
const CAP_AFTER_MS = 1000;
// The pre-join screen's connection (prime) is made once the page is idle, or after this.
const PRIME_IDLE_TIMEOUT_MS = 500;

/**
 * Everything the mesh keeps about one other participant (declared here only).
 * @typedef {object} Link
 * @property {string} id
 * @property {RTCPeerConnection | null} pc
 * @property {number} generation        connections made so far (a rebuild makes a new one)
 * @property {boolean} polite
 * @property {boolean} makingOffer
 * @property {boolean} ignoreOffer
 * @property {boolean} settingRemoteAnswer
 * @property {RTCIceCandidateInit[]} pendingCandidates  came before the remote description
 * @property {Promise<void>} queue      their signaling messages, handled in order
 * @property {number} offerSerial
 * @property {ReturnType<typeof setTimeout> | null} offerRetry
 * @property {ReturnType<typeof setTimeout> | null} graceTimer
 * @property {ReturnType<typeof setTimeout> | null} rebuildTimer
 * @property {string | null} ufrag  our ICE username fragment when the last negotiation settled
 * @property {number} iceRestarts
 * @property {number} rebuilds
 * @property {string | null} mainStreamId  the stream id of their microphone track (msid)
 * @property {Map<MediaStreamTrack, import("./index.js").TrackSource>} tracks  remote tracks announced on this connection
 * @property {boolean} holding          a description of theirs is being handled: new remote tracks wait
 * @property {{pc: RTCPeerConnection, track: MediaStreamTrack, source: import("./index.js").TrackSource}[]} held
 */

/**
 * @param {string} id
 * @param {boolean} polite
 * @returns {Link}
 */
function makeLink(id, polite) {
  return {
    id,
    pc: null,
    generation: 0,
    polite,
    makingOffer: false,
    ignoreOffer: false,
    settingRemoteAnswer: false,
    pendingCandidates: [],
    queue: Promise.resolve(),
    offerSerial: 0,
    offerRetry: null,
    graceTimer: null,
    rebuildTimer: null,
    ufrag: null,
    iceRestarts: 0,
    rebuilds: 0,
    mainStreamId: null,
    tracks: new Map(),
    holding: false,
    held: [],
  };
}

/**
 * A newcomer's first connection, made before the welcome (MeshTransport.prime).
 * @typedef {object} Primed
 * @property {RTCPeerConnection} pc
 * @property {Map<string, MediaStreamTrack | null>} tracks  what each kind's transceiver sends
 * @property {string} ice                 the ICE servers and policy it gathers with (iceKey)
 * @property {boolean} credentials       it gathers with TURN credentials (the page's)
 * @property {number} freshUntil          performance.now() until which those are as good as fresh
 * @property {Map<string, RTCDataChannel>} channels  the declared channels, by label
 * @property {RTCIceCandidate[]} candidates  gathered before it had a peer
 * @property {RTCPeerConnectionIceErrorEvent[]} errors  ICE server failures meanwhile
 * @property {Promise<boolean>} ready     its offer is set (false: that failed)
 * @property {boolean | null} offered     the same, once known (null: still being set)
 * @property {boolean} bound              given to a participant: candidates go to them now
 */

// What decides the candidates a connection gathers: the ICE servers' URLs and the policy
// (credentials change with every set; any fresh set reaches the same servers).
/** @param {RTCConfiguration} config */
function iceKey(config) {
  const urls = (config.iceServers || []).map((server) => [server.urls].flat().join(" "));
  return JSON.stringify([urls, config.iceTransportPolicy || "all"]);
}

// What a connection was made or last configured with (ICE servers with their credentials,
// and the policy): setConfiguration waits for the browser's WebRTC thread, the busiest
// thread while a call starts (2-5 ms of the page's time each, measured), so a connection
// that has these very settings already is left as it is.
/** @type {WeakMap<RTCPeerConnection, string>} */
const configuredWith = new WeakMap();

// One transport for all of a connection's media and channels from the first offer on
// ("max-bundle"): the default gathers and sends candidates for each m-line until the
// answer agrees to bundle, three times the candidates for the other side to add, each
// addIceCandidate waiting for its WebRTC thread while the call starts. Every browser we
// support bundles.
const BUNDLE = { bundlePolicy: /** @type {RTCBundlePolicy} */ ("max-bundle") };

/** @param {RTCConfiguration} config */
function newPeerConnection(config) {
  const pc = new RTCPeerConnection({ ...config, ...BUNDLE });
  configuredWith.set(pc, JSON.stringify(config));
  return pc;
}

/** @param {RTCPeerConnection} pc @param {RTCConfiguration} config */
function configurePeerConnection(pc, config) {
  const settings = JSON.stringify(config);
  if (configuredWith.get(pc) === settings) return;
  pc.setConfiguration({ ...config, ...BUNDLE }); // the same policy, or it throws
  configuredWith.set(pc, settings);
}

// The part of an ICE candidate line that names it (foundation, component, transport,
// priority, address, port, type): the SDP's copy lacks the `ufrag` the event's has.
/** @param {string} line */
function candidateName(line) {
  return line.replace(/^a=/, "").split(" ").slice(0, 8).join(" ");
}

// `run` once the page is idle (at the latest `timeout` ms from now, if given); a browser
// without requestIdleCallback (Safari) runs it `fallbackMs` from now.
/** @param {() => void} run @param {number | undefined} timeout @param {number} fallbackMs */
function whenIdle(run, timeout, fallbackMs) {
  if (window.requestIdleCallback) window.requestIdleCallback(run, timeout === undefined ? undefined : { timeout });
  else setTimeout(run, fallbackMs);
}

/** @param {RTCIceCandidate} candidate */
function candidateFacts(candidate) {
  return {
    type: candidate.type,
    protocol: candidate.protocol,
    address: candidate.address,
    port: candidate.port,
    // @ts-ignore: RTCIceCandidate.url is not in every lib.dom
    url: candidate.url || null,
  };
}

/** @param {RTCRtpTransceiver} transceiver */
function live(transceiver) {
  // @ts-ignore: "stopped" is a direction in browsers that predate stop()'s own state
  return transceiver.currentDirection !== "stopped" && transceiver.direction !== "stopped";
}

/** @param {RTCRtpTransceiver} transceiver */
function isVideo(transceiver) {
  return live(transceiver) && transceiver.receiver.track?.kind === "video";
}

// The transceiver the camera goes on: the first video one made or found.
/** @param {RTCPeerConnection} pc */
function cameraTransceiver(pc) {
  return pc.getTransceivers().find(isVideo) || null;
}

// Video transceivers in m-line order (negotiated ones by their place in the SDP).
/** @param {RTCPeerConnection} pc */
function videoTransceivers(pc) {
  const sdp = pc.remoteDescription?.sdp || pc.localDescription?.sdp || "";
  const order = [...sdp.matchAll(/^a=mid:(\S+)/gm)].map((match) => match[1]);
  /** @param {RTCRtpTransceiver} t */
  const rank = (t) => (t.mid !== null && order.includes(t.mid) ? order.indexOf(t.mid) : Infinity);
  return pc.getTransceivers().filter(isVideo).sort((a, b) => rank(a) - rank(b));
}

/** @param {string} sdp */
function fingerprint(sdp) {
  return (sdp.match(/^a=fingerprint:(.+)$/m) || [])[1]?.trim() || null;
}

/**
 * Our first answer to `offer`, with the DTLS roles that Firefox can keep. Firefox answers every
 * re-offer with a=setup:active (DTLS client) whatever its role; an answerer must keep its role,
 * and Chromium refuses an answer that flips its own ("Failed to set SSL role for the
 * transport"), staying in have-local-offer for good: an ICE restart, a screen or a new track
 * between the two would never settle. So the Firefox side is the DTLS client from the start:
 * a Firefox offer (its o= line says SDPARTA) is answered a=setup:passive. (Offering
 * a=setup:active ourselves is not allowed: an offerer must say actpass.)
 * @param {string} offer @param {string} answer
 */
function answerKeepingFirefoxActive(offer, answer) {
  if (!/^o=mozilla\.\.\.THIS_IS_SDPARTA/m.test(offer)) return answer;
  return answer.replace(/^a=setup:active(?=\r?$)/gm, "a=setup:passive");
}

export class MeshTransport extends Emitter {
  /** @param {import("./index.js").TransportOptions} options */
  constructor({ signaling, local, accept, ice }) {
    super();
    this.kind = "mesh";
    this.signaling = signaling;
    this.local = local;
    this.accept = accept;
    /** @type {string | null} */
    this.selfId = null;
    /** @type {RTCConfiguration} the page's until the first welcome, then the seat's */
    this.iceConfig = { iceServers: ice?.iceServers || [], iceTransportPolicy: ice?.iceTransportPolicy || "all" };
    this.pageIceFreshUntil = performance.now() + (ice?.freshForMs || 0);
    /** @type {Map<string, RTCDataChannelInit>} negotiated channels every connection has */
    this.declared = new Map();
    /** @type {Primed | null} */
    this.primed = null;
    this.primeGeneration = 0; // a newer prime() supersedes one still waiting for idle time
    /** @type {Map<string, Link>} */
    this.links = new Map();
    /** @type {WeakMap<MediaStreamTrack, string[]>} remote track -> the stream ids it came with */
    this.streamsOf = new WeakMap();
    /** @type {WeakSet<RTCPeerConnection>} connections being given the screen right now */
    this.givingScreen = new WeakSet();
    this.polling = false; // a stats round is under way
    /** @type {RTCPeerConnection | null} made ahead of need (newConnection) */
    this.spare = null;
    /** @type {number | null} when the next spare is due (performance.now()), if one is */
    this.spareDue = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.spareTimer = undefined;
    this.prepareSpare();

    for (const type of /** @type {const} */ (["offer", "answer"])) {
      signaling.on(type, (message) => {
        if (!this.accept(message.from)) return;
        const link = this.ensureLink(message.from);
        this.enqueue(link, () => this.holdingTracks(link, () => this.handleDescription(link, { type, sdp: message.sdp })));
      });
    }
    signaling.on("candidate", (message) => {
      if (!message.candidate || !this.accept(message.from)) return;
      const link = this.ensureLink(message.from);
      this.enqueue(link, async () => {
        if (!link.pc || !link.pc.remoteDescription) link.pendingCandidates.push(message.candidate);
        else await this.addCandidate(link, message.candidate);
      });
    });
    // Fresh TURN credentials: for ICE restarts and connections made from now on.
    signaling.on("ice-servers", (message) => {
      if (!Array.isArray(message.ice_servers)) return;
      this.iceConfig = { ...this.iceConfig, iceServers: message.ice_servers };
      for (const link of this.links.values()) {
        try {
          if (link.pc) configurePeerConnection(link.pc, this.iceConfig);
        } catch (error) {
          console.warn("mesh: new ICE servers refused", error);
        }
      }
    });

    // Our media. New tracks (devices found, "Try again", a kind we had none of) go into the
    // existing transceivers or new ones: a renegotiation. A switched device replaces the
    // track in its senders: no renegotiation.
    local.on("tracks", () => {
      this.refreshSpare();
      return Promise.all(this.withConnection().map((link) => this.attachLocalTracks(link, false)));
    });
    local.on("replaced", ({ old, track }) => this.replaceTrack(old, track));
    local.on("change", () => this.refreshSpare()); // after a switch or a lost device
    local.on("screen", ({ track, old }) => (track ? this.shareScreen() : this.unshareScreen(old)));

    setInterval(() => this.pollStats(), STATS_EVERY_MS);
  }

  // --- The interface ----------------------------------------------------------------------

  /** @param {{selfId: string, iceServers: RTCIceServer[], iceTransportPolicy: RTCIceTransportPolicy}} settings */
  configure({ selfId, iceServers, iceTransportPolicy }) {
    this.selfId = selfId;
    this.iceConfig = { iceServers, iceTransportPolicy };
    for (const link of this.links.values()) link.polite = selfId < link.id;
  }

  /** @param {string} id */
  connect(id) {
    const link = this.ensureLink(id);
    if (link.pc) return false;
    const primed = this.takePrimed();
    const pc = this.createConnection(link, primed);
    if (primed) {
      this.sendPrimedOffer(link, pc, primed);
      return true;
    }
    this.attachLocalTracks(link, false);
    // The first offer goes out now, not from negotiationneeded: that event is a task of its
    // own, which waits behind whatever the page does meanwhile (a newcomer's page lays out
    // the call). The event then finds the offer under way and fires no more.
    this.makeOffer(link, pc);
    return true;
  }

  // A negotiated channel that every connection has from its start (files.js's control
  // channel): made with each connection, in the first offer even of one made ahead.
  /** @param {string} label @param {RTCDataChannelInit} init */
  declareChannel(label, init) {
    this.declared.set(label, init);
  }

  // The newcomer's first connection, made ahead on the pre-join screen with its preview's
  // tracks. Setting the first offer takes a newcomer's page 15-25 ms of the WebRTC
  // thread's and its own time right when the call starts (docs/performance.md); made
  // here, in idle time, the welcome only has to say whom it goes to. Only before the
  // first welcome: after it, newcomers offer to us.
  /** @param {MediaStreamTrack[]} tracks */
  prime(tracks) {
    const generation = ++this.primeGeneration;
    whenIdle(
      () => {
        if (generation !== this.primeGeneration || this.selfId !== null) return;
        this.unprime(false);
        this.primed = this.makePrimed(tracks);
      },
      PRIME_IDLE_TIMEOUT_MS,
      50,
    );
  }

  /** @param {MediaStreamTrack[]} tracks @returns {Primed} */
  makePrimed(tracks) {
    const pc = this.spare || newPeerConnection(this.iceConfig);
    this.spare = null;
    /** @type {Primed} */
    const primed = {
      pc,
      tracks: new Map(),
      ice: iceKey(this.iceConfig),
      credentials: (this.iceConfig.iceServers || []).some((server) => server.credential),
      freshUntil: this.pageIceFreshUntil,
      channels: new Map(),
      candidates: [],
      errors: [],
      ready: Promise.resolve(false),
      offered: null,
      bound: false,
    };
    pc.addEventListener("icecandidate", ({ candidate }) => {
      if (candidate && !primed.bound) primed.candidates.push(candidate);
    });
    pc.addEventListener("icecandidateerror", (event) => {
      if (!primed.bound) primed.errors.push(/** @type {RTCPeerConnectionIceErrorEvent} */ (event));
    });
    // In the order of a connection made at the welcome: channels, then tracks by kind.
    for (const [label, init] of this.declared) primed.channels.set(label, pc.createDataChannel(label, init));
    for (const kind of this.local.kinds) {
      const track = tracks.find((candidate) => candidate.kind === kind && candidate.readyState === "live") || null;
      primed.tracks.set(kind, track);
      pc.addTransceiver(track || kind, { direction: track ? "sendrecv" : "recvonly", streams: [this.local.stream] });
    }
    primed.ready = pc.setLocalDescription().then(
      () => (primed.offered = true),
      (error) => {
        console.warn("mesh: the connection made ahead has no offer", error);
        return (primed.offered = false);
      },
    );
    return primed;
  }

  // The connection made ahead, if it still fits what the call sends and where it gathers.
  takePrimed() {
    const primed = this.primed;
    this.primed = null;
    this.primeGeneration += 1;
    if (!primed) return null;
    const fits =
      primed.ice === iceKey(this.iceConfig) &&
      (!primed.credentials || performance.now() < primed.freshUntil) &&
      this.local.kinds.every((kind) => Boolean(primed.tracks.get(kind)) === Boolean(this.local.track(kind)));
    if (!fits) {
      primed.pc.close();
      return null;
    }
    configurePeerConnection(primed.pc, this.iceConfig); // the seat's credentials, for later gathering
    for (const transceiver of primed.pc.getTransceivers()) {
      const track = this.local.track(/** @type {any} */ (transceiver.receiver.track.kind));
      // A device switched since (the same kind): the same sender carries it, no renegotiation.
      if (track && transceiver.sender.track !== track) {
        transceiver.sender.replaceTrack(track).catch((error) => console.warn("mesh: a track not replaced", error));
      }
    }
    return primed;
  }

  // Nobody to offer to (an empty room), or gone before the welcome: nothing made ahead stays.
  // After a welcome (`refresh`), the spare for answering those who come after us is made
  // again with our tracks.
  unprime(refresh = true) {
    this.primeGeneration += 1;
    this.primed?.pc.close();
    this.primed = null;
    if (refresh) this.refreshSpare();
  }

  // The offer made ahead goes to them, with the candidates it gathered that are not in it:
  // at once if it is set (before anything else we send), else as soon as it is.
  /** @param {Link} link @param {RTCPeerConnection} pc @param {Primed} primed */
  async sendPrimedOffer(link, pc, primed) {
    if (primed.offered === null) {
      link.makingOffer = true; // an offer of theirs meanwhile is a collision (perfect negotiation)
      await primed.ready;
      link.makingOffer = false;
    }
    primed.bound = true;
    if (link.pc !== pc) return;
    if (!primed.offered || pc.signalingState !== "have-local-offer" || !pc.localDescription) {
      this.rebuild(link.id); // a fresh connection, offered the usual way
      return;
    }
    const sdp = pc.localDescription.sdp;
    this.signaling.send({ type: "offer", to: link.id, sdp });
    link.offerSerial += 1;
    this.retryOffer(link, pc, link.offerSerial);
    const inOffer = new Set((sdp.match(/^a=candidate:.*$/gm) || []).map(candidateName));
    for (const candidate of primed.candidates.splice(0)) {
      if (!inOffer.has(candidateName(candidate.candidate))) this.signaling.send({ type: "candidate", to: link.id, candidate: candidate.toJSON() });
      this.emit("candidate", { id: link.id, candidate: candidateFacts(candidate) });
    }
    for (const error of primed.errors.splice(0)) this.emitCandidateError(link.id, error);
  }

  // A connection kept across a resumed seat: an offer that may have been lost goes out again,
  // and a connection that suffered meanwhile restarts ICE.
  /** @param {string} id */
  resume(id) {
    const link = this.links.get(id);
    const pc = link?.pc;
    if (!link || !pc) return;
    if (pc.signalingState === "have-local-offer" && pc.localDescription) {
      this.signaling.send({ type: "offer", to: id, sdp: pc.localDescription.sdp });
    }
    const states = [pc.connectionState, pc.iceConnectionState];
    if (states.includes("disconnected") || states.includes("failed")) this.restartLink(link, pc);
  }

  /** @param {string} id */
  remove(id) {
    const link = this.links.get(id);
    if (!link) return;
    this.links.delete(id);
    this.closeConnection(link);
    this.capBitrates();
  }

  removeAll() {
    for (const id of [...this.links.keys()]) this.remove(id);
  }

  /** @param {string} id */
  has(id) {
    return Boolean(this.links.get(id)?.pc);
  }

  ids() {
    return this.withConnection().map((link) => link.id);
  }

  /** @param {string} id */
  info(id) {
    const link = this.links.get(id);
    if (!link?.pc) return null;
    return {
      state: /** @type {import("./index.js").ConnectionState} */ (link.pc.connectionState),
      iceState: link.pc.iceConnectionState,
      generation: link.generation,
      iceRestarts: link.iceRestarts,
      rebuilds: link.rebuilds,
    };
  }

  /** @param {string} id */
  async getStats(id) {
    const pc = this.links.get(id)?.pc;
    if (!pc || pc.connectionState === "closed") return null;
    return pc.getStats();
  }

  // Restart ICE on one connection (or all) by hand: new candidates, gathered with the
  // current ICE servers. negotiationneeded follows and perfect negotiation renegotiates.
  /** @param {string | null} [id] */
  restartIce(id = null) {
    let count = 0;
    for (const link of this.withConnection()) {
      if ((id === null || link.id === id) && link.pc && link.pc.connectionState !== "closed") {
        link.pc.restartIce();
        count += 1;
      }
    }
    return count;
  }

  // The last resort of a repair: a new RTCPeerConnection, offered from our side. The other
  // side sees a new DTLS fingerprint in the offer and takes it on a new connection too.
  /** @param {string} id */
  rebuild(id) {
    const link = this.links.get(id);
    if (!link) return false;
    console.info(`mesh: rebuilding the connection with ${id}`);
    const pc = this.replaceConnection(link);
    this.attachLocalTracks(link, false);
    // Our offer goes out now: a spare that already held our tracks fired its
    // negotiationneeded before anyone listened, and the event does not fire again until a
    // negotiation has been done.
    this.makeOffer(link, pc);
    return true;
  }

  // Every participant sends one encoding of each track to each other one: nothing to choose.
  /** @param {string} _id @param {string} _layer */
  preferLayer(_id, _layer) {
    return false;
  }

  /** @param {string} id */
  connections(id) {
    const pc = this.links.get(id)?.pc;
    return pc ? [pc] : [];
  }

  // --- Connections ------------------------------------------------------------------------

  withConnection() {
    return [...this.links.values()].filter((link) => link.pc);
  }

  /** @param {string} id */
  ensureLink(id) {
    let link = this.links.get(id);
    if (!link) {
      link = makeLink(id, this.selfId !== null && this.selfId < id);
      this.links.set(id, link);
    }
    return link;
  }

  // Making an RTCPeerConnection blocks the page for a few milliseconds while the browser
  // sets it up on its WebRTC thread. One is made ahead, when the page is idle, and the next
  // connection takes it (with the ICE servers of now): a newcomer's first offer and the
  // answer to a newcomer do not wait for that (docs/performance.md). It holds our tracks
  // already (addTrack: an offer's m-lines of their kinds take them as they are applied), so
  // that the answer does not wait for them to be put in either; if they changed since, a
  // new one is made.
  newConnection() {
    const spare = this.spare;
    this.spare = null;
    // The next one later: made now, it would hold the page up while this one negotiates.
    this.prepareSpare(SPARE_AFTER_MS);
    if (spare && spare.signalingState !== "closed" && this.spareFits(spare)) {
      try {
        configurePeerConnection(spare, this.iceConfig);
        return spare;
      } catch (error) {
        console.warn("mesh: the connection made ahead refused the configuration", error);
      }
    }
    spare?.close();
    return newPeerConnection(this.iceConfig);
  }

  // `after` ms from now, once the page is idle. (A page is "idle" between two frames even
  // while a call is starting, and the spare's addTrack waits for the WebRTC thread, busiest
  // then: while a connection is being set up it waits SPARE_AFTER_MS.)
  prepareSpare(after = 0) {
    const due = performance.now() + after;
    if (this.spare || (this.spareDue !== null && this.spareDue <= due)) return;
    clearTimeout(this.spareTimer); // one due later: this one comes first
    this.spareDue = due;
    this.spareTimer = setTimeout(() => {
      whenIdle(
        () => {
          if (this.spareDue !== due) return; // superseded
          this.spareDue = null;
          if (this.spare) return;
          const pc = newPeerConnection(this.iceConfig);
          for (const kind of this.local.kinds) {
            const track = this.local.track(kind);
            if (track) pc.addTrack(track, this.local.stream);
          }
          this.spare = pc;
        },
        undefined,
        200,
      );
    }, after);
  }

  // The spare sends what we send now, or nothing yet (our tracks then go in as they do on
  // any connection); `exactly`: not nothing.
  /** @param {RTCPeerConnection} spare */
  spareFits(spare, exactly = false) {
    const senders = spare.getSenders();
    if (senders.length === 0 && !exactly) return true;
    return this.local.kinds.every((kind) => {
      const track = this.local.track(kind);
      const sender = senders.find((candidate) => candidate.track?.kind === kind);
      return (sender?.track || null) === (track || null);
    });
  }

  // Our tracks changed (devices came, one was switched or lost), or our first connections
  // are made (unprime): a spare that does not hold our tracks is made again. Not before the
  // welcome: the preview's tracks are not the call's yet, and the connection made ahead
  // needs the page's time more.
  refreshSpare() {
    if (this.selfId === null) return;
    if (this.spare && this.spareFits(this.spare, true)) return;
    this.spare?.close();
    this.spare = null;
    this.prepareSpare(this.settling() ? SPARE_AFTER_MS : 0);
  }

  // A connection is being set up (not yet connected).
  settling() {
    return this.withConnection().some((link) => link.pc?.connectionState !== "connected");
  }

  /** @param {Link} link @param {Primed | null} [primed]  made ahead: its pc, channels and offer */
  createConnection(link, primed = null) {
    const pc = primed ? primed.pc : this.newConnection();
    const channels = primed ? primed.channels : new Map();
    if (!primed) for (const [label, init] of this.declared) channels.set(label, pc.createDataChannel(label, init));
    link.pc = pc;
    link.generation += 1;
    const { id, generation } = link;
    pc.addEventListener("track", ({ track, streams }) => this.remoteTrack(link, pc, track, streams));
    // The declared channels exist already (in the first offer, even one made ahead);
    // openChannel hands them out, and makes any other channel asked for.
    this.emit("datalink", {
      id,
      link: {
        generation,
        /** @param {string} label @param {RTCDataChannelInit} [init] */
        openChannel: (label, init) => channels.get(label) || pc.createDataChannel(label, init),
        /** @param {(channel: RTCDataChannel) => void} handler */
        onChannel: (handler) => pc.addEventListener("datachannel", ({ channel }) => handler(channel)),
      },
    });
    pc.addEventListener("negotiationneeded", () => this.makeOffer(link, pc));
    pc.addEventListener("icecandidate", ({ candidate }) => {
      // End of candidates is not sent: Chrome and Firefox do not need it. Those of a
      // connection made ahead wait for its offer (sendPrimedOffer).
      if (!candidate || (primed && !primed.bound)) return;
      if (link.pc === pc) this.signaling.send({ type: "candidate", to: id, candidate: candidate.toJSON() });
      this.emit("candidate", { id, candidate: candidateFacts(candidate) });
    });
    pc.addEventListener("icecandidateerror", (event) => {
      if (!primed || primed.bound) this.emitCandidateError(id, /** @type {RTCPeerConnectionIceErrorEvent} */ (event));
    });
    pc.addEventListener("connectionstatechange", () => {
      if (link.pc !== pc) return;
      this.emit("connection", { id, state: pc.connectionState });
      if (pc.connectionState === "connected") {
        // The cap matters once the bandwidth estimate has ramped up, seconds from now; set at
        // this moment, its getParameters and setParameters would hold the page and the
        // WebRTC thread up while the first frames are encoded and decoded.
        setTimeout(() => this.capBitrates(), CAP_AFTER_MS);
        this.repaired(link);
      } else if (pc.connectionState === "failed") {
        this.restartLink(link, pc);
      } else if (pc.connectionState === "disconnected" && !link.graceTimer) {
        link.graceTimer = setTimeout(() => {
          link.graceTimer = null;
          if (link.pc === pc && pc.connectionState === "disconnected") this.restartLink(link, pc);
        }, DISCONNECTED_GRACE_MS);
      }
    });
    // A connection that settles gets our screen, if we share one; one that settled with new
    // ICE credentials (a restart, from either side, for a repair or by hand) is checked.
    pc.addEventListener("signalingstatechange", () => {
      if (link.pc !== pc) return;
      if (this.local.screenTrack) this.sendScreen(link);
      if (pc.signalingState !== "stable") return;
      const ufrag = pc.localDescription?.sdp.match(/a=ice-ufrag:(\S+)/)?.[1] || null;
      if (link.ufrag && ufrag && ufrag !== link.ufrag) this.verifyMedia(link, pc);
      link.ufrag = ufrag;
    });
    this.emit("connection", { id, state: pc.connectionState });
    return pc;
  }

  /** @param {string} id @param {RTCPeerConnectionIceErrorEvent} error */
  emitCandidateError(id, error) {
    this.emit("candidate-error", { id, url: error.url || "", code: error.errorCode, text: error.errorText || "" });
  }

  // Repairing a connection. "disconnected" is often a blip that ICE's own consent checks get
  // over, so it has DISCONNECTED_GRACE_MS first; past that, or on "failed", ICE restarts: new
  // candidates on the same connection (negotiationneeded fires and perfect negotiation takes
  // it from there), so tracks, screens and file channels stay as they are. Only a connection
  // still not connected REBUILD_AFTER_MS after its restart is replaced by a new one.
  /** @param {Link} link @param {RTCPeerConnection} pc */
  restartLink(link, pc) {
    if (link.pc !== pc || link.rebuildTimer) return; // a restart is under way: its timer decides
    link.iceRestarts += 1;
    pc.restartIce();
    link.rebuildTimer = setTimeout(() => {
      link.rebuildTimer = null;
      if (link.pc === pc && pc.connectionState !== "connected") this.rebuildForMedia(link, pc);
    }, REBUILD_AFTER_MS);
  }

  // Connected again after an ICE restart is not enough. Between Chromium and Firefox (ESR
  // 153) two failures were seen, each lasting however long one waits: Firefox, restarting
  // after its ICE "failed", reports "connected" on the new candidate pair but keeps sending
  // its RTP and RTCP where the old pair was (its selected pair carries nothing but STUN);
  // and after a restart of a working connection, Firefox hears Chromium's audio but decodes
  // no more of its video. A new connection is the way back; the other side follows our new
  // offer. So once a restart has settled and connected, what arrives from them is counted
  // twice, MEDIA_CHECK_MS apart: audio that came before and comes no more, or video that
  // was decoded before and is no more (a camera turned off still sends black frames), means
  // a rebuild. A connection with someone who sends nothing (no devices) is left alone.
  // `fresh`: a connection we just rebuilt for want of media; its counters start at 0, and
  // it must bring both kinds that stopped (`expect`) within the same time, or it is rebuilt
  // again, MAX_MEDIA_REBUILDS times at most.
  /** @param {Link} link @param {RTCPeerConnection} pc @param {{fresh?: ("audio" | "video")[], attempt?: number}} [options] */
  async verifyMedia(link, pc, { fresh = [], attempt = 0 } = {}) {
    const counts = async () => {
      const seen = { audio: 0, video: 0 };
      for (const report of (await pc.getStats()).values()) {
        if (report.type !== "inbound-rtp") continue;
        if (report.kind === "audio") seen.audio += report.packetsReceived || 0;
        if (report.kind === "video") seen.video += report.framesDecoded || 0;
      }
      return seen;
    };
    const wait = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      // Until connected on the new credentials (a repair that does not connect is the
      // rebuild timer's), and a moment more for the media to move to the new pair.
      const deadline = performance.now() + REBUILD_AFTER_MS;
      while (pc.connectionState !== "connected") {
        if (link.pc !== pc || performance.now() > deadline) return;
        await wait(250);
      }
      await wait(MEDIA_SETTLE_MS);
      if (link.pc !== pc) return;
      const before = await counts();
      await wait(MEDIA_CHECK_MS);
      if (link.pc !== pc || pc.connectionState !== "connected") return;
      const after = await counts();
      const stopped = /** @type {("audio" | "video")[]} */ (["audio", "video"]).filter(
        (kind) => (before[kind] > 0 || fresh.includes(kind)) && after[kind] === before[kind],
      );
      if (stopped.length && attempt < MAX_MEDIA_REBUILDS) {
        console.info(`mesh: no ${stopped.join(" or ")} arrives from ${link.id}; rebuilding the connection`);
        this.rebuild(link.id);
        const rebuilt = link.pc;
        if (rebuilt) this.verifyMedia(link, rebuilt, { fresh: stopped, attempt: attempt + 1 });
      }
    } catch (error) {
      console.warn(`mesh: checking the media from ${link.id}`, error);
    }
  }

  // A repair's last step (the restart did not connect in time): a new connection, which
  // must then bring what the old one had brought (verifyMedia, `fresh`).
  /** @param {Link} link @param {RTCPeerConnection} pc */
  async rebuildForMedia(link, pc) {
    const had = await this.kindsReceived(link, pc);
    if (link.pc !== pc) return; // replaced meanwhile (their rebuild reached us first)
    this.rebuild(link.id);
    const rebuilt = link.pc;
    if (rebuilt && had.length) this.verifyMedia(link, rebuilt, { fresh: had, attempt: 1 });
  }

  // The kinds of media that ever came from them on `pc` (its counters are cumulative).
  /** @param {Link} link @param {RTCPeerConnection} pc @returns {Promise<("audio" | "video")[]>} */
  async kindsReceived(link, pc) {
    /** @type {("audio" | "video")[]} */
    const had = [];
    try {
      for (const report of (await pc.getStats()).values()) {
        if (report.type !== "inbound-rtp") continue;
        const kind = /** @type {"audio" | "video"} */ (report.kind);
        if ((kind === "audio" ? report.packetsReceived : report.framesDecoded) > 0 && !had.includes(kind)) had.push(kind);
      }
    } catch (error) {
      console.warn(`mesh: reading what came from ${link.id}`, error);
    }
    return had;
  }

  /** @param {Link} link */
  repaired(link) {
    if (link.graceTimer) clearTimeout(link.graceTimer);
    if (link.rebuildTimer) clearTimeout(link.rebuildTimer);
    link.graceTimer = link.rebuildTimer = null;
  }

  /** @param {Link} link */
  replaceConnection(link) {
    link.rebuilds += 1;
    this.closeConnection(link);
    link.pendingCandidates = [];
    link.makingOffer = false;
    link.ignoreOffer = false;
    link.ufrag = null; // a new connection's first credentials are no restart
    return this.createConnection(link);
  }

  // The connection, its timers (offer re-sends, repairs) and its remote tracks end.
  /** @param {Link} link */
  closeConnection(link) {
    if (link.offerRetry) clearTimeout(link.offerRetry);
    link.offerRetry = null;
    this.repaired(link);
    link.pc?.close();
    link.pc = null;
    for (const { track } of link.held.splice(0)) link.tracks.delete(track); // never announced
    const gone = [...link.tracks];
    link.tracks.clear();
    for (const [track, source] of gone) this.emit("track-removed", { id: link.id, track, source });
  }

  // --- Negotiation ------------------------------------------------------------------------

  // Their remote tracks are announced ("track") once their description has been handled
  // (our answer sent, or their answer applied) and the page is idle, not from inside it:
  // the page's handlers (a video element, a level meter, a speaker) take it 5-10 ms, and
  // the answer, our first candidates and the ICE checks would wait for them while the call
  // starts. A track announced a few tens of milliseconds later is not late: its first frame
  // is ~100 ms away (docs/performance.md).
  /** @param {Link} link @param {() => Promise<void>} task */
  async holdingTracks(link, task) {
    link.holding = true;
    try {
      await task();
    } finally {
      link.holding = false;
      if (link.held.length) whenIdle(() => this.announceHeld(link), ANNOUNCE_WITHIN_MS, 0);
    }
  }

  /** @param {Link} link */
  announceHeld(link) {
    if (link.holding) return; // another description came meanwhile: announced after it
    for (const { pc, track, source } of link.held.splice(0)) {
      if (link.pc === pc && link.tracks.has(track)) this.emit("track", { id: link.id, track, source });
    }
  }

  /** @param {Link} link @param {() => Promise<void>} task */
  enqueue(link, task) {
    link.queue = link.queue.then(task).catch((error) => console.warn(`mesh: signaling with ${link.id}`, error));
  }

  /** @param {Link} link @param {RTCPeerConnection} pc */
  async makeOffer(link, pc) {
    if (link.pc !== pc || link.makingOffer) return;
    try {
      link.makingOffer = true;
      await pc.setLocalDescription();
      // A polite peer's offer may have been rolled back meanwhile by the other side's offer.
      if (pc.signalingState === "have-local-offer" && pc.localDescription?.type === "offer") {
        this.signaling.send({ type: "offer", to: link.id, sdp: pc.localDescription.sdp });
        link.offerSerial += 1;
        this.retryOffer(link, pc, link.offerSerial);
      }
    } catch (error) {
      console.warn(`mesh: offer to ${link.id} failed`, error);
    } finally {
      link.makingOffer = false;
    }
  }

  /** @param {Link} link @param {RTCPeerConnection} pc @param {number} serial */
  retryOffer(link, pc, serial, attempt = 0) {
    if (link.offerRetry) clearTimeout(link.offerRetry);
    link.offerRetry = setTimeout(() => {
      if (link.pc !== pc || link.offerSerial !== serial || pc.signalingState !== "have-local-offer") return;
      this.signaling.send({ type: "offer", to: link.id, sdp: pc.localDescription?.sdp });
      if (attempt < 5) this.retryOffer(link, pc, serial, attempt + 1);
    }, OFFER_RETRY_MS * 2 ** attempt);
  }

  /** @param {Link} link @param {RTCSessionDescriptionInit & {sdp: string}} description */
  async handleDescription(link, description) {
    let pc = link.pc;
    if (!pc) {
      if (description.type !== "offer") return; // an answer for a connection we dropped
      pc = this.createConnection(link);
    }
    // A second copy of an answer (our offer was sent again): that negotiation is settled.
    if (description.type === "answer" && pc.signalingState !== "have-local-offer") return;
    // An offer with a new DTLS identity comes from a peer that rebuilt its connection (the
    // last step of a repair): take it on a new connection of ours too.
    if (
      description.type === "offer" &&
      pc.remoteDescription &&
      fingerprint(description.sdp) !== fingerprint(pc.remoteDescription.sdp)
    ) {
      console.info(`mesh: ${link.id} rebuilt the connection; so do we`);
      const had = await this.kindsReceived(link, pc);
      if (link.pc !== pc) return; // replaced while we read its figures
      pc = this.replaceConnection(link);
      // Their new connection must bring us what the old one did, or we rebuild in turn.
      if (had.length) this.verifyMedia(link, pc, { fresh: had, attempt: 1 });
    }
    // Perfect negotiation (docs/protocol.md, "Negotiation").
    const readyForOffer = !link.makingOffer && (pc.signalingState === "stable" || link.settingRemoteAnswer);
    const collision = description.type === "offer" && !readyForOffer;
    link.ignoreOffer = !link.polite && collision;
    if (link.ignoreOffer) return;
    link.settingRemoteAnswer = description.type === "answer";
    try {
      // For the polite peer in a collision this rolls its own offer back implicitly.
      await pc.setRemoteDescription(description);
    } finally {
      link.settingRemoteAnswer = false;
    }
    // The browser adds them in order, before what we ask of it next: no need to wait for
    // each in turn (every wait is a round trip to its WebRTC thread) before answering.
    const added = link.pendingCandidates.splice(0).map((candidate) => this.addCandidate(link, candidate));
    if (description.type === "offer") {
      await this.attachLocalTracks(link, true);
      if (pc.currentLocalDescription) {
        await pc.setLocalDescription();
      } else {
        const answer = await pc.createAnswer();
        const sdp = answerKeepingFirefoxActive(description.sdp, answer.sdp || "");
        await pc.setLocalDescription({ type: "answer", sdp });
      }
      this.signaling.send({ type: "answer", to: link.id, sdp: pc.localDescription?.sdp });
      // A track of ours that their offer had no m-line for (the spare holds our tracks from
      // before): an offer of ours adds one. negotiationneeded would not say so, since the
      // spare raised it before anyone listened and nothing has lowered it since.
      if (pc.getTransceivers().some((t) => t.mid === null && t.sender.track && live(t))) this.makeOffer(link, pc);
    }
    await Promise.all(added);
  }

  /** @param {Link} link @param {RTCIceCandidateInit} candidate */
  async addCandidate(link, candidate) {
    try {
      await link.pc?.addIceCandidate(candidate);
    } catch (error) {
      if (!link.ignoreOffer) console.warn(`mesh: candidate from ${link.id} refused`, error);
    }
  }

  // --- Our tracks -------------------------------------------------------------------------

  // Put our tracks on the connection, one transceiver per kind. With no track of a kind the
  // transceiver is recvonly, so people without a camera or microphone still get media.
  // `answering`: inside an offer from the other side (reuse its transceivers, add nothing
  // that the offer did not ask for unless we have something to send).
  /** @param {Link} link @param {boolean} answering */
  async attachLocalTracks(link, answering) {
    const pc = link.pc;
    if (!pc) return;
    const replaced = []; // side by side: one round trip to the browser's WebRTC thread, not one a kind
    for (const kind of this.local.kinds) {
      const track = this.local.track(kind);
      const transceiver = pc
        .getTransceivers()
        .find((t) => !t.stopped && t.receiver.track && t.receiver.track.kind === kind);
      if (transceiver) {
        if (track && transceiver.sender.track !== track) {
          replaced.push(
            transceiver.sender.replaceTrack(track).then(() => {
              if (transceiver.direction === "recvonly" || transceiver.direction === "inactive") {
                transceiver.direction = "sendrecv";
              }
            }),
          );
        }
      } else if (track || !answering) {
        pc.addTransceiver(track || kind, {
          direction: track ? "sendrecv" : "recvonly",
          streams: [this.local.stream],
        });
      }
    }
    await Promise.all(replaced);
  }

  // A switched device: the same senders carry the new track (no renegotiation).
  /** @param {MediaStreamTrack} old @param {MediaStreamTrack} track */
  async replaceTrack(old, track) {
    for (const link of this.withConnection()) {
      const pc = /** @type {RTCPeerConnection} */ (link.pc);
      if (pc.connectionState === "closed") continue;
      const sender = pc.getSenders().find((candidate) => candidate.track === old);
      if (sender) await sender.replaceTrack(track);
    }
  }

  // Video bitrate per sender: in a mesh everyone uploads one copy per person.
  capBitrates() {
    const people = this.links.size + 1;
    const maxBitrate = people <= 2 ? 1_500_000 : people <= 4 ? 800_000 : people <= 6 ? 500_000 : 300_000;
    for (const link of this.withConnection()) {
      for (const sender of link.pc?.getSenders() || []) {
        if (!sender.track || sender.track.kind !== "video") continue;
        const parameters = sender.getParameters();
        if (!parameters.encodings || parameters.encodings.length === 0) continue;
        if (parameters.encodings[0].maxBitrate === maxBitrate) continue;
        parameters.encodings[0].maxBitrate = maxBitrate;
        sender.setParameters(parameters).catch(() => {});
      }
    }
  }

  // --- Screen share -----------------------------------------------------------------------

  shareScreen() {
    for (const link of this.withConnection()) this.sendScreen(link);
  }

  // Give our screen to one connection, once its first negotiation is done (so that the
  // camera's m-line comes first). Called when sharing starts and whenever a connection
  // settles (a newcomer's connection gets the screen after its first offer and answer).
  /** @param {Link} link */
  async sendScreen(link) {
    const pc = link.pc;
    const screen = this.local.screenTrack;
    const stream = this.local.screenStream;
    if (!screen || !stream || !pc || this.givingScreen.has(pc) || pc.connectionState === "closed") return;
    if (pc.signalingState !== "stable" || !pc.currentRemoteDescription) return;
    const camera = cameraTransceiver(pc);
    const videos = pc.getTransceivers().filter(isVideo);
    if (!camera || videos.some((t) => t.sender.track === screen)) return;
    this.givingScreen.add(pc);
    try {
      const free = videos.find((t) => t !== camera && !t.sender.track);
      if (free) {
        await free.sender.replaceTrack(screen);
        free.sender.setStreams?.(stream);
        if (free.direction !== "sendrecv") free.direction = "sendrecv";
      } else {
        pc.addTransceiver(screen, { direction: "sendrecv", streams: [stream] });
      }
    } catch (error) {
      console.warn(`mesh: sharing the screen with ${link.id} failed`, error);
    } finally {
      this.givingScreen.delete(pc);
    }
  }

  // Every connection at once, not one after the other.
  /** @param {MediaStreamTrack} old */
  async unshareScreen(old) {
    const stops = [];
    for (const link of this.withConnection()) {
      const pc = link.pc;
      if (!pc || pc.connectionState === "closed") continue;
      for (const transceiver of pc.getTransceivers()) {
        if (transceiver.sender.track !== old) continue;
        stops.push(
          transceiver.sender.replaceTrack(null).then(
            () => {
              if (live(transceiver)) transceiver.direction = "recvonly";
            },
            (error) => console.warn("mesh: stopping the screen on a connection failed", error),
          ),
        );
      }
    }
    await Promise.all(stops);
  }

  // --- Their tracks -----------------------------------------------------------------------

  /**
   * @param {Link} link @param {RTCPeerConnection} pc
   * @param {MediaStreamTrack} track @param {readonly MediaStream[]} streams
   */
  remoteTrack(link, pc, track, streams) {
    if (link.pc !== pc) return;
    const ids = streams.map((stream) => stream.id);
    this.streamsOf.set(track, ids);
    if (track.kind === "audio" && ids.length) link.mainStreamId = ids[0];
    /** @type {import("./index.js").TrackSource} */
    const source = track.kind === "audio" ? "mic" : this.isScreen(link, pc, track) ? "screen" : "camera";
    link.tracks.set(track, source);
    if (link.holding) link.held.push({ pc, track, source });
    else this.emit("track", { id: link.id, track, source });
  }

  /** @param {Link} link @param {RTCPeerConnection} pc @param {MediaStreamTrack} track */
  isScreen(link, pc, track) {
    const ids = this.streamsOf.get(track) || [];
    if (link.mainStreamId && ids.length) return !ids.includes(link.mainStreamId);
    const videos = videoTransceivers(pc);
    const transceiver = videos.find((t) => t.receiver.track === track);
    return Boolean(transceiver) && transceiver !== videos[0];
  }

  // --- Stats ------------------------------------------------------------------------------

  async pollStats() {
    if (this.polling || !this.listens("stats")) return;
    this.polling = true;
    try {
      await Promise.all(
        this.withConnection().map(async (link) => {
          const pc = link.pc;
          if (!pc || pc.connectionState !== "connected") return;
          try {
            const report = await pc.getStats();
            if (link.pc === pc) this.emit("stats", { id: link.id, generation: link.generation, report });
          } catch (error) {
            console.warn("mesh: getStats failed", error);
          }
        }),
      );
    } finally {
      this.polling = false;
    }
  }
}
