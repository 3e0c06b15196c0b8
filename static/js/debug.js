// @ts-check
// window.confab: a read-only handle on the call for the browser tests and the console. It is
// not an interface for the page's own modules (they use the session's and the transport's).
//
//   confab.peers          Map-like view: peer_id -> {id, name, pc, iceRestarts, rebuilds}
//                         (pc: the transport's connection with them, null before there is one)
//   confab.selfId         our peer id
//   confab.localStream    our camera and microphone
//   confab.signaling      the signaling client
//   confab.rebuildConnection(id)  the last resort of a repair, by hand
//   confab.restartIce(id?)        an ICE restart by hand (all connections without an id)
//   confab.connections()          every RTCPeerConnection of the page
//   confab.receivedFrom(id)       {framesDecoded, frameWidth, audioPackets} from one person
// Modules add their own read-only views: confab.experience, confab.files, confab.diagnostics.

/**
 * @param {object} parts
 * @param {import("./signaling.js").Signaling} parts.signaling
 * @param {import("./session.js").CallSession} parts.session
 * @param {import("./media/local.js").LocalMedia} parts.local
 * @param {import("./transport/index.js").Transport} parts.transport
 */
export function exposeDebugHandle({ signaling, session, local, transport }) {
  /** @param {string} id */
  const view = (id) => {
    const participant = session.participants.get(id);
    if (!participant) return undefined;
    return {
      id,
      name: participant.name,
      get pc() {
        return transport.connections(id)[0] || null;
      },
      get iceRestarts() {
        return transport.info(id)?.iceRestarts || 0;
      },
      get rebuilds() {
        return transport.info(id)?.rebuilds || 0;
      },
    };
  };
  const peers = {
    get size() {
      return session.participants.size;
    },
    /** @param {string} id */
    has: (id) => session.participants.has(id),
    get: view,
    keys: () => session.participants.keys(),
    *values() {
      for (const id of [...session.participants.keys()]) yield view(id);
    },
    *entries() {
      for (const id of [...session.participants.keys()]) yield [id, view(id)];
    },
    [Symbol.iterator]() {
      return this.entries();
    },
  };
  // @ts-ignore: a property of our own on window
  window.confab = {
    peers,
    signaling,
    /** @param {string} id */
    rebuildConnection: (id) => transport.rebuild(id),
    /** @param {string | null} [id] */
    restartIce: (id) => transport.restartIce(id ?? null),
    get localStream() {
      return local.stream;
    },
    get selfId() {
      return session.self.id;
    },
    // Every RTCPeerConnection of the page (mesh: one per person; sfu: two in all).
    connections() {
      const all = new Set();
      for (const id of session.participants.keys()) for (const pc of transport.connections(id)) all.add(pc);
      return [...all];
    },
    transportKind: transport.kind,
    // What we receive from one person, from the transport's per-person stats (in an SFU
    // room, their m-lines of the shared subscriber): frames decoded, the widest frame,
    // audio packets.
    /** @param {string} id */
    async receivedFrom(id) {
      const report = await transport.getStats(id);
      const out = { framesDecoded: 0, frameWidth: 0, audioPackets: 0 };
      report?.forEach((/** @type {any} */ r) => {
        if (r.type !== "inbound-rtp") return;
        if (r.kind === "video") {
          out.framesDecoded += r.framesDecoded || 0;
          out.frameWidth = Math.max(out.frameWidth, r.frameWidth || 0);
        } else if (r.kind === "audio") {
          out.audioPackets += r.packetsReceived || 0;
        }
      });
      return out;
    },
  };
}
