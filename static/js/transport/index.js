// @ts-check
// The media transport: whatever carries our camera, microphone and screen to the others and
// theirs to us. It owns every RTCPeerConnection of the page; nothing else makes, reads or
// closes one. It knows no DOM: the UI only listens to its events, which are keyed by
// participant id (the protocol's peer_id), and tags every remote track with what it is.
//
// Two implementations:
//
// - "mesh" (transport/mesh.js): one RTCPeerConnection per other participant, negotiated
//   peer to peer through the signaling relay (offer / answer / candidate) with perfect
//   negotiation, ICE restart and rebuild repair, screen share on a reused m-line, the
//   negotiated data channels that files.js uses (see "datalink"), TURN refreshes.
// - "sfu" (transport/sfu.js): a room through Janus. One send-only publisher connection
//   (simulcast camera, microphone, screen) and one receive-only subscriber connection for
//   everyone else, driven by the protocol's sfu-* messages; no data channels.
//
// The interface is shaped so that an SFU transport fits behind it later (Janus: one
// send-only publisher connection and one receive-only subscriber connection for the whole
// room, driven by protocol messages of its own): events stay keyed by participant, tracks
// stay tagged camera / mic / screen, `preferLayer` asks for a simulcast layer per
// participant, and "datalink" is optional (a transport without peer-to-peer data channels
// never emits it, and files are simply off).
//
// The session (session.js) drives it:
//
//   transport.prime(tracks);   // before the first welcome (optional): make the newcomer's
//                              // first connection and offer ahead, with these tracks
//   transport.configure({selfId, iceServers, iceTransportPolicy}); // every welcome
//   transport.connect(id);     // start media with this participant (we are the newcomer)
//   transport.unprime();       // the welcome's connections are made: drop what was not used
//                              // (unprime(false): the call ends)
//   transport.resume(id);      // our seat was resumed: check this participant's media
//   transport.remove(id);      // they left: their media ends
//   transport.removeAll();     // our seat is gone (left, refused, a fresh join)
//
// and it reads our local media (media/local.js) by itself: its "tracks", "replaced" and
// "screen" events say what to send.

/**
 * What a remote track is.
 * @typedef {"camera" | "mic" | "screen"} TrackSource
 */

/**
 * A participant's media connection state (RTCPeerConnectionState words; an SFU transport
 * reports the state of what carries that participant's media).
 * @typedef {"new" | "connecting" | "connected" | "disconnected" | "failed" | "closed"} ConnectionState
 */

/**
 * @typedef {object} TrackEvent        "track" and "track-removed"
 * @property {string} id               the participant
 * @property {MediaStreamTrack} track
 * @property {TrackSource} source
 */

/**
 * @typedef {object} ConnectionEvent   "connection": a participant's connection state changed
 * @property {string} id
 * @property {ConnectionState} state
 */

/**
 * @typedef {object} StatsEvent        "stats": every STATS_EVERY_MS for each connected participant
 * @property {string} id
 * @property {number} generation       changes when the connection is replaced (counters restart)
 * @property {RTCStatsReport} report
 */

/**
 * @typedef {object} CandidateEvent    "candidate": a local ICE candidate was gathered
 * @property {string} id
 * @property {{type: string | null, protocol: string | null, address: string | null, port: number | null, url: string | null}} candidate
 */

/**
 * @typedef {object} CandidateErrorEvent "candidate-error": an ICE server failed us
 * @property {string} id
 * @property {string} url
 * @property {number} code              401, 403, 701, ...
 * @property {string} text
 */

/**
 * A peer-to-peer data path to one participant (mesh only). A new one comes with every new
 * connection; the channels of the previous one are closed with it.
 * @typedef {object} DataLink
 * @property {number} generation
 * @property {(label: string, init?: RTCDataChannelInit) => RTCDataChannel} openChannel
 * @property {(handler: (channel: RTCDataChannel) => void) => void} onChannel  channels the other side opens
 */

/**
 * @typedef {object} DataLinkEvent     "datalink": emitted synchronously when a connection with
 *                                     a participant is made. A connection made ahead (prime)
 *                                     has its first offer already: a negotiated channel that
 *                                     must be in every first offer is declared beforehand
 *                                     (declareChannel), and openChannel hands it out.
 * @property {string} id
 * @property {DataLink} link
 */

/**
 * @typedef {object} ConnectionInfo
 * @property {ConnectionState} state
 * @property {string} iceState
 * @property {number} generation   connections made with them so far
 * @property {number} iceRestarts  repairs by ICE restart so far
 * @property {number} rebuilds     repairs by a new connection so far
 */

/**
 * @typedef {object} Transport
 * @property {string} kind                                  "mesh" or "sfu"
 * @property {(settings: {selfId: string, iceServers: RTCIceServer[], iceTransportPolicy: RTCIceTransportPolicy}) => void} configure
 * @property {(id: string) => boolean} connect               false: already connected
 * @property {(id: string) => void} resume
 * @property {(id: string) => void} remove
 * @property {() => void} removeAll
 * @property {(id: string) => boolean} has                   a connection exists with them
 * @property {() => string[]} ids                            participants with a connection
 * @property {(id: string) => ConnectionInfo | null} info
 * @property {(id: string) => Promise<RTCStatsReport | null>} getStats
 * @property {(id?: string | null) => number} restartIce     repair by hand; how many connections
 * @property {(id: string) => boolean} rebuild               the last resort of a repair, by hand
 * @property {(id: string, layer: "low" | "medium" | "high") => boolean} preferLayer  false: nothing to choose
 * @property {(id: string) => RTCPeerConnection[]} connections  for the debug handle only (window.confab)
 * @property {(tracks: MediaStreamTrack[]) => void} [prime]   optional (mesh)
 * @property {(refresh?: boolean) => void} [unprime]         optional (mesh); refresh: false when the call ends
 * @property {(label: string, init: RTCDataChannelInit) => void} [declareChannel]  optional (mesh)
 * @property {(type: string, handler: (event: any) => any) => () => void} on
 *   Events: "track" and "track-removed" (TrackEvent), "connection" (ConnectionEvent),
 *   "stats" (StatsEvent), "candidate" (CandidateEvent), "candidate-error"
 *   (CandidateErrorEvent), "datalink" (DataLinkEvent, optional).
 */

/**
 * @typedef {object} TransportOptions
 * @property {import("../signaling.js").Signaling} signaling
 * @property {import("../media/local.js").LocalMedia} local
 * @property {(id: string) => boolean} accept  a message from this peer id may start or carry media (someone else in the room)
 * @property {{iceServers: RTCIceServer[], iceTransportPolicy: RTCIceTransportPolicy, freshForMs: number}} [ice]
 *   the room page's ICE servers (room-config), for a connection made before the welcome
 */

import { MeshTransport } from "./mesh.js";
import { SfuTransport } from "./sfu.js";

/**
 * @param {"mesh" | "sfu"} kind  the room's media path (room-config `media`)
 * @param {TransportOptions} options
 * @returns {Transport}
 */
export function createTransport(kind, options) {
  if (kind === "sfu") return new SfuTransport(options);
  if (kind !== "mesh") throw new Error(`no transport "${kind}"`);
  return new MeshTransport(options);
}
