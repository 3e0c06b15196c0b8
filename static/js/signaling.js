// The call page's signaling client: one websocket to /ws/rooms/<slug>/ that speaks
// docs/protocol.md. No UI here: session.js and the UI modules listen to its events, and
// words.js words what they tell people.
//
//   const signaling = new Signaling(url);
//   signaling.on("welcome", (message) => ...);   // any server message type
//   signaling.on("close", ({code, reason, final, delay}) => ...);
//   signaling.connect();
//   signaling.send({type: "chat", body: "hi"});
//
// Events: "open", "close", "message" (every message), and one per message `type`
// ("welcome", "peer-joined", "peer-left", "offer", "answer", "candidate", "chat", "media",
// "ice-servers", "chat-hidden", "moderator-request", "role", "room-updated", "pong",
// "error"). A close with a 4xxx code (a refusal, see "Close codes and refusals") or after
// leave() is final, except 4503 (`unavailable`: the server could not take us in) and 4500
// (`server_error`: it failed with our connection); those, 1009 (a frame too large for
// daphne) and any other close (1006: the network or the server went away) are retried with
// exponential backoff and jitter. A retry carries the last `welcome.resume_token`
// (`?resume=<token>`), so the server can give back the same seat (same peer id): the next
// welcome then says `resumed: true` and the peer connections, which do not depend on this
// socket, carry on.
//
// The "close" event carries {code, refusal, data, reason, final, welcomed, delay,
// superseded}: `refusal` is the stable name of why the server closed (null when it did not
// say), `data` the refusal's fields (occupancy, capacity, until...), both from the
// `closing {code, refusal, reason, ...data}` message the server sends just before it
// closes (daphne drops the close reason: django/daphne#374). `reason` is English for logs,
// never for people. `welcomed` says whether this socket had been admitted (a refusal at the
// door versus a removal from the call); `superseded` (4408) says a newer socket of this
// page holds the seat.

export const CLOSE = Object.freeze({
  LEFT: 1000,
  TOO_BIG: 1009,
  ABUSE: 4400,
  NOT_SIGNED_IN: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  FULL: 4409,
  ENDED: 4410,
  RATE_LIMITED: 4429,
  SUPERSEDED: 4408,
  SERVER_ERROR: 4500,
  UNAVAILABLE: 4503,
});

// 4xxx closes the server means but that another try may get past (docs/protocol.md).
const RETRIED = new Set([CLOSE.SERVER_ERROR, CLOSE.UNAVAILABLE]);

// A close the server meant: retrying would only be refused again.
export function isRefusal(code) {
  return code >= 4000 && code <= 4999 && !RETRIED.has(code);
}

// The fields of a `closing` message besides its type, code, refusal and reason.
function closingData(note) {
  const data = {};
  for (const [key, value] of Object.entries(note || {})) {
    if (!["type", "code", "refusal", "reason"].includes(key)) data[key] = value;
  }
  return data;
}

export class Signaling {
  constructor(url, { heartbeat = 20, minDelay = 1000, maxDelay = 30000, leaveTimeout = 1500 } = {}) {
    this.url = url;
    this.heartbeat = heartbeat;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.leaveTimeout = leaveTimeout;
    this.socket = null;
    this.peerId = null;
    this.resumeToken = null; // from the last welcome: takes the seat back after a drop
    this.attempt = 0; // failed connections since the last welcome
    this.leaving = false;
    this.stopped = false;
    this.lastHeard = 0;
    this.welcomed = false; // this socket got its welcome
    this.closingNote = null; // the server's `closing` message, if it sent one
    this.handlers = new Map();
    this.heartbeatTimer = null;
    this.retryTimer = null;
  }

  // Subscribe to an event; returns a function that unsubscribes.
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type)?.delete(handler);
  }

  emit(type, detail) {
    for (const handler of [...(this.handlers.get(type) || [])]) {
      try {
        handler(detail);
      } catch (error) {
        console.error(`signaling: "${type}" handler failed`, error);
      }
    }
  }

  get connected() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.leaving) return;
    this.stopped = false;
    clearTimeout(this.retryTimer);
    const socket = new WebSocket(this.resumeUrl());
    this.socket = socket;
    this.welcomed = false;
    this.closingNote = null;
    socket.addEventListener("open", () => {
      if (socket === this.socket) this.emit("open", { attempt: this.attempt });
    });
    socket.addEventListener("message", (event) => {
      if (socket === this.socket) this.receive(event.data);
    });
    socket.addEventListener("close", (event) => this.closed(socket, event.code, event.reason));
    // "error" is always followed by "close", which does the work.
  }

  resumeUrl() {
    if (!this.resumeToken) return this.url;
    const separator = this.url.includes("?") ? "&" : "?";
    return `${this.url}${separator}resume=${encodeURIComponent(this.resumeToken)}`;
  }

  // Send one protocol message. Returns false if the socket is not open (nothing sent).
  send(message) {
    if (!this.connected) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  // Leave the room: the server answers by closing with 1000. Resolves once it has, or
  // after leaveTimeout, whichever comes first. No reconnect follows.
  leave() {
    this.leaving = true;
    clearTimeout(this.retryTimer);
    if (!this.connected) {
      this.close();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        off();
        clearTimeout(timer);
        this.close();
        resolve();
      };
      const off = this.on("close", done);
      const timer = setTimeout(done, this.leaveTimeout);
      this.send({ type: "leave" });
    });
  }

  // Close without ceremony and stop retrying (a page that is going away).
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn("signaling: a frame that is not JSON", data);
      return;
    }
    if (message === null || typeof message !== "object" || typeof message.type !== "string") return;
    this.lastHeard = Date.now();
    if (message.type === "closing") this.closingNote = message;
    if (message.type === "welcome") {
      this.welcomed = true;
      this.peerId = message.self?.peer_id ?? null;
      this.resumeToken = typeof message.resume_token === "string" && message.resume_token ? message.resume_token : null;
      this.attempt = 0;
      this.startHeartbeat(message.heartbeat);
    }
    this.emit("message", message);
    this.emit(message.type, message);
  }

  startHeartbeat(seconds) {
    this.stopHeartbeat();
    const interval = Math.max(1, Number(seconds) || this.heartbeat) * 1000;
    this.lastHeard = Date.now();
    this.heartbeatTimer = setInterval(() => {
      // Two beats without a word from the server (not even a pong): the connection is
      // dead even if the browser has not noticed yet.
      if (Date.now() - this.lastHeard > interval * 2.5) {
        this.drop("no answer from the server");
        return;
      }
      this.send({ type: "ping" });
    }, interval);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  // Treat the current socket as lost (as if it closed with 1006).
  drop(reason = "") {
    const socket = this.socket;
    if (!socket) return;
    try {
      socket.close();
    } catch {
      // already closing
    }
    this.closed(socket, 1006, reason);
  }

  closed(socket, code, reason) {
    if (socket !== this.socket) return; // an old socket we already gave up on
    this.socket = null;
    this.stopHeartbeat();
    const note = this.closingNote && this.closingNote.code === code ? this.closingNote : null;
    if (!reason && note && typeof note.reason === "string") reason = note.reason;
    const refusal = note && typeof note.refusal === "string" ? note.refusal : null;
    const data = closingData(note);
    const welcomed = this.welcomed;
    const final = this.leaving || this.stopped || isRefusal(code);
    if (final) {
      // 4408: this page's seat lives on a newer socket; retrying would take it back from it.
      const superseded = code === CLOSE.SUPERSEDED;
      this.resumeToken = null; // no retry follows a final close
      this.emit("close", { code, refusal, data, reason, final: true, welcomed, superseded });
      return;
    }
    // 4500: the server gave our seat up; the next try is a new join.
    if (code === CLOSE.SERVER_ERROR) this.resumeToken = null;
    const delay = this.nextDelay();
    this.emit("close", { code, refusal, data, reason, final: false, welcomed, delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // Exponential backoff with "equal jitter": half the step fixed, half random, so that a
  // restarted server is not hit by every page at the same moment.
  nextDelay() {
    const step = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(step / 2 + (Math.random() * step) / 2);
  }
}
