// Connection details: which ICE candidates this browser gathered (host, srflx, relay),
// which route each call took (the selected candidate pair), its round-trip time, and a hint
// in plain words when the TURN relay is missing or failing. call.js starts it once; it
// listens to the transport's events (connections, gathered candidates, ICE server errors)
// and asks it for stats; the "Connection details" button in the controls opens the panel.
// Tests read window.confab.diagnostics.snapshot().
//
// Where the facts come from:
// - ICE servers and policy: `welcome.ice_servers` / `welcome.ice_transport_policy`, and each
//   `ice-servers` message (fresh TURN credentials; the transport applies them with
//   setConfiguration, so ICE restarts and new connections use them).
// - Gathered candidates: the transport's "candidate" events and getStats `local-candidate`
//   reports.
// - TURN failures: the transport's "candidate-error" events (icecandidateerror: 401: credentials refused, 403: forbidden, 701: no
//   answer) and, since an unreachable TURN server is reported only after ~40 s or never,
//   no relay candidate within RELAY_EXPECTED_MS of the first connection.
// - The route: the selected candidate pair (transport/route.js says how each engine names
//   it), its local and remote candidates and `currentRoundTripTime`.

import { fmt, gettext } from "./dom.js";
import { selectedPair } from "./transport/route.js";

export const RELAY_EXPECTED_MS = 8000;
const POLL_MS = 1000; // while the panel is open
const POLL_CLOSED_MS = 3000; // otherwise: the button's warning dot and tests
const MAX_ERRORS = 20;
const TYPES = ["host", "srflx", "relay"];

const isTurnUrl = (url) => /^turns?:/i.test(url);

function urlsOf(servers) {
  const urls = [];
  for (const server of servers) {
    for (const url of Array.isArray(server.urls) ? server.urls : [server.urls]) {
      if (typeof url === "string") urls.push(url);
    }
  }
  return urls;
}

// coturn's REST scheme: username "<unix expiry>:<id>". null when it is not one.
function credentialExpiry(servers) {
  for (const server of servers) {
    const match = typeof server.username === "string" && server.username.match(/^(\d+):/);
    if (match && urlsOf([server]).some(isTurnUrl)) return Number(match[1]);
  }
  return null;
}

function typeWords(type) {
  return (
    {
      host: gettext("this device"),
      srflx: gettext("public address (STUN)"),
      prflx: gettext("address seen by the other side"),
      relay: gettext("TURN relay"),
    }[type] || type
  );
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export class Diagnostics {
  constructor({ signaling, session, transport, config }) {
    this.signaling = signaling;
    this.transport = transport;
    this.peers = session.participants; // read only: who is who
    this.iceServers = [];
    this.policy = "all";
    this.worker = "";
    this.firstExpiry = null; // the credentials of the first welcome
    this.expiry = null; // the newest credentials
    this.updates = 0; // ice-servers messages received
    this.updatedAt = null;
    this.candidates = Object.fromEntries([...TYPES, "prflx"].map((type) => [type, new Set()]));
    this.servers = new Map(); // ICE server URL -> {state, code, text, at}
    this.errors = [];
    this.firstWatchAt = null; // first connection under the current TURN configuration
    this.routes = new Map(); // peer id -> what getStats said last
    this.polling = false;
    this.polledAt = 0;
    this.shownHints = "";
    this.ui = this.findPanel();
    // The room page's own servers: the connection made on the pre-join screen gathers with
    // them (transport/mesh.js, "prime"), and what it found still counts once the welcome
    // brings the seat's credentials for the same servers.
    this.setServers(Array.isArray(config?.ice_servers) ? config.ice_servers : []);

    signaling.on("welcome", (welcome) => {
      this.worker = typeof welcome.worker === "string" ? welcome.worker : "";
      this.setServers(Array.isArray(welcome.ice_servers) ? welcome.ice_servers : []);
      this.policy = welcome.ice_transport_policy === "relay" ? "relay" : "all";
      if (this.firstExpiry === null) this.firstExpiry = this.expiry;
      this.render();
    });
    signaling.on("ice-servers", (message) => {
      if (!Array.isArray(message.ice_servers)) return;
      this.setServers(message.ice_servers);
      this.updates += 1;
      this.updatedAt = Date.now();
      this.render();
    });
    transport.on("connection", ({ state }) => {
      if (state === "new" && this.firstWatchAt === null) this.firstWatchAt = Date.now();
      this.render();
    });
    transport.on("candidate", ({ candidate }) => {
      this.noteCandidate(candidate.type, candidate.protocol, candidate.address, candidate.port, candidate.url);
    });
    transport.on("candidate-error", ({ id, url, code, text }) => {
      const error = { url, code, text, at: Date.now(), peer: id };
      this.errors.push(error);
      if (this.errors.length > MAX_ERRORS) this.errors.shift();
      if (error.url) {
        const state = { 401: "refused", 403: "forbidden", 701: "unreachable" }[error.code] || "error";
        this.servers.set(error.url, { state, code: error.code, text: error.text, at: error.at });
      }
      this.render();
    });
    setInterval(() => this.poll(), POLL_MS);
  }

  setServers(servers) {
    const before = urlsOf(this.iceServers).join(" ");
    this.iceServers = servers;
    this.expiry = credentialExpiry(servers);
    if (urlsOf(servers).join(" ") !== before) {
      // Another set of servers: what we knew about the old ones says nothing now.
      this.servers = new Map();
      const connected = this.transport.ids().length > 0;
      this.firstWatchAt = connected ? Date.now() : null;
    }
    for (const url of urlsOf(servers)) {
      if (!this.servers.has(url)) this.servers.set(url, { state: "pending", code: null, text: "", at: null });
    }
  }

  get turnUrls() {
    return urlsOf(this.iceServers).filter(isTurnUrl);
  }

  noteCandidate(type, protocol, address, port, url) {
    if (!type) return;
    const seen = (this.candidates[type] ||= new Set());
    const key = `${protocol || ""} ${address || ""}:${port || ""}`;
    if (seen.has(key)) return; // getStats lists old candidates too: they prove nothing new
    seen.add(key);
    // Firefox names no server on its candidates (no `url`): with one TURN server configured,
    // a relay candidate can only have come from that one.
    const turn = this.turnUrls;
    const server = url || (turn.length === 1 ? turn[0] : null);
    if (type === "relay" && server) this.servers.set(server, { state: "ok", code: null, text: "", at: Date.now() });
  }

  // Restart ICE on one connection (or all): new candidates, gathered with the current ICE
  // servers. The transport renegotiates.
  restartIce(id = null) {
    return this.transport.restartIce(id);
  }

  async poll() {
    if (this.polling || (!this.open && Date.now() - this.polledAt < POLL_CLOSED_MS - 100)) return;
    this.polling = true;
    this.polledAt = Date.now();
    try {
      const routes = new Map();
      for (const id of this.transport.ids()) {
        const route = await this.route(id);
        if (route) routes.set(id, route);
      }
      this.routes = routes;
    } catch (error) {
      console.warn("diagnostics: getStats failed", error);
    } finally {
      this.polling = false;
    }
    this.render();
  }

  async route(id) {
    const info = this.transport.info(id);
    const stats = info && info.state !== "closed" ? await this.transport.getStats(id) : null;
    if (!info || !stats) return null;
    stats.forEach((report) => {
      if (report.type === "local-candidate") {
        this.noteCandidate(report.candidateType, report.protocol, report.address || report.ip, report.port, report.url);
      }
    });
    const pair = selectedPair(stats);
    const candidate = (id) => {
      const report = id && stats.get(id);
      if (!report) return null;
      return {
        id: report.id,
        type: report.candidateType,
        protocol: report.protocol,
        relayProtocol: report.relayProtocol || null,
        address: report.address || report.ip || "",
        port: report.port,
        url: report.url || null,
      };
    };
    const rtt = pair && typeof pair.currentRoundTripTime === "number" ? Math.round(pair.currentRoundTripTime * 1000) : null;
    return {
      id,
      name: this.peers.get(id)?.name || "",
      state: info.state,
      iceState: info.iceState,
      pairId: pair ? pair.id : null,
      local: pair ? candidate(pair.localCandidateId) : null,
      remote: pair ? candidate(pair.remoteCandidateId) : null,
      rtt,
    };
  }

  hints() {
    const hints = [];
    const turn = this.turnUrls;
    const relayOnly = this.policy === "relay";
    if (turn.length === 0) {
      hints.push({
        code: "no-turn",
        level: relayOnly ? "error" : "warn",
        text: gettext("Calls across different networks may fail: this server has no TURN relay configured."),
      });
    } else {
      const states = turn.map((url) => this.servers.get(url) || { state: "pending" });
      const ok = states.some((s) => s.state === "ok");
      const waited = this.firstWatchAt !== null && Date.now() - this.firstWatchAt >= RELAY_EXPECTED_MS;
      if (states.some((s) => s.state === "refused")) {
        hints.push({
          code: "turn-refused",
          level: "error",
          text: gettext("The TURN server refused our credentials."),
          detail: gettext(
            "Calls that need the relay cannot connect. For the administrator: this site's TURN secret and the TURN server's may differ, or a clock may be wrong.",
          ),
        });
      } else if (states.some((s) => s.state === "forbidden")) {
        hints.push({
          code: "turn-forbidden",
          level: "error",
          text: gettext("The TURN server refused to relay this call (403 Forbidden)."),
        });
      } else if (!ok && (states.some((s) => s.state === "unreachable") || waited)) {
        hints.push({
          code: "turn-unreachable",
          level: "error",
          text: gettext("TURN server unreachable: it gave us no relay address."),
          detail: gettext("A firewall may block it, or it is not running. Calls across networks may fail."),
        });
      }
      if (relayOnly) {
        hints.push({
          code: "relay-only",
          level: "info",
          text: gettext("Relay-only policy in use: all audio and video go through the TURN relay."),
        });
      } else if (ok) {
        hints.push({
          code: "relay-ok",
          level: "ok",
          text: gettext("A TURN relay is available for calls across networks."),
        });
      }
    }
    return hints;
  }

  snapshot() {
    return {
      worker: this.worker,
      policy: this.policy,
      turnConfigured: this.turnUrls.length > 0,
      iceUrls: urlsOf(this.iceServers),
      credentialExpiry: this.expiry,
      firstCredentialExpiry: this.firstExpiry,
      iceServersUpdates: this.updates,
      iceServersUpdatedAt: this.updatedAt,
      candidates: Object.fromEntries(Object.entries(this.candidates).map(([type, set]) => [type, set.size])),
      servers: Object.fromEntries(this.servers),
      errors: this.errors.map((error) => ({ ...error })),
      peers: [...this.routes.values()],
      hints: this.hints(),
    };
  }

  // --- The panel -----------------------------------------------------------------------------

  findPanel() {
    const $ = (id) => document.getElementById(id);
    const panel = $("diagnostics");
    const button = $("toggle-diagnostics");
    if (!panel || !button) return null;
    const ui = {
      panel,
      button,
      close: $("diagnostics-close"),
      heading: $("diagnostics-heading"),
      hints: $("diagnostics-hints"),
      turn: $("diag-turn"),
      policy: $("diag-policy"),
      credentials: $("diag-credentials"),
      worker: $("diag-worker"),
      workerRow: $("diag-worker-row"),
      candidates: $("diag-candidates"),
      peers: $("diag-peers"),
      noPeers: $("diag-no-peers"),
      peerTemplate: $("diag-peer-template"),
    };
    button.addEventListener("click", () => this.setOpen(panel.hidden));
    ui.close.addEventListener("click", () => {
      this.setOpen(false);
      button.focus();
    });
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        this.setOpen(false);
        button.focus();
      }
    });
    return ui;
  }

  get open() {
    return Boolean(this.ui && !this.ui.panel.hidden);
  }

  setOpen(open) {
    if (!this.ui) return;
    this.ui.panel.hidden = !open;
    this.ui.button.setAttribute("aria-expanded", String(open));
    this.ui.button.classList.toggle("active", open);
    if (open) {
      this.shownHints = ""; // say the hints again
      this.render();
      this.ui.heading.focus();
      this.poll();
    }
  }

  render() {
    const ui = this.ui;
    if (!ui) return;
    // The button warns even while the panel is closed.
    const hints = this.hints();
    const worst = hints.some((h) => h.level === "error") ? "error" : hints.some((h) => h.level === "warn") ? "warn" : "";
    ui.button.dataset.alert = worst;
    if (!this.open) return;

    const key = JSON.stringify(hints.map((h) => [h.code, h.text]));
    if (key !== this.shownHints) {
      // A live region: only touched when the words change.
      this.shownHints = key;
      ui.hints.replaceChildren(
        ...hints.map((hint) => {
          const item = document.createElement("li");
          item.className = `diag-hint ${hint.level}`;
          item.dataset.code = hint.code;
          const strong = document.createElement("strong");
          strong.textContent = hint.text;
          item.append(strong);
          if (hint.detail) {
            const detail = document.createElement("span");
            detail.textContent = hint.detail;
            item.append(" ", detail);
          }
          return item;
        }),
      );
      ui.hints.hidden = hints.length === 0;
    }

    this.renderServers(ui.turn);
    ui.policy.textContent =
      this.policy === "relay"
        ? gettext("Relay only: every call goes through the TURN relay")
        : gettext("Direct when possible, relayed when needed");
    if (this.expiry) {
      ui.credentials.textContent =
        this.updates > 0
          ? fmt(gettext("valid until %(time)s · renewed %(count)s×"), { time: clock(this.expiry), count: this.updates })
          : fmt(gettext("valid until %(time)s"), { time: clock(this.expiry) });
    } else {
      ui.credentials.textContent = "—";
    }
    ui.workerRow.hidden = !this.worker;
    ui.worker.textContent = this.worker;

    for (const item of ui.candidates.querySelectorAll("[data-type]")) {
      const count = (this.candidates[item.dataset.type] || new Set()).size;
      item.classList.toggle("found", count > 0);
      item.querySelector(".diag-count").textContent = count > 0 ? String(count) : gettext("none");
    }

    this.renderPeers();
  }

  renderServers(target) {
    const turn = this.turnUrls;
    if (turn.length === 0) {
      target.textContent = gettext("Not configured");
      return;
    }
    const words = {
      ok: gettext("relay address obtained"),
      refused: gettext("refused our credentials"),
      forbidden: gettext("forbidden"),
      unreachable: gettext("no answer"),
      error: gettext("error"),
      pending: gettext("waiting…"),
    };
    const list = document.createElement("ul");
    list.className = "diag-servers";
    for (const url of turn) {
      const status = this.servers.get(url) || { state: "pending" };
      const item = document.createElement("li");
      item.className = `diag-server ${status.state}`;
      const code = document.createElement("code");
      code.textContent = url;
      const state = document.createElement("span");
      state.className = "diag-server-state";
      state.textContent = status.code ? `${words[status.state]} (${status.code})` : words[status.state];
      item.append(code, state);
      list.append(item);
    }
    target.replaceChildren(list);
  }

  renderPeers() {
    const ui = this.ui;
    const routes = [...this.peers.values()].map((peer) => this.routes.get(peer.id) || { id: peer.id, name: peer.name });
    ui.noPeers.hidden = routes.length > 0;
    const rows = new Map([...ui.peers.children].map((row) => [row.dataset.peer, row]));
    for (const [id, row] of rows) if (!this.peers.has(id)) row.remove();
    for (const route of routes) {
      let row = rows.get(route.id);
      if (!row) {
        row = ui.peerTemplate.content.firstElementChild.cloneNode(true);
        row.dataset.peer = route.id;
        ui.peers.append(row);
      }
      const peer = this.peers.get(route.id);
      row.querySelector(".diag-peer-name").textContent = peer ? peer.name : route.name;
      const badge = row.querySelector(".diag-route");
      const relayed = route.local?.type === "relay" || route.remote?.type === "relay";
      let kind;
      if (route.state === "connected" && route.local) kind = relayed ? "relayed" : "direct";
      else kind = route.state === "failed" ? "failed" : "connecting";
      badge.dataset.kind = kind;
      badge.textContent = {
        relayed: gettext("Relayed"),
        direct: gettext("Direct"),
        failed: gettext("Not connected"),
        connecting: gettext("Connecting…"),
      }[kind];
      for (const [selector, candidate, local] of [
        [".diag-local", route.local, true],
        [".diag-remote", route.remote, false],
      ]) {
        const cell = row.querySelector(selector);
        cell.textContent = this.describe(candidate, local);
        cell.title = candidate ? typeWords(candidate.type) : "";
      }
      row.querySelector(".diag-rtt").textContent = route.rtt === null || route.rtt === undefined ? "—" : `${route.rtt} ms`;
    }
  }

  describe(candidate, local) {
    if (!candidate) return "—";
    const protocol = (candidate.type === "relay" && local && candidate.relayProtocol) || candidate.protocol || "";
    const where = candidate.address ? ` · ${candidate.address}${candidate.port ? `:${candidate.port}` : ""}` : "";
    return `${candidate.type} · ${protocol.toUpperCase()}${where}`;
  }
}

// Start once, and expose it for tests and the curious: window.confab.diagnostics.
export function startDiagnostics({ signaling, session, transport, config }) {
  const diagnostics = new Diagnostics({ signaling, session, transport, config });
  if (window.confab) window.confab.diagnostics = diagnostics;
  return diagnostics;
}
