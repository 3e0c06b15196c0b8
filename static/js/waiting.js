// @ts-check
// The waiting room on the call page (docs/protocol.md, "The waiting room"):
// - for someone the room asks to wait: a card over the stage that says so, and whether a
//   moderator is in the call to let them in, with a Leave button;
// - for moderators: the queue above the tiles (Admit, Decline, Admit all), a chime when
//   someone starts waiting, and the room menu's choice of who waits.
// The session keeps the state (session.phase "waiting", session.waitingQueue, session.room);
// this module paints it and sends the moderators' choices through moderation.act.
//
//   setupWaiting({ui, session, moderation});
import { el, fmt, gettext, icon, ngettext } from "./dom.js";
import { chime } from "./media/chime.js";

const MODES = {
  off: () => gettext("Let everyone in directly"),
  guests: () => gettext("Ask guests to wait"),
  everyone: () => gettext("Ask everyone to wait"),
};

/**
 * @param {object} options
 * @param {Record<string, HTMLElement>} options.ui
 * @param {import("./session.js").CallSession} options.session
 * @param {{act(message: Record<string, unknown>): boolean, knows(type: string): boolean, toast(text: string, tone?: string): void, addRoomItems(provide: () => object[]): void}} options.moderation
 */
export function setupWaiting({ ui, session, moderation }) {
  // --- Waiting to be let in ----------------------------------------------------------------

  const cardText = el("p", { className: "waiting-text", id: "waiting-text" });
  const leave = el("button", { type: "button", className: "button", text: gettext("Leave") });
  const card = el(
    "section",
    { className: "waiting-card", id: "waiting-card", role: "status", "aria-labelledby": "waiting-title", hidden: true },
    el("span", { className: "waiting-spinner", "aria-hidden": "true" }),
    el("h2", { id: "waiting-title", text: gettext("Waiting to be let in") }),
    cardText,
    leave,
  );
  ui.tiles.before(card);
  leave.addEventListener("click", () => ui.leave.click());

  session.on("phase", ({ phase }) => {
    card.hidden = phase !== "waiting";
  });
  session.on("waiting", ({ moderatorsPresent }) => {
    cardText.textContent = moderatorsPresent
      ? gettext("A moderator of this room lets people in. You will join the call as soon as they do.")
      : gettext("No moderator is in the call right now. You can keep waiting: you will join when one comes and lets you in.");
    card.dataset.moderators = moderatorsPresent ? "present" : "absent";
  });

  // --- The queue, for moderators -------------------------------------------------------------

  const title = el("span");
  const admitAll = el("button", { type: "button", className: "waiting-admit-all", text: gettext("Admit all") });
  const list = el("ol", { className: "waiting-list" });
  const panel = el(
    "section",
    { className: "waiting-queue", id: "waiting-queue", "aria-labelledby": "waiting-queue-title", hidden: true },
    el("header", { className: "waiting-queue-head" }, el("h2", { id: "waiting-queue-title", className: "waiting-queue-title" }, icon("guest"), title), admitAll),
    list,
  );
  ui.tiles.before(panel);
  admitAll.addEventListener("click", () => moderation.act({ type: "admit-all" }));

  /** @type {Set<string>} */
  let seen = new Set();
  const mine = () => session.self.isModerator && session.phase === "joined";

  function paintQueue() {
    const queue = session.waitingQueue;
    panel.hidden = !mine() || queue.length === 0;
    title.textContent = fmt(ngettext("%(count)s person waiting to join", "%(count)s people waiting to join", queue.length), { count: queue.length });
    admitAll.hidden = queue.length < 2;
    list.replaceChildren(
      ...queue.map((entry) => {
        const admit = el("button", { type: "button", className: "button primary small", text: gettext("Admit") });
        const decline = el("button", { type: "button", className: "button small", text: gettext("Decline") });
        admit.setAttribute("aria-label", fmt(gettext("Admit %(name)s"), { name: entry.name }));
        decline.setAttribute("aria-label", fmt(gettext("Decline %(name)s"), { name: entry.name }));
        admit.addEventListener("click", () => moderation.act({ type: "admit", waiting_id: entry.waiting_id }));
        decline.addEventListener("click", () => moderation.act({ type: "decline", waiting_id: entry.waiting_id }));
        return el(
          "li",
          { className: "waiting-item", "data-waiting": entry.waiting_id },
          el("span", { className: "waiting-name", text: entry.name }),
          entry.is_guest ? el("span", { className: "waiting-guest", text: gettext("guest") }) : null,
          el("span", { className: "waiting-actions" }, admit, decline),
        );
      }),
    );
  }

  session.on("waiting-queue", ({ queue }) => {
    paintQueue();
    // A chime when someone new starts waiting, so a moderator looking elsewhere hears it.
    const now = new Set(queue.map((/** @type {{waiting_id: string}} */ entry) => entry.waiting_id));
    if (mine() && [...now].some((id) => !seen.has(id))) chime([523, 659, 784], "waiting");
    seen = now;
  });
  session.on("phase", paintQueue);
  session.on("self", paintQueue);

  // --- Who waits: the room menu, and a word to the moderators when it changes ----------------

  const CHANGED = {
    off: () => gettext("Nobody waits to be let in now."),
    guests: () => gettext("Guests now wait to be let in."),
    everyone: () => gettext("Everyone but moderators now waits to be let in."),
  };
  let mode = session.room.waitingRoom;
  session.on("room", ({ waitingRoom }) => {
    if (waitingRoom === mode) return;
    const known = session.phase === "joined";
    mode = waitingRoom;
    if (known && session.self.isModerator) moderation.toast(CHANGED[waitingRoom]?.() || "");
  });

  moderation.addRoomItems(() =>
    moderation.knows("waiting-room")
      ? Object.entries(MODES)
          .filter(([mode]) => mode !== session.room.waitingRoom)
          .map(([mode, words]) => ({
            label: words(),
            icon: "guest",
            hint: fmt(gettext("now: %(mode)s"), { mode: MODES[session.room.waitingRoom]?.() || "" }),
            action: () => moderation.act({ type: "waiting-room", mode }),
          }))
      : [],
  );
}
