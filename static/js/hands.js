// @ts-check
// Raised hands on the call page (docs/protocol.md, `hand`): the Raise hand button, a badge
// with the queue position on each tile whose person has a hand up, and the list of raised
// hands above the tiles, in the server's order, where a moderator lowers anyone's hand and
// everyone lowers their own. The session keeps the state (session.handQueue()); this
// module only paints it and asks the session (or moderation, for others' hands) for changes.
//
//   setupHands({ui, session, tiles, moderation});
import { el, fmt, gettext, icon, label } from "./dom.js";

/**
 * @param {object} options
 * @param {Record<string, HTMLElement>} options.ui
 * @param {import("./session.js").CallSession} options.session
 * @param {{rootOf(id: string | null): HTMLElement | null, on(name: string, listener: (event: any) => void): void}} options.tiles
 * @param {{toast(text: string, tone?: string): void, act(message: Record<string, unknown>): boolean, knows(type: string): boolean}} options.moderation
 */
export function setupHands({ ui, session, tiles, moderation }) {
  const button = el("button", { type: "button", className: "control hand-button", id: "toggle-hand", "aria-pressed": "false" }, icon("hand"));
  ui.chatToggle.before(button);

  const list = el("ol", { className: "hand-list" });
  const panel = el(
    "section",
    { className: "hand-queue", id: "hand-queue", "aria-label": gettext("Raised hands"), hidden: true },
    el("h2", { className: "hand-queue-title" }, icon("hand"), el("span", { text: gettext("Raised hands") })),
    list,
  );
  ui.tiles.before(panel);

  /** @type {{id: string, name: string, raisedAt: string, self: boolean}[]} */
  let queue = [];

  function paintButton() {
    const raised = Boolean(session.self.hand);
    button.classList.toggle("active", raised);
    button.setAttribute("aria-pressed", String(raised));
    label(button, raised ? gettext("Lower your hand") : gettext("Raise your hand"));
    button.disabled = session.phase !== "joined";
  }

  /** @param {string | null} id  null: our own tile */
  function paintBadge(id) {
    const root = tiles.rootOf(id);
    if (!root) return;
    const position = queue.findIndex((hand) => (id === null ? hand.self : hand.id === id)) + 1;
    let badge = /** @type {HTMLElement | null} */ (root.querySelector(".tile-hand"));
    if (!position) {
      badge?.remove();
      root.classList.remove("hand-raised");
      return;
    }
    if (!badge) {
      badge = el("span", { className: "tile-hand" }, icon("hand"), el("span", { className: "tile-hand-position" }));
      root.append(badge);
    }
    /** @type {HTMLElement} */ (badge.querySelector(".tile-hand-position")).textContent = String(position);
    const words = fmt(gettext("Hand raised (%(position)s in the queue)"), { position });
    badge.title = words;
    badge.setAttribute("role", "img");
    badge.setAttribute("aria-label", words);
    root.classList.add("hand-raised");
  }

  function paintList() {
    const mayLowerOthers = session.self.isModerator && moderation.knows("lower-hand");
    list.replaceChildren(
      ...queue.map((hand) => {
        const item = el("li", { className: "hand-item", "data-peer": hand.id }, el("span", { className: "hand-name", text: hand.self ? fmt(gettext("%(name)s (you)"), { name: hand.name }) : hand.name }));
        if (hand.self || mayLowerOthers) {
          const lower = el("button", { type: "button", className: "hand-lower", text: gettext("Lower") });
          lower.setAttribute("aria-label", hand.self ? gettext("Lower your hand") : fmt(gettext("Lower the hand of %(name)s"), { name: hand.name }));
          lower.addEventListener("click", () => {
            if (hand.self) session.setHand(false);
            else moderation.act({ type: "lower-hand", peer_id: hand.id });
          });
          item.append(lower);
        }
        return item;
      }),
    );
    panel.hidden = queue.length === 0;
  }

  function paintAll() {
    paintButton();
    paintList();
    paintBadge(null);
    for (const id of session.participants.keys()) paintBadge(id);
  }

  button.addEventListener("click", () => {
    if (!session.setHand(!session.self.hand)) moderation.toast(gettext("You are not connected right now. Try again in a moment."), "error");
  });

  session.on("hands", ({ queue: now, changed }) => {
    const before = new Set(queue.map((hand) => hand.id));
    queue = now;
    paintAll();
    if (!changed) return;
    if (changed.id === session.self.id && changed.byModerator && !changed.raisedAt) {
      moderation.toast(gettext("A moderator lowered your hand."));
    } else if (changed.raisedAt && !before.has(changed.id) && changed.id !== session.self.id && session.self.isModerator) {
      const name = session.participants.get(changed.id)?.name;
      if (name) moderation.toast(fmt(gettext("%(name)s raised a hand."), { name }));
    }
  });
  // A tile that was (re)built gets its badge again; moderators gain or lose the Lower buttons.
  tiles.on("painted", ({ id }) => paintBadge(id));
  session.on("self", paintAll);
  session.on("phase", paintButton);
  paintButton();
}
