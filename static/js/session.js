// @ts-check
// The call session: who we are in the room, who else is in it, what we send, and the
// life of our seat (joining, joined, reconnecting, closed). It turns the room's signaling
// (docs/protocol.md) into the page's state and drives the transport and our local media. No
// DOM here: the UI modules listen to its events and ask it for changes through its methods;
// nobody else writes its state.
//
//   const session = new CallSession({config, signaling, local, isVoice, joinChoices});
//   session.transport            // the media transport (transport/index.js)
//   session.self                 // {id, name, isModerator, isGuest}
//   session.participants         // Map peer_id -> Participant (read-only to others)
//   session.media                // our media state {audio, video, screen} (a copy)
//   session.phase                // "joining" | "waiting" | "joined" | "reconnecting" | "closed"
//   session.setMedia(kind, on)   // the one way to turn audio, video or screen on or off
//   session.setHand(raised)      // raise or lower our hand (the server's `hand` confirms it)
//   session.react(name)          // send a reaction (one of session.reactions)
//   session.handQueue()          // raised hands, first raised first: [{id, name, raisedAt}]
//   session.setRecording(on)     // a moderator's page says it records (or stopped)
//   session.recordings           // Map peer_id -> {name, since}: who records now
//   session.retryMedia()         // ask for devices again ("Try again")
//   session.leave()              // leave the call (resolves once the server closed)
//
// Events: "phase" {phase, close}, "participant-added" / "participant-updated" /
// "participant-removed" (Participant), "self" (self changed: name, moderator), "media"
// {media}, "devices" {phase: "asking"} | {phase: "ready", result} | {phase: "lost", kind},
// "moderator-request" {kind}, "room" {locked, capacity}, "hands" {queue, changed: {id,
// raisedAt, byModerator}}, "reaction" {id, name, reaction} (id: ours or a participant's),
// "recordings" {changed: {id, on} | null} (who records changed), "leaving" (leave() was
// called; handlers may return promises, awaited before the seat is given up).
import { Emitter } from "./emitter.js";
import { createTransport } from "./transport/index.js";

/**
 * Everything known about another participant: declared here and made only by
 * makeParticipant. UI modules keep their own per-participant view state (tiles.js).
 * @typedef {object} Participant
 * @property {string} id             their peer_id
 * @property {string} name
 * @property {import("./media/local.js").MediaState} media  what they said last (`media`)
 * @property {boolean} isModerator
 * @property {boolean} isGuest  came in by an invite link, without an account
 * @property {string | null} hand  when they raised their hand (ISO 8601), or null
 * @property {"joining" | import("./transport/index.js").ConnectionState} connection
 *   "joining" until the transport has a connection with them
 */

/**
 * @param {string} id
 * @param {{name?: string, media?: Partial<import("./media/local.js").MediaState>, is_moderator?: boolean, is_guest?: boolean, hand?: string | null}} info
 * @param {boolean} isVoice
 * @param {string} someone  the name of someone whose name we do not know yet
 * @returns {Participant}
 */
export function makeParticipant(id, info, isVoice, someone) {
  return {
    id,
    name: info.name || someone,
    media: { audio: true, video: !isVoice, screen: false, ...(info.media || {}) },
    isModerator: Boolean(info.is_moderator),
    isGuest: Boolean(info.is_guest),
    hand: typeof info.hand === "string" ? info.hand : null,
    connection: "joining",
  };
}

/**
 * @typedef {object} CloseInfo  what signaling.js said about a close
 * @property {number} code
 * @property {string} reason      English, for logs only
 * @property {string | null} refusal
 * @property {Record<string, any>} data  the refusal's data fields (occupancy, capacity, until...)
 * @property {boolean} final
 * @property {boolean} welcomed
 * @property {number} [delay]
 */

export class CallSession extends Emitter {
  /**
   * @param {object} options
   * @param {Record<string, any>} options.config  room-config
   * @param {import("./signaling.js").Signaling} options.signaling
   * @param {import("./media/local.js").LocalMedia} options.local
   * @param {boolean} options.isVoice
   * @param {() => {audio?: boolean, video?: boolean}} options.joinChoices  kinds to join with off
   * @param {string} options.someone
   */
  constructor({ config, signaling, local, isVoice, joinChoices, someone }) {
    super();
    this.config = config;
    this.signaling = signaling;
    this.local = local;
    this.isVoice = isVoice;
    this.joinChoices = joinChoices;
    this.someone = someone;
    /** @type {{id: string | null, name: string, isModerator: boolean, isGuest: boolean, hand: string | null}} */
    this.self = { id: null, name: config.me, isModerator: false, isGuest: Boolean(config.is_guest), hand: null };
    /** @type {string[]} the reactions the server takes (welcome.reactions) */
    this.reactions = [];
    /** @type {Map<string, {name: string, since: string}>} who records the meeting, by peer id */
    this.recordings = new Map();
    /** @type {Map<string, Participant>} */
    this.participants = new Map();
    /** @type {"joining" | "joined" | "reconnecting" | "closed"} */
    this.phase = "joining";
    this.room = { capacity: config.capacity, locked: false, waitingRoom: "off" };
    /** The room's waiting room queue, for moderators (docs/protocol.md, `waiting-room`). */
    this.waitingQueue = /** @type {{waiting_id: string, name: string, is_guest: boolean, since: string}[]} */ ([]);
    this.leaving = false;
    this.ended = false;
    this.pastSelfIds = new Set(); // our own earlier seats (before a reconnect): never someone else
    /** @type {Promise<void> | null} */
    this.mediaReady = null; // devices are asked for once: at the Join click or the first welcome
    this.mediaSettled = false; // ... and that has finished (devices or none)
    this.welcomes = 0; // a newer welcome supersedes one still waiting for devices
    this.announced = false; // our media state went out since the last welcome
    this.sentMedia = ""; // the last `media` message sent (JSON)

    const media = config.media === "sfu" ? "sfu" : "mesh";
    this.transport = createTransport(media, {
      signaling,
      local,
      accept: (id) => this.accept(id),
      // The page's ICE servers: for a connection made on the pre-join screen (prepare).
      ice: {
        iceServers: Array.isArray(config.ice_servers) ? config.ice_servers : [],
        iceTransportPolicy: config.ice_transport_policy === "relay" ? "relay" : "all",
        freshForMs: (Number(config.ice_fresh_seconds) || 0) * 1000,
      },
    });
    this.transport.on("connection", ({ id, state }) => {
      const participant = this.participants.get(id);
      if (!participant) return;
      participant.connection = state;
      this.emit("participant-updated", participant);
    });

    local.on("change", ({ media }) => {
      this.emit("media", { media });
      if (this.announced && !this.leaving && !this.ended) this.sendMedia(false);
    });
    local.on("lost", ({ kind }) => this.emit("devices", { phase: "lost", kind }));

    this.listen();
  }

  get media() {
    return this.local.media;
  }

  /** @param {"joining" | "waiting" | "joined" | "reconnecting" | "closed"} phase @param {CloseInfo | null} [close] */
  setPhase(phase, close = null) {
    this.phase = phase;
    this.emit("phase", { phase, close });
  }

  /** @param {unknown} id */
  isSomeoneElse(id) {
    return typeof id === "string" && id !== this.self.id && !this.pastSelfIds.has(id);
  }

  // The transport asks before it lets a peer's offer or candidate start or carry media.
  /** @param {unknown} id */
  accept(id) {
    if (!this.isSomeoneElse(id)) return false;
    this.ensure(/** @type {string} */ (id));
    return true;
  }

  /**
   * @param {string} id @param {{name?: string, media?: any, hand?: string | null}} [info]
   * @param {Participant[] | null} [later]  someone new is told of (participant-added) when
   *   the caller says (introduce), not now
   */
  ensure(id, info = {}, later = null) {
    let participant = this.participants.get(id);
    if (!participant) {
      participant = makeParticipant(id, info, this.isVoice, this.someone);
      this.participants.set(id, participant);
      if (later) later.push(participant);
      else this.introduce([participant]);
    } else if (info.name || info.media || info.hand !== undefined) {
      if (info.name) participant.name = info.name;
      if (info.media) Object.assign(participant.media, info.media);
      const handMoved = info.hand !== undefined && info.hand !== participant.hand;
      if (handMoved) participant.hand = info.hand ?? null;
      this.emit("participant-updated", participant);
      if (handMoved) this.emitHands(null);
    }
    return participant;
  }

  /** @param {Participant[]} added */
  introduce(added) {
    for (const participant of added) {
      if (this.participants.get(participant.id) !== participant) continue; // gone meanwhile
      this.emit("participant-added", participant);
      if (participant.hand) this.emitHands(null);
    }
  }

  /** @param {string} id */
  remove(id) {
    const participant = this.participants.get(id);
    if (!participant) return;
    this.participants.delete(id);
    this.transport.remove(id);
    this.emit("participant-removed", participant);
    if (participant.hand) this.emitHands(null); // a hand goes with its seat
  }

  removeAll() {
    for (const id of [...this.participants.keys()]) this.remove(id);
    this.transport.removeAll();
  }

  // --- Our media --------------------------------------------------------------------------

  /**
   * Turn our microphone ("audio"), camera ("video") or screen share ("screen") on or off:
   * the tracks change, the others are told (`media`), the page repaints ("media" event).
   * Resolves to the state of that kind afterwards; a screen that could not be had throws.
   * @param {import("./media/local.js").MediaKind} kind @param {boolean} on
   */
  setMedia(kind, on) {
    if (this.ended && on) return Promise.resolve(false);
    return this.local.setMedia(kind, on);
  }

  /** @param {boolean} always  say it even if it did not change (a new socket) */
  sendMedia(always) {
    const media = this.local.media;
    const text = JSON.stringify(media);
    if (!always && text === this.sentMedia) return;
    if (this.signaling.send({ type: "media", ...media })) this.sentMedia = text;
  }

  async acquireMedia() {
    this.emit("devices", { phase: "asking" });
    const result = await this.local.acquire(this.joinChoices());
    this.mediaSettled = true;
    // Refused or ended while the devices came (taken at the Join click): they stop again.
    if (this.ended) this.local.stop();
    this.emit("devices", { phase: "ready", result });
  }

  // The pre-join screen holds these devices (and will hand them over at the Join click):
  // the transport may make our first connection and offer with them now, while the person
  // looks at their preview, instead of when the call starts.
  /** @param {MediaStreamTrack[]} tracks */
  prepare(tracks) {
    if (this.phase !== "joining" || this.self.id !== null || this.ended || this.leaving) return;
    this.transport.prime?.(tracks);
  }

  // The pre-join screen's camera and microphone become the call's at the Join click, while
  // the socket opens: the welcome then finds them ready and starts the calls at once. (A
  // page without a preview asks for its devices at the welcome instead: nobody is asked
  // for a camera before the room has taken them in.)
  takeDevices() {
    this.mediaReady = this.mediaReady || this.acquireMedia();
  }

  async retryMedia() {
    this.emit("devices", { phase: "asking" });
    const result = await this.local.reacquire();
    this.emit("devices", { phase: "ready", result });
  }

  // --- Hands and reactions (docs/protocol.md, `hand` and `reaction`) -----------------------

  /** @param {boolean} raised */
  setHand(raised) {
    return this.signaling.send({ type: "hand", raised });
  }

  /** @param {string} reaction */
  react(reaction) {
    if (!this.reactions.includes(reaction)) return false;
    return this.signaling.send({ type: "reaction", reaction });
  }

  /**
   * Everyone whose hand is up, ours included, in the server's order: first raised first,
   * equal times by peer id.
   * @returns {{id: string, name: string, raisedAt: string, self: boolean}[]}
   */
  handQueue() {
    const queue = [...this.participants.values()]
      .filter((participant) => participant.hand)
      .map((participant) => ({ id: participant.id, name: participant.name, raisedAt: /** @type {string} */ (participant.hand), self: false }));
    if (this.self.id && this.self.hand) queue.push({ id: this.self.id, name: this.self.name, raisedAt: this.self.hand, self: true });
    const at = (/** @type {string} */ iso) => new Date(iso).getTime();
    return queue.sort((a, b) => at(a.raisedAt) - at(b.raisedAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** @param {boolean} on */
  setRecording(on) {
    return this.signaling.send({ type: "recording", on });
  }

  /** @param {{id: string, raisedAt: string | null, byModerator: boolean} | null} changed */
  emitHands(changed) {
    this.emit("hands", { queue: this.handQueue(), changed });
  }

  // --- Leaving ----------------------------------------------------------------------------

  async leave() {
    if (this.leaving) return false;
    this.leaving = true;
    await Promise.all(this.emit("leaving")); // a recording is saved first, for one
    this.removeAll();
    this.transport.unprime?.(false);
    this.local.stop();
    await this.signaling.leave();
    return true;
  }

  // The page goes away (closed tab, reload, navigation): leave without waiting. Firefox has
  // shut the socket by now, so a beacon with the seat's token says it too (docs/protocol.md,
  // "Leaving when the socket is already gone").
  pagehide() {
    if (this.leaving || this.ended) return;
    this.leaving = true;
    const token = this.signaling.resumeToken;
    this.signaling.send({ type: "leave" });
    this.signaling.close();
    if (token && this.config.leave_url && navigator.sendBeacon) {
      const body = new FormData();
      body.append("token", token);
      navigator.sendBeacon(this.config.leave_url, body);
    }
  }

  /** @param {unknown} queue  `waiting-room.queue` or `welcome.waiting` */
  setWaitingQueue(queue) {
    const entries = Array.isArray(queue) ? queue : [];
    this.waitingQueue = entries
      .filter((/** @type {any} */ q) => typeof q?.waiting_id === "string")
      .map((/** @type {any} */ q) => ({ waiting_id: q.waiting_id, name: String(q.name || this.someone), is_guest: Boolean(q.is_guest), since: String(q.since || "") }));
    this.emit("waiting-queue", { queue: [...this.waitingQueue] });
  }

  // --- Signaling --------------------------------------------------------------------------

  // Our devices are ready after a welcome: offer to everyone already here, and say what we
  // send; after a resume, to those who came while we were away. (People who came after us
  // while we waited for devices already offered; our tracks went to them when the devices
  // came: local media's "tracks".)
  /** @param {string[]} listed  the welcome's peers @param {boolean} resumed */
  startCalls(listed, resumed) {
    for (const id of listed) {
      if (!this.participants.has(id)) continue;
      if (this.transport.has(id)) {
        if (resumed) this.transport.resume(id);
        continue;
      }
      this.transport.connect(id);
    }
    this.transport.unprime?.(); // not needed (nobody to offer to), or did not fit
    // After the offers: an offer made ahead has gone out by now, and the server stores our
    // `media` before it relays what comes next from us.
    this.announced = true;
    this.sendMedia(true);
  }

  listen() {
    const { signaling } = this;

    signaling.on("welcome", async (welcome) => {
      const generation = ++this.welcomes;
      // After a drop the page asks for its seat back. Resumed (same peer id): the peer
      // connections carry on, since media flows peer to peer and usually outlives the
      // socket. Otherwise this is a fresh join: new peer id, new connections.
      const resumed = Boolean(welcome.resumed) && this.self.id !== null && welcome.self.peer_id === this.self.id;
      if (!resumed) {
        this.removeAll();
        if (this.self.id) this.pastSelfIds.add(this.self.id);
      }
      this.self = {
        id: welcome.self.peer_id,
        name: welcome.self.name || this.config.me,
        isModerator: Boolean(welcome.self.is_moderator),
        isGuest: Boolean(welcome.self.is_guest),
        hand: typeof welcome.self.hand === "string" ? welcome.self.hand : null,
      };
      this.reactions = Array.isArray(welcome.reactions) ? welcome.reactions.filter((/** @type {unknown} */ name) => typeof name === "string") : [];
      this.recordings = new Map(
        (Array.isArray(welcome.recordings) ? welcome.recordings : [])
          .filter((/** @type {any} */ r) => typeof r?.peer_id === "string" && typeof r.since === "string")
          .map((/** @type {any} */ r) => [r.peer_id, { name: String(r.name || this.someone), since: r.since }]),
      );
      this.transport.configure({
        selfId: welcome.self.peer_id,
        iceServers: Array.isArray(welcome.ice_servers) ? welcome.ice_servers : [],
        iceTransportPolicy: welcome.ice_transport_policy === "relay" ? "relay" : "all",
      });
      if (welcome.room) {
        if (welcome.room.capacity) this.room.capacity = welcome.room.capacity;
        this.room.locked = Boolean(welcome.room.locked);
        if (typeof welcome.room.waiting_room === "string") this.room.waitingRoom = welcome.room.waiting_room;
      }
      this.announced = false;
      if (resumed) {
        // Whoever left while we were away: their peer-left went to the lost socket.
        const present = new Set((welcome.peers || []).map((/** @type {any} */ info) => info.peer_id));
        for (const id of [...this.participants.keys()]) if (!present.has(id)) this.remove(id);
      }
      // The server may still hold our previous seat for a while after a drop: not a person.
      // The page hears of the people listed after our offers to them have gone out (their
      // tiles take it a few milliseconds each).
      /** @type {Participant[]} */
      const added = [];
      const listed = (welcome.peers || [])
        .filter((/** @type {any} */ info) => !this.pastSelfIds.has(info.peer_id))
        .map((/** @type {any} */ info) => this.ensure(info.peer_id, { ...info, hand: info.hand ?? null }, added).id);
      this.mediaReady = this.mediaReady || this.acquireMedia();
      // With our devices ready (taken at the Join click), the calls start before the page
      // shows the call: the browser makes our offers while the page lays itself out.
      if (this.mediaSettled) this.startCalls(listed, resumed);
      this.introduce(added);
      this.emit("recordings", { changed: null });
      if (welcome.room) this.emit("room", { ...this.room });
      this.setWaitingQueue(welcome.waiting);
      this.emit("self", { ...this.self });
      this.setPhase("joined");
      this.emitHands(null);
      if (this.announced) return;
      await this.mediaReady;
      if (generation !== this.welcomes || this.ended || this.leaving) return; // superseded
      this.startCalls(listed, resumed);
    });

    signaling.on("peer-joined", ({ peer: info }) => {
      // They will send the offer; the connection is made when it arrives.
      if (this.isSomeoneElse(info.peer_id)) this.ensure(info.peer_id, info);
    });

    signaling.on("peer-left", ({ peer_id: id }) => {
      this.remove(id);
      // Their recording ended with their seat.
      if (this.recordings.delete(id)) this.emit("recordings", { changed: { id, on: false } });
    });

    signaling.on("media", (message) => {
      const participant = this.participants.get(message.from);
      if (!participant) return;
      participant.media = { audio: Boolean(message.audio), video: Boolean(message.video), screen: Boolean(message.screen) };
      this.emit("participant-updated", participant);
    });

    // The server has already told the others; we turn the device off here and say why.
    signaling.on("moderator-request", async ({ action }) => {
      const kind = /** @type {"audio" | "video" | undefined} */ ({ mute: "audio", "stop-video": "video" }[action]);
      if (!kind) return;
      await this.setMedia(kind, false);
      this.emit("moderator-request", { kind });
    });

    signaling.on("hand", ({ peer_id: id, raised_at: raisedAt, by_moderator: byModerator }) => {
      const hand = typeof raisedAt === "string" ? raisedAt : null;
      if (id === this.self.id) {
        this.self = { ...this.self, hand };
        this.emit("self", { ...this.self });
      } else {
        const participant = this.participants.get(id);
        if (!participant) return;
        participant.hand = hand;
        this.emit("participant-updated", participant);
      }
      this.emitHands({ id, raisedAt: hand, byModerator: Boolean(byModerator) });
    });

    signaling.on("recording", ({ peer_id: id, name, since }) => {
      if (typeof id !== "string") return;
      const on = typeof since === "string";
      if (on) this.recordings.set(id, { name: String(name || this.someone), since });
      else if (!this.recordings.delete(id)) return;
      this.emit("recordings", { changed: { id, on } });
    });

    signaling.on("reaction", ({ from: id, reaction }) => {
      if (typeof reaction !== "string") return;
      const name = id === this.self.id ? this.self.name : this.participants.get(id)?.name;
      if (name === undefined) return; // someone we do not know (yet): nothing to float over
      this.emit("reaction", { id, name, reaction });
    });

    signaling.on("role", ({ peer_id: id, is_moderator: isModerator }) => {
      if (id === this.self.id) {
        this.self = { ...this.self, isModerator: Boolean(isModerator) };
        this.emit("self", { ...this.self });
      } else if (this.participants.has(id)) {
        const participant = /** @type {Participant} */ (this.participants.get(id));
        participant.isModerator = Boolean(isModerator);
        this.emit("participant-updated", participant);
      }
    });

    signaling.on("room-updated", (message) => {
      if (typeof message.locked !== "boolean") return;
      this.room.locked = message.locked;
      if (typeof message.waiting_room === "string") this.room.waitingRoom = message.waiting_room;
      this.emit("room", { ...this.room });
    });

    // The waiting room: we wait to be let in (no seat yet), or, as a moderator, see who does.
    signaling.on("waiting", ({ moderators_present: present }) => {
      if (this.phase !== "waiting") this.setPhase("waiting");
      this.emit("waiting", { moderatorsPresent: Boolean(present) });
    });
    signaling.on("waiting-room", ({ queue }) => this.setWaitingQueue(queue));

    signaling.on("close", (/** @type {CloseInfo & {superseded?: boolean}} */ close) => {
      // 4408: a newer socket of this page holds the seat; it carries on, nothing to say.
      if (close.superseded) return;
      if (this.leaving) {
        this.removeAll();
        return;
      }
      if (!close.final) {
        // The connections stay: a resumed seat keeps them (see "welcome").
        this.setPhase("reconnecting", close);
        console.info(`call: connection closed (${close.code}); next try in ${close.delay} ms`);
        return;
      }
      this.removeAll();
      this.transport.unprime?.(false);
      this.ended = true;
      this.local.stop();
      this.setPhase("closed", close);
    });
  }
}
