// @ts-check
// The people panel: everyone in the call with what matters about them (moderator, a raised
// hand and its place in the queue, microphone or camera off), each one's menu (the same as
// on their tile: moderation.js), and a notice when someone joins or leaves, with a chime if
// the person asked for one (remembered with the device choices). It reads the session and
// changes nothing of it.
//
//   setupPeople({ui, session, moderation, devices, isVoice});
import { avatarHue, avatarInitial, el, fmt, gettext, icon, label, ngettext, popover } from "./dom.js";
import { chime as playNotes } from "./media/chime.js";

/**
 * @param {object} options
 * @param {Record<string, HTMLElement>} options.ui
 * @param {import("./session.js").CallSession} options.session
 * @param {{toast(text: string, tone?: string): void, attachMenu(button: HTMLElement, id: string): HTMLElement, hasMenu(): boolean}} options.moderation
 * @param {{prefs: Record<string, any>, save(patch: Record<string, any>): void}} options.devices
 * @param {boolean} options.isVoice
 */
export function setupPeople({ ui, session, moderation, devices, isVoice }) {
  const button = el("button", { type: "button", className: "control people-button", id: "toggle-people" }, icon("people"));
  label(button, gettext("People in the call"));
  const heading = el("h2", { className: "xp-popover-title people-title" });
  const list = el("ul", { className: "people-list" });
  const chime = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", id: "people-chime" }));
  chime.checked = Boolean(devices.prefs.joinChime);
  const panel = popover(button, { className: "people-panel", title: gettext("People in the call"), onOpen: () => paint() });
  panel.append(
    heading,
    list,
    el("label", { className: "xp-check", for: chime.id }, chime, el("span", { text: gettext("Play a sound when someone joins or leaves") })),
  );
  ui.chatToggle.before(button);
  ui.chatToggle.parentElement?.append(panel);
  chime.addEventListener("change", () => devices.save({ joinChime: chime.checked }));

  /** @type {Map<string, {row: HTMLElement, name: HTMLElement, avatar: HTMLElement, tags: HTMLElement}>} */
  const rows = new Map();

  /** @param {string} key */
  function rowFor(key) {
    let row = rows.get(key);
    if (row) return row;
    const avatar = el("span", { className: "avatar people-avatar", "aria-hidden": "true" }, el("span", { className: "avatar-initial" }));
    const name = el("span", { className: "people-name" });
    const tags = el("span", { className: "people-tags" });
    const item = el("li", { className: "people-row", "data-peer": key }, avatar, name, tags);
    if (key !== "self") {
      const more = el("button", { type: "button", className: "people-more" }, icon("more"));
      item.append(more, moderation.attachMenu(more, key));
    }
    row = { row: item, name, avatar, tags };
    rows.set(key, row);
    return row;
  }

  /** @param {string} iconName @param {string} words @param {string} [text] @param {string} [kind] */
  function tag(iconName, words, text = "", kind = "") {
    const item = el("span", { className: `people-tag ${kind}`.trim(), role: "img", "aria-label": words, title: words }, icon(iconName));
    if (text) item.append(el("span", { text }));
    return item;
  }

  function paint() {
    const queue = session.handQueue();
    const everyone = [
      { key: "self", id: session.self.id, name: session.self.name, media: session.media, isModerator: session.self.isModerator, isGuest: session.self.isGuest, self: true },
      ...[...session.participants.values()].map((p) => ({ key: p.id, id: p.id, name: p.name, media: p.media, isModerator: p.isModerator, isGuest: p.isGuest, self: false })),
    ];
    heading.textContent = fmt(ngettext("%(count)s person in the call", "%(count)s people in the call", everyone.length), { count: everyone.length });
    const seen = new Set();
    const ordered = everyone.map((person) => {
      seen.add(person.key);
      const row = rowFor(person.key);
      row.name.textContent = person.self ? fmt(gettext("%(name)s (you)"), { name: person.name }) : person.name;
      /** @type {HTMLElement} */ (row.avatar.firstElementChild).textContent = avatarInitial(person.name);
      row.avatar.style.setProperty("--avatar-hue", avatarHue(person.name));
      const place = queue.findIndex((hand) => hand.id === person.id) + 1;
      row.tags.replaceChildren(
        ...[
          place ? tag("hand", fmt(gettext("Hand raised (%(position)s in the queue)"), { position: place }), String(place), "hand") : null,
          person.isModerator ? tag("shield", gettext("Moderator"), "", "moderator") : null,
          person.isGuest ? tag("guest", gettext("Guest: joined by an invite link, without an account"), gettext("guest"), "guest") : null,
          person.media.audio ? null : tag("micOff", gettext("Microphone off"), "", "off"),
          isVoice || person.media.video ? null : tag("camOff", gettext("Camera off"), "", "off"),
        ].filter((item) => item !== null),
      );
      const more = row.row.querySelector(".people-more");
      if (more) /** @type {HTMLElement} */ (more).hidden = !moderation.hasMenu();
      return row.row;
    });
    for (const key of [...rows.keys()]) if (!seen.has(key)) rows.delete(key);
    list.replaceChildren(...ordered);
  }

  const repaint = () => {
    if (panel.matches(":popover-open")) paint();
  };
  for (const name of ["participant-added", "participant-updated", "participant-removed", "self", "media", "hands"]) session.on(name, repaint);

  // --- Who came, who went ---------------------------------------------------------------

  /** @type {Map<string, string>} */
  const names = new Map(); // still known once they are gone
  session.on("participant-added", (/** @type {any} */ p) => names.set(p.id, p.name));
  session.on("participant-updated", (/** @type {any} */ p) => names.set(p.id, p.name));

  session.signaling.on("peer-joined", ({ peer }) => {
    if (!session.isSomeoneElse(peer?.peer_id) || session.phase !== "joined") return;
    moderation.toast(fmt(gettext("%(name)s joined."), { name: peer.name || gettext("Someone") }));
    if (chime.checked) play(true);
  });
  session.signaling.on("peer-left", ({ peer_id: id, reason }) => {
    const name = names.get(id);
    names.delete(id);
    // Removals by a moderator have their own words (moderation.js).
    if (!name || reason === "kicked" || reason === "banned") return;
    moderation.toast(fmt(gettext("%(name)s left."), { name }));
    if (chime.checked) play(false);
  });

  // Two short notes: up when someone comes, down when someone goes.
  /** @param {boolean} joined */
  const play = (joined) => playNotes(joined ? [660, 880] : [660, 440], "people");

  return { button, panel, paint };
}
