// Two things measured on live media:
//
// - The active speaker: who is talking now, from the Web Audio level of every stream (the
//   same analysers as the tiles' speaking ring: tiles.levels()), with hysteresis so that the highlight does
//   not flicker between words: it starts after a few loud moments, stays through short
//   pauses, and moves to someone else only when they are clearly louder for a while.
// - Connection quality per peer, from the transport's "stats" events (every two seconds): round-trip time
//   (candidate-pair currentRoundTripTime), packet loss (inbound-rtp packetsLost and
//   packetsReceived deltas) and bitrate (bytesReceived deltas), shown as three bars on the
//   tile with the details in a popover.
import { el, fmt, gettext, label, popover } from "./dom.js";
import { audioContext } from "./media/level.js";
import { selectedPair } from "./transport/route.js";

// --- Active speaker ------------------------------------------------------------------------------

const TICK_MS = 100;
const LOUD = 0.04; // RMS of a sample that counts as sound (speech, or the test beep)
const START_LOUD_MS = 300; // loud moments within START_WINDOW_MS that make someone a talker
const START_WINDOW_MS = 1500;
const HOLD_MS = 1500; // a talker stays one through pauses this long
const SWITCH_MS = 1000; // someone louder must stay louder this long to take over
const SWITCH_RATIO = 1.5;

export function setupActiveSpeaker({ tiles }) {
  const states = new Map(); // peer id ("local": us) -> {loud: [times], lastLoud, talking, energy, louderSince}
  let active = null; // the key of who holds the floor

  function stateOf(key) {
    let state = states.get(key);
    if (!state) {
      state = { loud: [], lastLoud: -Infinity, talking: false, energy: 0 };
      states.set(key, state);
    }
    return state;
  }

  function tick() {
    const context = audioContext();
    if (!context || context.state !== "running") return;
    const now = performance.now();
    const everyone = tiles.levels().map((entry) => ({ ...entry, key: entry.id ?? "local" }));
    for (const peer of everyone) {
      const state = stateOf(peer.key);
      const level = peer.meter && peer.audible ? peer.meter.level() : 0;
      state.energy = state.energy * 0.85 + level * 0.15;
      if (level > LOUD) {
        state.loud.push(now);
        state.lastLoud = now;
      }
      state.loud = state.loud.filter((at) => now - at < START_WINDOW_MS);
      if (!state.talking && state.loud.length * TICK_MS >= START_LOUD_MS) state.talking = true;
      if (state.talking && (now - state.lastLoud > HOLD_MS || !peer.audible)) state.talking = false;
    }
    const present = new Set(everyone.map((peer) => peer.key));
    for (const key of [...states.keys()]) if (!present.has(key)) states.delete(key);
    // Who holds the floor: the current speaker while they talk, unless someone else has been
    // clearly louder for a while.
    const talkers = everyone.filter((peer) => stateOf(peer.key).talking).map((peer) => peer.key);
    const loudest = talkers.reduce((best, key) => (!best || stateOf(key).energy > stateOf(best).energy ? key : best), null);
    if (!active || !talkers.includes(active)) {
      active = loudest;
    } else if (loudest && loudest !== active) {
      const challenger = stateOf(loudest);
      if (challenger.energy > stateOf(active).energy * SWITCH_RATIO) {
        challenger.louderSince ??= now;
        if (now - challenger.louderSince >= SWITCH_MS) active = loudest;
      } else {
        challenger.louderSince = null;
      }
    }
    for (const peer of everyone) {
      if (peer.key !== loudest) stateOf(peer.key).louderSince = null;
      const tile = peer.root;
      if (!tile) continue;
      const on = peer.key === active;
      if (tile.classList.contains("active-speaker") !== on) tile.classList.toggle("active-speaker", on);
    }
  }

  setInterval(tick, TICK_MS);

  return {
    get active() {
      return active;
    },
  };
}

// --- Connection quality --------------------------------------------------------------------------

const STATS_EVERY_MS = 2000;
const BARS = 3;

function qualityLevel({ rtt, loss }) {
  if (rtt === null && loss === null) return 0;
  const r = rtt ?? 0;
  const l = loss ?? 0;
  if (r < 0.25 && l < 0.02) return 3;
  if (r < 0.5 && l < 0.08) return 2;
  return 1;
}

function kbps(bits) {
  if (bits === null) return "–";
  return bits >= 1_000_000
    ? fmt(gettext("%(value)s Mbit/s"), { value: (bits / 1_000_000).toFixed(1) })
    : fmt(gettext("%(value)s kbit/s"), { value: Math.round(bits / 1000) });
}

export function setupQuality({ session, transport, tiles }) {
  const samples = new Map(); // peer id -> previous totals, of one connection (generation)
  const indicators = new Map(); // peer id -> {root, button, panel, quality}

  // A stats report of the connection with `id` -> what the bars and the details show.
  function measure(id, generation, report) {
    let lost = 0;
    let received = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    let video = null;
    const byId = new Map();
    report.forEach((stat) => byId.set(stat.id, stat));
    report.forEach((stat) => {
      if (stat.type === "inbound-rtp") {
        lost += stat.packetsLost || 0;
        received += stat.packetsReceived || 0;
        bytesIn += stat.bytesReceived || 0;
        if (stat.kind === "video" && stat.frameWidth && (!video || stat.frameWidth * stat.frameHeight > video.w * video.h)) {
          video = { w: stat.frameWidth, h: stat.frameHeight, fps: stat.framesPerSecond || 0 };
        }
      }
      if (stat.type === "outbound-rtp") bytesOut += stat.bytesSent || 0;
    });
    const pair = selectedPair(report);
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    const now = performance.now();
    const previous = samples.get(id);
    // A sample to compare with: of the same connection, and with counters that did not go
    // down (Firefox starts those of what it receives again when it sets its own sender's
    // parameters, as the mesh's bitrate cap does a second after connecting).
    const counted = previous && received >= previous.received && bytesIn >= previous.bytesIn && bytesOut >= previous.bytesOut;
    const before = previous && previous.generation === generation && counted ? previous : null;
    samples.set(id, { generation, now, lost, received, bytesIn, bytesOut });
    const seconds = before ? (now - before.now) / 1000 : 0;
    const dLost = before ? Math.max(0, lost - before.lost) : 0;
    const dReceived = before ? Math.max(0, received - before.received) : 0;
    const result = {
      rtt: typeof pair?.currentRoundTripTime === "number" ? pair.currentRoundTripTime : null,
      loss: before && dLost + dReceived > 0 ? dLost / (dLost + dReceived) : before ? 0 : null,
      bitrateIn: before && seconds > 0 ? ((bytesIn - before.bytesIn) * 8) / seconds : null,
      bitrateOut: before && seconds > 0 ? ((bytesOut - before.bytesOut) * 8) / seconds : null,
      video,
      relayed: [local?.candidateType, remote?.candidateType].includes("relay"),
    };
    result.level = qualityLevel(result);
    return result;
  }

  function words(level) {
    return (
      {
        3: gettext("Good connection"),
        2: gettext("Fair connection"),
        1: gettext("Poor connection"),
      }[level] || gettext("Measuring the connection…")
    );
  }

  function ensureIndicator(id, root) {
    const known = indicators.get(id);
    if (known && known.root === root) return known;
    const button = el("button", { type: "button", className: "tile-quality", "data-level": "0", hidden: true });
    for (let i = 1; i <= BARS; i += 1) button.append(el("span", { className: `tile-quality-bar bar-${i}` }));
    const panel = popover(button, {
      className: "xp-quality",
      title: gettext("Connection quality"),
      placement: "below",
      onOpen: () => fillDetails(id),
    });
    root.append(button, panel);
    const indicator = { root, button, panel, quality: null };
    indicators.set(id, indicator);
    return indicator;
  }

  function row(term, value) {
    return [el("dt", { text: term }), el("dd", { text: value })];
  }

  function fillDetails(id) {
    const indicator = indicators.get(id);
    const participant = session.participants.get(id);
    if (!indicator || !participant) return;
    const q = indicator.quality;
    const ms = (seconds) => (seconds === null ? "–" : fmt(gettext("%(value)s ms"), { value: Math.round(seconds * 1000) }));
    const list = el("dl", { className: "xp-quality-list" });
    if (q) {
      list.append(
        ...row(gettext("Round trip"), ms(q.rtt)),
        ...row(gettext("Packet loss"), q.loss === null ? "–" : `${(q.loss * 100).toFixed(q.loss < 0.1 ? 1 : 0)} %`),
        ...row(gettext("Receiving"), kbps(q.bitrateIn)),
        ...row(gettext("Sending"), kbps(q.bitrateOut)),
      );
      if (q.video) {
        list.append(
          ...row(
            gettext("Video received"),
            fmt(gettext("%(width)s×%(height)s at %(fps)s fps"), { width: q.video.w, height: q.video.h, fps: Math.round(q.video.fps) }),
          ),
        );
      }
      list.append(...row(gettext("Route"), q.relayed ? gettext("Through a relay server") : gettext("Direct")));
    }
    indicator.panel.replaceChildren(
      el("h2", { className: "xp-popover-title", text: fmt(gettext("Connection with %(name)s"), { name: participant.name }) }),
      el("p", { className: `xp-quality-summary level-${q?.level || 0}`, text: words(q?.level || 0) }),
      list,
    );
  }

  function paint(participant, root) {
    const indicator = ensureIndicator(participant.id, root);
    const connected = participant.connection === "connected";
    if (!connected) indicator.quality = null;
    const level = connected ? indicator.quality?.level || 0 : 0;
    const { button, panel } = indicator;
    button.hidden = !connected;
    button.dataset.level = String(level);
    label(button, fmt(gettext("%(quality)s with %(name)s. Show the details."), { quality: words(level), name: participant.name }));
    if (panel.matches(":popover-open")) fillDetails(participant.id);
  }

  tiles.on("painted", ({ participant, root }) => {
    if (participant) paint(participant, root);
  });
  tiles.on("removed", ({ id }) => {
    indicators.get(id)?.panel.hidePopover?.();
    indicators.delete(id);
    samples.delete(id);
  });
  transport.on("stats", ({ id, generation, report }) => {
    const indicator = indicators.get(id);
    const participant = session.participants.get(id);
    if (!indicator || !participant) return;
    indicator.quality = measure(id, generation, report);
    paint(participant, indicator.root);
  });

  return {
    /** What the bars of `id` show: {rtt, loss, bitrateIn, bitrateOut, video, relayed, level} or null. */
    of: (id) => indicators.get(id)?.quality || null,
  };
}
