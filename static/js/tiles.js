// Tiles and layout: one tile per participant (and our own), their media elements, badges,
// connection words and speaking ring, the people count, and the grid. It listens to the
// session (who is there, what they said) and the transport (their tracks) and never
// changes either.
//
//   const tiles = setupTiles({ui, config, isVoice, session, local});
//   tiles.on("painted", ({id, participant, root, element}) => ...); // a tile was (re)painted; id null: ours
//   tiles.on("removed", ({id, root}) => ...);                       // before a tile goes
//   tiles.rootOf(id)          // a tile's element (null: ours)
//   tiles.elements()          // the remote media elements (speakers)
//   tiles.levels()            // [{id, root, meter, audible}] everyone's sound, for the active speaker
//   tiles.layout()            // lay the grid out again (something changed its size)
import { Emitter } from "./emitter.js";
import { avatarHue, avatarInitial, fmt, gettext, ngettext } from "./dom.js";
import { audioContext, levelMeter, resumeAudio } from "./media/level.js";
import { connectionWords } from "./words.js";

const SPEAKING_LEVEL = 0.02;
const SPEAKING_HOLD_MS = 500;

/**
 * A tile: its elements and what it plays (declared here only).
 * @typedef {object} Tile
 * @property {HTMLElement} root
 * @property {HTMLMediaElement} element
 * @property {HTMLElement} name
 * @property {HTMLElement} initial
 * @property {HTMLElement} avatar
 * @property {HTMLElement} state
 * @property {HTMLElement} micOff
 * @property {HTMLElement} camOff
 * @property {MediaStream} stream        their camera and microphone
 * @property {{level(): number, disconnect(): void} | null} meter
 * @property {MediaStreamTrack | null} meterTrack
 * @property {number} loudAt
 */

export function setupTiles({ ui, config, isVoice, session, local }) {
  const events = new Emitter();
  const { transport } = session;
  /** @type {Map<string, Tile>} */
  const tiles = new Map();
  const watchedTracks = new WeakSet();
  // Autoplay: a page without a user gesture may not play sound. Video then plays muted and a
  // button offers to turn sound on.
  const blockedMedia = new Set();

  /** @returns {Tile} */
  function makeTile(id) {
    const root = ui.tileTemplate.content.firstElementChild.cloneNode(true);
    const element = document.createElement(isVoice ? "audio" : "video");
    element.autoplay = true;
    element.playsInline = true;
    element.setAttribute("playsinline", "");
    element.className = "tile-media";
    if (id === null) element.muted = true; // never play our own microphone back
    root.prepend(element);
    if (id === null) root.classList.add("local");
    else root.dataset.peer = id;
    return {
      root,
      element,
      name: root.querySelector(".tile-name"),
      guest: root.querySelector(".tile-guest"),
      initial: root.querySelector(".avatar-initial"),
      avatar: root.querySelector(".avatar"),
      state: root.querySelector(".tile-state"),
      micOff: root.querySelector(".mic-off"),
      camOff: root.querySelector(".cam-off"),
      stream: id === null ? local.stream : new MediaStream(),
      meter: null,
      meterTrack: null,
      loudAt: 0,
    };
  }

  function paintAvatar(tile, name) {
    tile.initial.textContent = avatarInitial(name);
    tile.avatar.style.setProperty("--avatar-hue", avatarHue(name));
  }

  // --- Their tiles --------------------------------------------------------------------------

  function paint(participant) {
    const tile = tiles.get(participant.id);
    if (!tile) return;
    tile.name.textContent = participant.name;
    tile.root.setAttribute("aria-label", participant.name);
    paintAvatar(tile, participant.name);
    tile.root.dataset.state = participant.connection;
    const words = connectionWords(participant.connection);
    tile.state.textContent = words || "";
    tile.state.hidden = !words;
    tile.micOff.hidden = participant.media.audio;
    tile.guest.hidden = !participant.isGuest;
    tile.camOff.hidden = isVoice || participant.media.video;
    const video = tile.stream.getVideoTracks()[0];
    const showVideo = !isVoice && participant.media.video && video && video.readyState === "live" && !video.muted;
    tile.root.classList.toggle("no-video", !showVideo);
    if (!participant.media.audio) tile.root.classList.remove("speaking");
    events.emit("painted", { id: participant.id, participant, root: tile.root, element: tile.element });
  }

  function added(participant) {
    const tile = makeTile(participant.id);
    tiles.set(participant.id, tile);
    ui.tiles.append(tile.root);
    paint(participant);
    countChanged();
  }

  function removed(participant) {
    const tile = tiles.get(participant.id);
    if (!tile) return;
    tiles.delete(participant.id);
    tile.meter?.disconnect();
    tile.element.srcObject = null;
    blockedMedia.delete(tile.element);
    if (blockedMedia.size === 0) ui.sound.hidden = true;
    events.emit("removed", { id: participant.id, root: tile.root });
    tile.root.remove();
    countChanged();
  }

  session.on("participant-added", added);
  session.on("participant-updated", paint);
  session.on("participant-removed", removed);

  // Their camera and microphone (a screen has a tile of its own: screenshare.js).
  transport.on("track", ({ id, track, source }) => {
    const tile = tiles.get(id);
    const participant = session.participants.get(id);
    if (!tile || !participant || source === "screen") return;
    const others = tile.stream.getTracks().filter((t) => t.kind !== track.kind);
    tile.stream = new MediaStream([...others, track]);
    if (!watchedTracks.has(track)) {
      // A renegotiation can announce the same track again.
      watchedTracks.add(track);
      for (const type of ["mute", "unmute", "ended"]) {
        track.addEventListener(type, () => {
          const now = session.participants.get(id);
          if (now) paint(now);
        });
      }
    }
    bind(tile);
    if (track.kind === "audio") {
      tile.meter?.disconnect();
      tile.meter = levelMeter(new MediaStream([track]));
    }
    paint(participant);
  });

  transport.on("track-removed", ({ id, track, source }) => {
    const tile = tiles.get(id);
    if (!tile || source === "screen" || !tile.stream.getTracks().includes(track)) return;
    tile.stream = new MediaStream(tile.stream.getTracks().filter((t) => t !== track));
    const participant = session.participants.get(id);
    if (participant) paint(participant);
  });

  function bind(tile) {
    const element = tile.element;
    if (element.srcObject !== tile.stream) element.srcObject = tile.stream;
    play(element);
  }

  async function play(element) {
    try {
      await element.play();
    } catch (error) {
      if (error.name !== "NotAllowedError") return; // AbortError: a newer srcObject took over
      blockedMedia.add(element);
      ui.sound.hidden = false;
      if (element.tagName === "VIDEO" && !element.muted) {
        element.muted = true;
        element.play().catch(() => {});
      }
    }
  }

  function enableSound() {
    for (const element of blockedMedia) {
      element.muted = false;
      element.play().catch(() => {});
    }
    blockedMedia.clear();
    ui.sound.hidden = true;
    resumeAudio();
  }

  ui.sound.addEventListener("click", enableSound);

  // --- Our tile: the preview is muted and mirrored, like a mirror ------------------------------

  const own = makeTile(null);
  ui.tiles.append(own.root);

  function paintOwn() {
    const media = session.media;
    const name = session.self.name || config.me;
    const words = fmt(gettext("%(name)s (you)"), { name });
    own.name.textContent = words;
    own.root.setAttribute("aria-label", words);
    paintAvatar(own, name);
    own.state.hidden = true;
    own.micOff.hidden = media.audio;
    own.guest.hidden = !session.self.isGuest;
    own.camOff.hidden = isVoice || media.video;
    own.root.classList.toggle("no-video", isVoice || !media.video);
    const video = local.track("video");
    if (!isVoice && video) {
      if (!own.element.srcObject) {
        own.element.srcObject = new MediaStream([video]);
        own.element.play().catch(() => {});
      } else if (own.element.srcObject.getVideoTracks()[0] !== video) {
        own.element.srcObject = new MediaStream([video]);
      }
    }
    const audio = local.track("audio");
    if (audio && (!own.meter || own.meterTrack !== audio)) {
      own.meter?.disconnect();
      own.meter = levelMeter(new MediaStream([audio]));
      own.meterTrack = audio;
    }
    events.emit("painted", { id: null, participant: null, root: own.root, element: own.element });
  }

  session.on("media", paintOwn);
  session.on("self", paintOwn);

  // --- The people count and the grid ---------------------------------------------------------

  function countChanged() {
    const people = tiles.size + 1;
    // Only once we are in: before (or after) that the count would be a guess.
    ui.count.textContent =
      session.self.id && !session.ended
        ? fmt(gettext("%(count)s of %(capacity)s"), { count: people, capacity: session.room.capacity })
        : "";
    ui.count.setAttribute(
      "aria-label",
      fmt(ngettext("%(count)s person in the call", "%(count)s people in the call", people), { count: people }),
    );
    layout();
  }

  session.on("phase", countChanged);
  session.on("room", countChanged);

  // The grid: the tile width (from the number of columns) that gives the largest tiles for
  // this many people in this space (16:9 for video, 4:3 for voice); on small screens tiles
  // keep a usable size and the grid scrolls.
  // The grid's size and gap come from the ResizeObserver, which reports them with the page
  // laid out: reading them from the element (clientWidth, getComputedStyle) would make the
  // browser work out its styles and layout right there, in the middle of whatever changed
  // the count (the welcome, a newcomer), and again once the rest of that change is in.
  let box = { width: 0, height: 0, gap: 0 }; // the content box, as last observed
  function layout() {
    const container = ui.tiles;
    const count = container.children.length;
    container.dataset.count = String(count);
    const { width, height, gap } = box;
    if (width <= 0 || count === 0) return;
    const aspect = isVoice ? 4 / 3 : 16 / 9;
    const minWidth = Math.min(width, isVoice ? 130 : 150);
    let best = { columns: 1, size: 0 };
    for (let columns = 1; columns <= count; columns += 1) {
      const rows = Math.ceil(count / columns);
      const byWidth = (width - gap * (columns - 1)) / columns;
      const byHeight = ((height - gap * (rows - 1)) / rows) * aspect;
      const size = Math.min(byWidth, byHeight);
      if (size > best.size) best = { columns, size };
    }
    if (best.size < minWidth) {
      // Too small to fit without scrolling: as many columns of the minimum size as fit.
      const columns = Math.max(1, Math.min(count, Math.floor((width + gap) / (minWidth + gap))));
      best = { columns, size: (width - gap * (columns - 1)) / columns };
    }
    container.style.setProperty("--tile-width", `${Math.floor(best.size)}px`);
  }

  new ResizeObserver(([entry]) => {
    const gap = parseFloat(getComputedStyle(ui.tiles).columnGap) || 0;
    box = { width: entry.contentRect.width, height: entry.contentRect.height, gap };
    layout();
  }).observe(ui.tiles);

  // --- Speaking ring: the level of each audio track ---------------------------------------------

  function levels() {
    const media = session.media;
    const list = [{ id: null, root: own.root, meter: own.meter, audible: media.audio }];
    for (const [id, tile] of tiles) {
      const participant = session.participants.get(id);
      list.push({ id, root: tile.root, meter: tile.meter, audible: participant?.media.audio !== false });
    }
    return list;
  }

  setInterval(() => {
    const context = audioContext();
    if (!context || context.state !== "running") return;
    const now = performance.now();
    for (const tile of [own, ...tiles.values()]) {
      if (!tile.meter) continue;
      const participant = tile === own ? null : session.participants.get(tile.root.dataset.peer);
      const audible = tile === own ? session.media.audio : Boolean(participant?.media.audio);
      if (audible && tile.meter.level() > SPEAKING_LEVEL) tile.loudAt = now;
      tile.root.classList.toggle("speaking", now - tile.loudAt < SPEAKING_HOLD_MS);
    }
  }, 100);

  return {
    on: (type, handler) => events.on(type, handler),
    paintOwn,
    layout,
    levels,
    rootOf: (id) => (id === null ? own.root : tiles.get(id)?.root || null),
    elements: () => [...tiles.values()].map((tile) => tile.element),
  };
}
