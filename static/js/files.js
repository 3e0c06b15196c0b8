// Files, peer to peer (docs/protocol.md, "Files (peer to peer)"): send a file to everyone in
// the call (the "Send a file" control) or to one person (their tile's menu), over WebRTC data
// channels. Nothing goes through the server: it never sees a name, a size or a byte.
//
// - Every RTCPeerConnection gets a control channel as soon as it exists: both sides create
//   `confab-files` with {negotiated: true, id: 0}, so no DCEP handshake is needed and neither
//   side waits for the other. It carries small JSON messages: files-hello (each side, when
//   the channel opens; nothing else goes out before the other side's), file-offer,
//   file-accept, file-decline, file-cancel, file-done.
// - After file-accept, the sender opens a channel of its own for the bytes,
//   `file:<id>` (in-band DCEP: once SCTP runs, no renegotiation), and sends the file as
//   16 KiB ArrayBuffers, waiting whenever more than HIGH_WATER bytes are buffered
//   (bufferedAmountLowThreshold / bufferedamountlow). The receiver is done when it holds
//   exactly the announced size; it answers file-done and the sender closes the channel.
//   Only the sender closes a file channel (after file-done or file-cancel), so a file
//   channel closing any other way means the connection was lost.
// - The limit (FILE_TRANSFER_MAX_MB, in room-config) is enforced on both sides: a sender
//   does not offer a larger file; a receiver declines a larger offer by itself (and says so)
//   and stops a transfer that sends more than it announced.
//
// Negotiation (docs/protocol.md, "Negotiation", "Screen share"): the data m-section is made
// with the connection, before any track, and Chrome puts it after the transceivers' in the
// first offer; in any case screen share orders video m-lines among themselves, so an
// m=application line changes nothing there. An answerer creates its control channel just
// before it applies the first offer (which already has the data m-section), so no extra
// negotiation happens. Renegotiation, ICE restarts and resumed seats keep the SCTP
// association and its channels; a rebuilt connection gets a new control channel.
//
// experience.js calls setupFiles({config, ui, session, transport, tiles, moderation}). The
// data paths come from the transport's "datalink" events (one per new connection, before
// anything is negotiated on it: transport/index.js); a transport without them (an SFU) leaves
// file transfer off. Everything is built with textContent; no style attributes.
import { avatarHue, avatarInitial, el, fmt, gettext, icon, label, ngettext } from "./dom.js";

const CONTROL_LABEL = "confab-files";
const CONTROL_INIT = { negotiated: true, id: 0, ordered: true };
const CHUNK = 16 * 1024; // one data channel message
const BLOCK = 256 * 1024; // read from the file this much at a time
const HIGH_WATER = 1024 * 1024; // buffered bytes above which the sender waits...
const LOW_WATER = 256 * 1024; // ...for bufferedamountlow at this many
const MIB = 1024 * 1024;
const CONTROL_MAX = 4096; // a longer control message is ignored
const NAME_MAX = 255;
const PENDING_MAX = 10; // unanswered offers from one person; more are declined unseen
// An offer waits this long for the other page's hello on the control channel. A page with
// file transfer off (FILE_TRANSFER_MAX_MB=0 when it loaded) never says it.
const CONTROL_OPEN_MS = 10_000;
const ID = /^[A-Za-z0-9_-]{8,64}$/;

// Where a transfer is. Active states can still change; the others are final.
const ACTIVE = new Set(["waiting", "sending", "offered", "receiving"]);

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

// A file name from someone else: one line, no path, not too long.
function cleanName(value) {
  const name = String(typeof value === "string" ? value : "")
    .replace(/[\u0000-\u001f\u007f]/g, "")
    .replace(/[/\\]/g, "_")
    .trim()
    .slice(0, NAME_MAX);
  return name || gettext("file");
}

const locale = () => document.documentElement.lang || undefined;

function formatSize(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  const number = new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
  return `${number} ${units[unit]}`;
}

function formatPercent(fraction) {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(fraction);
}

export function setupFiles({ config, ui, session, transport, tiles, moderation }) {
  const limitMb = Math.max(0, Number(config.file_transfer_max_mb) || 0);
  const limit = limitMb * MIB;
  const enabled =
    limit > 0 && typeof RTCPeerConnection !== "undefined" && "createDataChannel" in RTCPeerConnection.prototype;
  const links = new Map(); // peer id -> {peer, data, control, outbox, ready} (data: the transport's DataLink)
  const transfers = []; // everything shown, oldest first
  const toast = (text, tone) => moderation?.toast(text, tone);

  const readyLinks = () => [...links.values()].filter((link) => link.ready && link.control.readyState === "open");

  const exposed = {
    enabled,
    limit,
    get transfers() {
      return transfers.map(snapshot);
    },
    // Peer ids whose control channel is open and whose page said hello.
    get connected() {
      return readyLinks().map((link) => link.peer.id);
    },
  };
  if (window.confab) window.confab.files = exposed;

  if (!enabled) {
    if (config.media !== "sfu") return { enabled, button: null };
    // Files go peer to peer, and a room through the media server has no peer-to-peer
    // connection to carry them: say so where the button would be.
    // aria-disabled, not disabled: a disabled button shows no tooltip and takes no click.
    const why = gettext("Files cannot be sent in rooms through the media server");
    const off = el("button", { type: "button", className: "control xf-send-button", "aria-disabled": "true" });
    off.append(icon("paperclip"));
    label(off, why);
    off.addEventListener("click", () => toast(why, "info"));
    return { enabled, button: off };
  }

  // Every connection has the control channel from its start, in its first offer (even one
  // made ahead of the welcome: transport/mesh.js, "prime").
  transport.declareChannel?.(CONTROL_LABEL, CONTROL_INIT);

  // --- The control button, the file picker, the tile menu item, the tray ------------------

  const button = el("button", { type: "button", className: "control xf-send-button", disabled: true });
  button.append(icon("paperclip"));
  label(button, gettext("Send a file to everyone"));
  const input = el("input", { type: "file", multiple: true, tabindex: "-1", "aria-hidden": "true" });
  input.className = "xf-input";
  input.hidden = true;
  let pickFor = null; // null: everyone; else a peer id
  const stage = ui.call.querySelector(".stage") || ui.call;
  const tray = el("section", { className: "xf-tray", "aria-label": gettext("File transfers") });
  const announcer = el("p", { className: "visually-hidden", role: "status", "aria-live": "polite" });
  stage.append(tray, announcer);
  ui.call.append(input);

  function choose(peerId) {
    if (session.ended) return;
    pickFor = peerId;
    input.value = ""; // the same file again still fires "change"
    input.click();
  }

  button.addEventListener("click", () => choose(null));
  input.addEventListener("change", () => {
    const files = [...(input.files || [])];
    const target = pickFor;
    input.value = "";
    for (const file of files) send(file, target);
  });

  // Always enabled, so the menu reads the same whatever the connection is doing: an offer
  // made before the other page's hello waits for it (sendControl's outbox), and send()
  // says so when there is no connection at all.
  moderation?.addTileItems((peer) => [
    { label: gettext("Send a file…"), icon: "paperclip", action: () => choose(peer.id) },
  ]);

  function paintButton() {
    button.disabled = readyLinks().length === 0 || session.ended;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  // --- Control channels ----------------------------------------------------------------------

  function connectionMade(id, data) {
    const peer = session.participants.get(id);
    if (!peer) return;
    const old = links.get(peer.id);
    if (old && old.data !== data) linkClosed(old);
    let control;
    try {
      control = data.openChannel(CONTROL_LABEL, CONTROL_INIT);
    } catch (error) {
      console.warn("files: no control channel", error);
      return;
    }
    // `ready` once the other page said hello: a negotiated channel opens on our side as
    // soon as the connection's SCTP is up, even when the other page (file transfer off)
    // never made its end, and what we send then is dropped unread.
    const link = { peer, data, control, outbox: [], ready: false };
    links.set(peer.id, link);
    control.addEventListener("open", () => transmit(control, { type: "files-hello" }));
    control.addEventListener("message", ({ data }) => onControl(link, data));
    control.addEventListener("close", () => linkClosed(link));
    data.onChannel((channel) => onFileChannel(link, channel));
  }

  transport.on("datalink", ({ id, link }) => connectionMade(id, link));

  function sendControl(link, message) {
    const { control } = link;
    if (!link.ready && (control.readyState === "connecting" || control.readyState === "open")) {
      link.outbox.push(message); // until the other page's hello
      return true;
    }
    return transmit(control, message);
  }

  function transmit(control, message) {
    if (control.readyState !== "open") return false;
    try {
      control.send(JSON.stringify(message));
      return true;
    } catch (error) {
      console.warn("files: control message not sent", error);
      return false;
    }
  }

  function linkClosed(link) {
    if (links.get(link.peer.id) === link) links.delete(link.peer.id);
    for (const t of transfers) if (t.link === link && ACTIVE.has(t.state)) finish(t, "lost");
    paintButton();
  }

  function find(link, id, direction) {
    return transfers.find(
      (t) => t.peerId === link.peer.id && t.id === id && (!direction || t.direction === direction),
    );
  }

  function onControl(link, data) {
    if (typeof data !== "string" || data.length > CONTROL_MAX) return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message?.type === "files-hello") {
      if (link.ready) return;
      link.ready = true;
      for (const queued of link.outbox.splice(0)) transmit(link.control, queued);
      paintButton();
      return;
    }
    if (!message || typeof message !== "object" || typeof message.id !== "string" || !ID.test(message.id)) return;
    const { id } = message;
    switch (message.type) {
      case "file-offer":
        offered(link, message);
        break;
      case "file-accept": {
        const t = find(link, id, "out");
        if (t?.state === "waiting") startSending(t);
        break;
      }
      case "file-decline": {
        const t = find(link, id, "out");
        if (t?.state === "waiting") finish(t, message.reason === "too-large" ? "too-large" : "declined");
        break;
      }
      case "file-cancel": {
        const t = [find(link, id, "in"), find(link, id, "out")].find((x) => x && ACTIVE.has(x.state));
        if (!t) break;
        if (t.direction === "out") closeChannel(t);
        finish(t, "cancelled", "them");
        break;
      }
      case "file-done": {
        const t = find(link, id, "out");
        if (t?.state !== "sending") break;
        t.offset = t.size;
        finish(t, "sent");
        break;
      }
      default:
        break;
    }
  }

  // --- Sending -------------------------------------------------------------------------------

  function send(file, peerId) {
    if (session.ended) return;
    const name = cleanName(file.name);
    if (file.size > limit) {
      toast(
        fmt(gettext("“%(name)s” is %(size)s: files larger than %(limit)s cannot be sent here. Nothing was sent."), {
          name,
          size: formatSize(file.size),
          limit: formatSize(limit),
        }),
        "error",
      );
      return;
    }
    const people = peerId ? [session.participants.get(peerId)].filter(Boolean) : [...session.participants.values()];
    const reachable = people.filter((peer) => links.has(peer.id));
    if (!reachable.length) {
      toast(
        peerId
          ? gettext("That person is not connected right now. Try again in a moment.")
          : gettext("Nobody else is in the call yet."),
        "error",
      );
      return;
    }
    const group = makeGroup("out", name, file.size, reachable.length === 1 ? reachable[0] : null, reachable.length);
    for (const peer of reachable) {
      const link = links.get(peer.id);
      const t = makeTransfer(group, "out", link, { id: randomId(), name, size: file.size, mime: file.type || "" });
      t.file = file;
      t.state = "waiting";
      if (!sendControl(link, { type: "file-offer", id: t.id, name, size: file.size, mime: t.mime })) finish(t, "lost");
      else if (!link.ready) {
        setTimeout(() => {
          if (t.state !== "waiting" || link.ready) return;
          // Not sent later either: nobody would be waiting for the answer.
          link.outbox = link.outbox.filter((queued) => queued.id !== t.id);
          finish(t, "unreachable");
        }, CONTROL_OPEN_MS);
      }
      paint(t);
    }
  }

  function startSending(t) {
    let channel;
    try {
      channel = t.link.data.openChannel(`file:${t.id}`, { ordered: true });
    } catch (error) {
      console.warn("files: no file channel", error);
      sendControl(t.link, { type: "file-cancel", id: t.id });
      finish(t, "failed");
      return;
    }
    t.channel = channel;
    t.state = "sending";
    t.offset = 0;
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = LOW_WATER;
    channel.addEventListener("open", () => pump(t, channel));
    channel.addEventListener("bufferedamountlow", () => schedulePaint(t));
    channel.addEventListener("close", () => {
      if (t.channel === channel && t.state === "sending") finish(t, "lost");
    });
    paint(t);
  }

  function lowWater(channel) {
    return new Promise((resolve) => {
      const done = () => {
        channel.removeEventListener("bufferedamountlow", done);
        channel.removeEventListener("close", done);
        resolve();
      };
      channel.addEventListener("bufferedamountlow", done);
      channel.addEventListener("close", done);
    });
  }

  async function pump(t, channel) {
    const sending = () => t.state === "sending" && t.channel === channel && channel.readyState === "open";
    try {
      while (sending() && t.offset < t.size) {
        const start = t.offset;
        const block = new Uint8Array(await t.file.slice(start, Math.min(start + BLOCK, t.size)).arrayBuffer());
        for (let at = 0; at < block.length; at += CHUNK) {
          while (sending() && channel.bufferedAmount > HIGH_WATER) await lowWater(channel);
          if (!sending()) return;
          channel.send(block.subarray(at, Math.min(at + CHUNK, block.length)));
          t.offset = start + Math.min(at + CHUNK, block.length);
          schedulePaint(t);
        }
      }
      // All queued: the receiver says file-done once it has every byte.
    } catch (error) {
      if (t.state !== "sending") return;
      console.warn(`files: sending ${t.id} failed`, error);
      sendControl(t.link, { type: "file-cancel", id: t.id });
      closeChannel(t);
      finish(t, "failed");
    }
  }

  // Only the sender closes a file channel. A cancel also goes down the channel itself, so
  // the receiver reads it before it sees the channel close (one ordered stream).
  function closeChannel(t) {
    const channel = t.channel;
    if (!channel || t.direction !== "out") return;
    try {
      if (channel.readyState === "open" && t.state === "sending") channel.send(JSON.stringify({ type: "file-cancel" }));
      channel.close();
    } catch {
      // already closing
    }
  }

  function cancel(t) {
    if (!ACTIVE.has(t.state)) return;
    sendControl(t.link, { type: "file-cancel", id: t.id });
    closeChannel(t);
    finish(t, "cancelled", "me");
  }

  // A receiver that stopped leaves the channel to the sender, who closes it on file-cancel;
  // one that does not within a few seconds (a broken or hostile page) has it closed anyway.
  const ABANDON_MS = 5000;

  function abandon(t) {
    const channel = t.channel;
    if (!channel || t.direction !== "in") return;
    setTimeout(() => {
      if (channel.readyState !== "closed") channel.close();
    }, ABANDON_MS);
  }

  // --- Receiving -----------------------------------------------------------------------------

  function offered(link, message) {
    const { id } = message;
    const size = message.size;
    if (!Number.isSafeInteger(size) || size < 0 || find(link, id, "in")) return;
    const waiting = transfers.filter((t) => t.peerId === link.peer.id && t.state === "offered").length;
    if (waiting >= PENDING_MAX) {
      sendControl(link, { type: "file-decline", id, reason: "busy" });
      return;
    }
    const name = cleanName(message.name);
    const mime = typeof message.mime === "string" ? message.mime.slice(0, 255) : "";
    const group = makeGroup("in", name, size, link.peer, 1);
    const t = makeTransfer(group, "in", link, { id, name, size, mime });
    if (size > limit) {
      // Declined by itself, and said so: the sender's limit is not ours.
      sendControl(link, { type: "file-decline", id, reason: "too-large" });
      t.state = "refused";
      paint(t);
      announce(statusWords(t));
      return;
    }
    t.state = "offered";
    paint(t);
    announce(
      fmt(gettext("%(name)s wants to send you %(file)s (%(size)s)."), {
        name: link.peer.name,
        file: name,
        size: formatSize(size),
      }),
    );
  }

  function accept(t) {
    if (t.state !== "offered") return;
    t.state = "receiving";
    t.bytes = 0;
    t.chunks = [];
    if (!sendControl(t.link, { type: "file-accept", id: t.id })) {
      finish(t, "lost");
      return;
    }
    paint(t); // the focus moves from Accept to Cancel
  }

  function decline(t) {
    if (t.state !== "offered") return;
    sendControl(t.link, { type: "file-decline", id: t.id });
    t.state = "declined";
    dismiss(t.group);
  }

  function onFileChannel(link, channel) {
    const match = /^file:(.+)$/.exec(channel.label);
    if (!match) return;
    const t = find(link, match[1], "in");
    if (!t || t.state !== "receiving" || t.channel) {
      channel.close();
      return;
    }
    t.channel = channel;
    channel.binaryType = "arraybuffer";
    channel.addEventListener("message", ({ data }) => receive(t, data));
    channel.addEventListener("close", () => {
      if (t.state === "receiving") finish(t, "lost");
    });
    if (t.size === 0) {
      if (channel.readyState === "open") complete(t);
      else channel.addEventListener("open", () => complete(t), { once: true });
    }
  }

  function receive(t, data) {
    if (t.state !== "receiving") return;
    if (typeof data === "string") {
      // The sender's cancel, ahead of the channel's close (see closeChannel).
      let message = null;
      try {
        message = JSON.parse(data);
      } catch {
        // not ours
      }
      if (message?.type === "file-cancel") finish(t, "cancelled", "them");
      return;
    }
    if (!(data instanceof ArrayBuffer)) return;
    if (t.bytes + data.byteLength > t.size) {
      // More than announced: stop, keep nothing.
      sendControl(t.link, { type: "file-cancel", id: t.id, reason: "oversize" });
      finish(t, "oversize");
      return;
    }
    t.chunks.push(data);
    t.bytes += data.byteLength;
    if (t.bytes === t.size) complete(t);
    else schedulePaint(t);
  }

  function complete(t) {
    if (t.state !== "receiving") return;
    // Saved as bytes, whatever type was announced: the object URL is of this page's origin,
    // and must never be something a browser would render (text/html, image/svg+xml...).
    t.blob = new Blob(t.chunks, { type: "application/octet-stream" });
    t.chunks = null;
    t.url = URL.createObjectURL(t.blob);
    sendControl(t.link, { type: "file-done", id: t.id });
    finish(t, "done");
    announce(statusWords(t));
  }

  // --- Transfers and their cards ---------------------------------------------------------------

  function makeTransfer(group, direction, link, { id, name, size, mime }) {
    const t = {
      id,
      direction,
      link,
      peer: link.peer,
      peerId: link.peer.id,
      name,
      size,
      mime,
      state: "new",
      by: null, // "me" or "them" for cancellations
      bytes: 0, // received
      offset: 0, // queued for sending
      channel: null,
      chunks: null,
      blob: null,
      url: null,
      file: null,
      group,
      row: null,
      frame: 0,
    };
    t.row = makeRow(t);
    group.transfers.push(t);
    group.rows.append(t.row.root);
    transfers.push(t);
    return t;
  }

  function makeGroup(direction, name, size, peer, count) {
    const dismissButton = el("button", { type: "button", className: "xf-dismiss" }, icon("close"));
    label(dismissButton, gettext("Dismiss"));
    const meta = el("p", { className: "xf-meta" });
    let who;
    if (direction === "in") who = fmt(gettext("from %(name)s"), { name: peer.name });
    else if (peer) who = fmt(gettext("to %(name)s"), { name: peer.name });
    else who = fmt(ngettext("to %(count)s person", "to %(count)s people", count), { count });
    meta.textContent = `${formatSize(size)} · ${who}`;
    const rows = el("ul", { className: "xf-rows" });
    const card = el(
      "article",
      { className: `xf-card ${direction}`, "aria-label": name },
      el(
        "div",
        { className: "xf-head" },
        el("span", { className: "xf-icon" }, icon(direction === "in" ? "fileIn" : "fileOut")),
        el("div", { className: "xf-what" }, el("p", { className: "xf-name", title: name, text: name }), meta),
        dismissButton,
      ),
      rows,
    );
    const group = { card, rows, dismissButton, transfers: [] };
    dismissButton.addEventListener("click", () => dismiss(group));
    tray.prepend(card);
    return group;
  }

  function makeRow(t) {
    const chip = el("span", { className: "xf-chip", "aria-hidden": "true", text: avatarInitial(t.peer.name) });
    chip.style.setProperty("--avatar-hue", avatarHue(t.peer.name)); // as on their tile
    const status = el("span", { className: "xf-status" });
    const percent = el("span", { className: "xf-percent" });
    const progress = el("progress", { className: "xf-progress", max: "100", value: "0" });
    const actions = el("div", { className: "xf-actions" });
    const root = el(
      "li",
      { className: "xf-row", "data-peer": t.peerId },
      el("div", { className: "xf-line" }, chip, status, percent),
      progress,
      actions,
    );
    return { root, status, percent, progress, actions, painted: "" };
  }

  function fraction(t) {
    if (t.state === "done" || t.state === "sent") return 1;
    if (!t.size) return 0;
    if (t.direction === "in") return t.bytes / t.size;
    const buffered = t.channel && t.channel.readyState === "open" ? t.channel.bufferedAmount : 0;
    return Math.max(0, t.offset - buffered) / t.size;
  }

  function statusWords(t) {
    const name = t.peer.name;
    switch (t.state) {
      case "waiting":
        return fmt(gettext("Waiting for %(name)s…"), { name });
      case "sending":
        return fmt(gettext("Sending to %(name)s…"), { name });
      case "sent":
        return fmt(gettext("Sent to %(name)s"), { name });
      case "declined":
        return t.direction === "out" ? fmt(gettext("%(name)s declined"), { name }) : gettext("Declined");
      case "too-large":
        return fmt(gettext("Too large for %(name)s: declined"), { name });
      case "offered":
        return fmt(gettext("%(name)s wants to send you this file."), { name });
      case "receiving":
        return fmt(gettext("Receiving from %(name)s…"), { name });
      case "done":
        return fmt(gettext("Received from %(name)s"), { name });
      case "refused":
        return fmt(gettext("Larger than the %(limit)s limit here: declined automatically."), {
          limit: formatSize(limit),
        });
      case "oversize":
        return fmt(gettext("%(name)s sent more than announced: stopped."), { name });
      case "cancelled":
        return t.by === "them" ? fmt(gettext("%(name)s cancelled"), { name }) : gettext("Cancelled");
      case "lost":
        return gettext("Connection lost");
      case "unreachable":
        return fmt(gettext("%(name)s cannot receive files here"), { name });
      case "failed":
        return gettext("The file could not be read");
      default:
        return "";
    }
  }

  function actionButton(text, className, action) {
    const b = el("button", { type: "button", className: `xf-button ${className}`, text });
    b.addEventListener("click", action);
    return b;
  }

  function actionsFor(t) {
    const name = t.name;
    switch (t.state) {
      case "offered": {
        const no = actionButton(gettext("Decline"), "", () => decline(t));
        const yes = actionButton(gettext("Accept"), "primary", () => accept(t));
        no.setAttribute("aria-label", fmt(gettext("Decline %(file)s"), { file: name }));
        yes.setAttribute("aria-label", fmt(gettext("Accept %(file)s"), { file: name }));
        return [no, yes];
      }
      case "waiting":
      case "sending":
      case "receiving": {
        const stop = actionButton(gettext("Cancel"), "", () => cancel(t));
        const words =
          t.direction === "out"
            ? fmt(gettext("Cancel sending %(file)s to %(name)s"), { file: name, name: t.peer.name })
            : fmt(gettext("Cancel receiving %(file)s"), { file: name });
        stop.setAttribute("aria-label", words);
        stop.title = words;
        return [stop];
      }
      case "done": {
        const save = el(
          "a",
          { className: "xf-button primary", href: t.url, download: t.name },
          icon("download"),
          el("span", { text: gettext("Save") }),
        );
        save.setAttribute("aria-label", fmt(gettext("Save %(file)s"), { file: name }));
        return [save];
      }
      default:
        return [];
    }
  }

  function paint(t) {
    cancelAnimationFrame(t.frame);
    t.frame = 0;
    const row = t.row;
    row.root.dataset.state = t.state;
    row.status.textContent = statusWords(t);
    const moving = t.state === "sending" || t.state === "receiving";
    const shown = moving || t.state === "done" || t.state === "sent";
    const part = fraction(t);
    const value = Math.min(100, Math.floor(part * 100));
    row.progress.hidden = !shown;
    row.progress.value = value;
    const words = fmt(gettext("%(file)s: %(percent)s"), { file: t.name, percent: formatPercent(value / 100) });
    row.progress.setAttribute("aria-label", words);
    row.percent.textContent = moving ? formatPercent(value / 100) : "";
    // Buttons are rebuilt only when the state changes (not on every progress step).
    if (row.painted !== t.state) {
      row.painted = t.state;
      const hadFocus = row.actions.contains(document.activeElement);
      row.actions.replaceChildren(...actionsFor(t));
      if (hadFocus) (row.actions.querySelector("a, button") || t.group.dismissButton).focus();
    }
    const busy = t.group.transfers.some((x) => ACTIVE.has(x.state));
    t.group.dismissButton.hidden = busy;
    t.group.card.classList.toggle("finished", !busy);
  }

  function schedulePaint(t) {
    if (!t.frame) t.frame = requestAnimationFrame(() => paint(t));
    if (t.state === "sending") tick();
  }

  // A sender's progress is what has left its buffer (offset - bufferedAmount), which drains
  // without events once everything is queued: repainted a few times a second while sending.
  let ticker = 0;

  function tick() {
    if (ticker) return;
    ticker = setInterval(() => {
      const sending = transfers.filter((t) => t.state === "sending");
      for (const t of sending) schedulePaint(t);
      if (!sending.length) {
        clearInterval(ticker);
        ticker = 0;
      }
    }, 250);
  }

  // A final state. An outgoing transfer's channel closes with it (the sender owns it); an
  // incoming one's is left to the sender, so that its close never looks like a lost link.
  function finish(t, state, by = null) {
    if (!ACTIVE.has(t.state) && t.state !== "new") return;
    t.state = state;
    t.by = by;
    t.chunks = null;
    t.file = null;
    if (t.direction === "out" && t.channel && t.channel.readyState !== "closed") {
      try {
        t.channel.close();
      } catch {
        // already closing
      }
    }
    if (t.direction === "in" && state !== "done") abandon(t);
    paint(t);
    paintButton();
  }

  function dismiss(group) {
    for (const t of group.transfers) {
      if (ACTIVE.has(t.state)) cancel(t);
      if (t.url) URL.revokeObjectURL(t.url);
      t.url = null;
      t.blob = null;
      const at = transfers.indexOf(t);
      if (at >= 0) transfers.splice(at, 1);
    }
    const next = group.card.nextElementSibling || group.card.previousElementSibling;
    const hadFocus = group.card.contains(document.activeElement);
    group.card.remove();
    if (hadFocus) (next?.querySelector("button:not([hidden]), a") || button).focus();
  }

  function snapshot(t) {
    return {
      id: t.id,
      direction: t.direction,
      peer: t.peerId,
      peerName: t.peer.name,
      name: t.name,
      size: t.size,
      mime: t.mime,
      state: t.state,
      by: t.by,
      bytes: t.direction === "in" ? t.bytes : t.offset,
      progress: fraction(t),
      blob: t.blob,
    };
  }

  // --- Hooks -----------------------------------------------------------------------------------

  tiles.on("painted", () => paintButton());

  // Someone left (or our seat was lost): their transfers end; files received stay to be saved.
  session.on("participant-removed", (peer) => {
    const link = links.get(peer.id);
    if (link) linkClosed(link);
    for (const t of transfers) if (t.peerId === peer.id && ACTIVE.has(t.state)) finish(t, "lost");
    paintButton();
  });

  // Leaving the page: give the memory of received files back.
  window.addEventListener("pagehide", () => {
    for (const t of transfers) if (t.url) URL.revokeObjectURL(t.url);
  });

  return { enabled, button };
}
