// Moderation on the call page (docs/moderation.md): a menu on each remote tile (mute, stop
// video, make moderator, remove, ban), room controls (lock, end the meeting), a Hide button
// on chat messages, and toasts that say what happened. Only moderators see the controls;
// the server checks every action and answers a refusal with `error`, said here in a toast.
//
// call.js creates it once, hands it the tiles, and chat.js tells it about chat messages:
//
//   const moderation = setupModeration({signaling, session, root, isVoice, canPromote});
//   moderation.attachTiles(tiles);            // a menu on every remote tile (tiles.js)
//   moderation.decorateMessage(item, message); // a chat message element was made
//   moderation.toast(text);                   // a short note over the stage
//   moderation.addTileItems((peer) => [{label, icon, action}]); // items for everyone
//   moderation.attachMenu(button, peerId)     // the tile's menu on another button; returns it
//   moderation.hasMenu()                      // whether such a menu has anything for us
//   moderation.knows(type)                    // the server takes this moderation message
//   moderation.act(message)                   // send one (false, and a toast, if offline)
//
// Tile menus are moderators' only, unless another module adds items for everyone with
// addTileItems (files.js: "Send a file…"): then every remote tile has the menu button, a
// non-moderator's menu holds only those items, and a moderator's holds them first.
//
// The actions offered are those the server says it knows (welcome.moderation), never a
// list of the page's own. Who is who it reads from the session (session.participants); everything else it learns
// from signaling events (welcome, role, room-updated, peer-left,
// chat-hidden, error, close). All text is set with textContent; no inline styles or handlers.

import { anchorPositioning, el, fmt, gettext, icon, label, place } from "./dom.js";
import { moderationErrorWords } from "./words.js";

const REASON_MAX = 200; // docs/protocol.md, "Moderation"
const TOAST_MS = 7000;
const BAN_CHOICES = [
  { minutes: 60, label: () => gettext("1 hour") },
  { minutes: 60 * 24, label: () => gettext("1 day") },
  { minutes: null, label: () => gettext("Until lifted") },
];

let menuCount = 0;

export function setupModeration({ signaling, session, root, isVoice = false, canPromote = true }) {
  const peers = session.participants; // read only
  const menus = new Map(); // peer_id -> {root, button, menu}: the menu on their tile
  const stage = root.querySelector(".stage") || root;
  const controls = root.querySelector("#controls");
  const messages = root.querySelector("#chat-messages");
  const chatInput = root.querySelector("#chat-input");
  let isModerator = false;
  let locked = false;
  let closed = false;
  const names = new Map(); // peer_id -> name: still known once their tile is gone
  let openDialog = null; // {dialog, peerId}
  const tileProviders = []; // (peer) => [{label, icon, action, ...}]: items for everyone
  const roomProviders = []; // () => [{label, icon, action, ...}]: more items of the room menu
  let known = new Set(); // welcome.moderation: the moderation message types this server understands
  const knows = (type) => known.has(type);

  // --- Toasts ---------------------------------------------------------------------------

  const toasts = el("div", { className: "toasts", role: "status", "aria-live": "polite" });
  stage.append(toasts);

  function toast(text, tone = "info") {
    const item = el("p", { className: `toast ${tone}`, text });
    toasts.append(item);
    while (toasts.children.length > 3) toasts.firstElementChild.remove();
    setTimeout(() => item.remove(), TOAST_MS);
    return item;
  }

  // --- Menus: a popover of menu items, opened by its button (popovertarget) ----------------

  function makeMenu(button, name, fill, placement, allowed = () => isModerator) {
    menuCount += 1;
    const menu = el("div", {
      className: `mod-menu ${placement}`,
      id: `mod-menu-${menuCount}`,
      role: "menu",
      popover: "auto",
      "aria-label": name,
    });
    button.setAttribute("popovertarget", menu.id);
    button.setAttribute("aria-haspopup", "menu");
    button.setAttribute("aria-controls", menu.id);
    button.setAttribute("aria-expanded", "false");
    menu.addEventListener("beforetoggle", (event) => {
      if (event.newState !== "open") return;
      if (closed || !allowed()) {
        event.preventDefault();
        return;
      }
      menu.replaceChildren(...fill());
    });
    menu.addEventListener("toggle", (event) => {
      const open = event.newState === "open";
      button.setAttribute("aria-expanded", String(open));
      button.classList.toggle("open", open);
      if (!open) return;
      // Without CSS anchor positioning: by its button; a tile's menu (below) ends at the
      // button's right edge, the room menu (above) is centred on its button.
      if (!anchorPositioning) {
        place(menu, button, placement, { gap: 6, align: placement === "above" ? "center" : "end" });
      }
      items(menu)[0]?.focus();
    });
    menu.addEventListener("keydown", (event) => menuKeys(event, menu, button));
    return menu;
  }

  function items(menu) {
    return [...menu.querySelectorAll('[role="menuitem"]:not(:disabled)')];
  }

  function menuKeys(event, menu, button) {
    const list = items(menu);
    const at = list.indexOf(document.activeElement);
    let next = null;
    if (event.key === "ArrowDown") next = list[(at + 1) % list.length];
    else if (event.key === "ArrowUp") next = list[(at - 1 + list.length) % list.length];
    else if (event.key === "Home") next = list[0];
    else if (event.key === "End") next = list[list.length - 1];
    else if (event.key === "Tab") {
      event.preventDefault();
      menu.hidePopover();
      button.focus();
      return;
    }
    if (next) {
      event.preventDefault();
      next.focus();
    }
  }

  function menuItem(text, iconName, action, { disabled = false, danger = false, hint = "" } = {}) {
    const button = el(
      "button",
      {
        type: "button",
        role: "menuitem",
        tabindex: "-1",
        className: `mod-item${danger ? " danger" : ""}`,
        disabled,
      },
      icon(iconName),
      el("span", { className: "mod-item-text", text }),
    );
    if (hint) button.append(el("span", { className: "mod-item-hint", text: hint }));
    button.addEventListener("click", () => {
      button.closest("[popover]")?.hidePopover();
      action();
    });
    return button;
  }

  const separator = () => el("div", { role: "separator", className: "mod-separator" });

  // --- The tile menu ------------------------------------------------------------------------

  function refreshTile(peer, tileRoot) {
    names.set(peer.id, peer.name);
    let tile = menus.get(peer.id);
    if (!tile || tile.root !== tileRoot) {
      const button = el("button", { type: "button", className: "tile-mod-button mod-only" }, icon("more"));
      const everyone = () => isModerator || tileProviders.length > 0;
      const menu = makeMenu(button, "", () => tileMenuItems(peer.id), "below", everyone);
      tileRoot.append(button, menu);
      tile = { root: tileRoot, button, menu };
      menus.set(peer.id, tile);
    }
    tile.button.classList.toggle("mod-only", tileProviders.length === 0);
    const words = isModerator
      ? fmt(gettext("Moderate %(name)s"), { name: peer.name })
      : fmt(gettext("Options for %(name)s"), { name: peer.name });
    if (tile.button.getAttribute("aria-label") !== words) {
      label(tile.button, words);
      tile.menu.setAttribute("aria-label", words);
    }
  }

  function refreshMenus() {
    for (const [id, tile] of menus) {
      const peer = peers.get(id);
      if (peer) refreshTile(peer, tile.root);
    }
  }

  // The same menu as on `id`'s tile, opened by another button (the people panel's rows).
  // Returns the menu element, for the caller to put beside its button.
  function attachMenu(button, id) {
    const peer = peers.get(id);
    const words = () => {
      const name = peers.get(id)?.name || names.get(id) || "";
      return isModerator ? fmt(gettext("Moderate %(name)s"), { name }) : fmt(gettext("Options for %(name)s"), { name });
    };
    if (peer) names.set(id, peer.name);
    const menu = makeMenu(button, words(), () => tileMenuItems(id), "below", () => hasMenu());
    label(button, words());
    button.hidden = !hasMenu();
    return menu;
  }

  function attachTiles(tiles) {
    tiles.on("painted", ({ participant, root: tileRoot }) => {
      if (participant) refreshTile(participant, tileRoot);
    });
    tiles.on("removed", ({ id }) => menus.delete(id));
  }

  function tileMenuItems(id) {
    const peer = peers.get(id);
    if (!peer) return [];
    const name = peer.name;
    const title = el("p", { className: "mod-menu-title", text: name, "aria-hidden": "true" });
    const extras = tileProviders
      .flatMap((provide) => provide(peer) || [])
      .map((item) => menuItem(item.label, item.icon, item.action, item));
    if (!isModerator) return [title, ...extras];
    const list = [title, ...extras];
    const actions = [];
    if (knows("mute")) {
      actions.push(
        menuItem(gettext("Mute"), "mute", () => act({ type: "mute", peer_id: id }), {
          disabled: !peer.media.audio,
          hint: peer.media.audio ? "" : gettext("already off"),
        }),
      );
    }
    if (!isVoice && knows("stop-video")) {
      actions.push(
        menuItem(gettext("Stop video"), "camOff", () => act({ type: "stop-video", peer_id: id }), {
          disabled: !peer.media.video,
          hint: peer.media.video ? "" : gettext("already off"),
        }),
      );
    }
    if (peer.hand && knows("lower-hand")) {
      actions.push(menuItem(gettext("Lower hand"), "hand", () => act({ type: "lower-hand", peer_id: id })));
    }
    if (canPromote && knows("promote") && !peer.isGuest) {
      // A guest cannot be made a moderator (rooms/moderation.py): no such item for them.
      actions.push(
        menuItem(gettext("Make moderator"), "star", () => confirmPromote(id), {
          disabled: Boolean(peer.isModerator),
          hint: peer.isModerator ? gettext("already one") : "",
        }),
      );
    }
    const removals = [
      ...(knows("kick") ? [menuItem(gettext("Remove from the call…"), "remove", () => confirmKick(id), { danger: true })] : []),
      ...(knows("ban") ? [menuItem(gettext("Ban from the room…"), "ban", () => confirmBan(id), { danger: true })] : []),
    ];
    if (extras.length && actions.length + removals.length) list.push(separator());
    list.push(...actions);
    if (actions.length && removals.length) list.push(separator());
    list.push(...removals);
    return list;
  }

  // --- The room menu (controls bar) -----------------------------------------------------------

  const roomButton = el(
    "button",
    { type: "button", className: "control mod-only room-mod-button", id: "moderator-controls" },
    icon("shield"),
  );
  label(roomButton, gettext("Moderator controls"));
  const roomMenu = makeMenu(roomButton, gettext("Moderator controls"), roomMenuItems, "above");
  if (controls) {
    const leave = controls.querySelector(".leave");
    if (leave) leave.before(roomButton);
    else controls.append(roomButton);
    controls.append(roomMenu);
  }

  function roomMenuItems() {
    const lock = locked
      ? knows("unlock") &&
        menuItem(gettext("Unlock the room"), "unlock", () => act({ type: "unlock" }), {
          hint: gettext("let new people join"),
        })
      : knows("lock") &&
        menuItem(gettext("Lock the room"), "lock", () => act({ type: "lock" }), {
          hint: gettext("nobody new can join"),
        });
    const end = knows("end") && menuItem(gettext("End the meeting for everyone…"), "end", confirmEnd, { danger: true });
    const extras = roomProviders.flatMap((provide) => provide() || []).map((item) => menuItem(item.label, item.icon, item.action, item));
    return [
      el("p", { className: "mod-menu-title", text: gettext("This room"), "aria-hidden": "true" }),
      ...(lock ? [lock] : []),
      ...extras,
      ...((lock || extras.length) && end ? [separator()] : []),
      ...(end ? [end] : []),
    ];
  }

  // --- Dialogs --------------------------------------------------------------------------------

  let dialogCount = 0;

  // A modal dialog with a form; resolves with its FormData, or null when cancelled.
  function ask({ title, text, confirm, danger = true, fields = [], peerId = null }) {
    dialogCount += 1;
    const titleId = `mod-dialog-title-${dialogCount}`;
    const textId = `mod-dialog-text-${dialogCount}`;
    const dialog = el("dialog", { className: "mod-dialog", "aria-labelledby": titleId, "aria-describedby": textId });
    const form = el("form", { method: "dialog", className: "mod-dialog-form" });
    const cancelButton = el("button", { type: "submit", value: "cancel", className: "button", text: gettext("Cancel") });
    const confirmButton = el("button", {
      type: "submit",
      value: "confirm",
      className: `button ${danger ? "danger" : "primary"}`,
      text: confirm,
    });
    form.append(
      el("h2", { id: titleId, text: title }),
      el("p", { id: textId, className: "mod-dialog-text", text }),
      ...fields.map((make) => make(dialogCount)),
      el("div", { className: "mod-dialog-actions" }, cancelButton, confirmButton),
    );
    dialog.append(form);
    root.append(dialog);
    const opener = document.activeElement;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        const data = dialog.returnValue === "confirm" ? new FormData(form) : null;
        dialog.remove();
        if (openDialog?.dialog === dialog) openDialog = null;
        if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
        resolve(data);
      });
      openDialog = { dialog, peerId };
      dialog.showModal();
      (dialog.querySelector("textarea, input:checked, input") || confirmButton).focus();
    });
  }

  function reasonField(text) {
    return (n) =>
      el(
        "div",
        { className: "field" },
        el("label", { for: `mod-reason-${n}`, text }),
        el("textarea", {
          id: `mod-reason-${n}`,
          name: "reason",
          rows: "2",
          maxlength: String(REASON_MAX),
          placeholder: gettext("Optional"),
        }),
      );
  }

  function durationField() {
    return (n) => {
      const fieldset = el("fieldset", { className: "mod-choices" }, el("legend", { text: gettext("For how long") }));
      BAN_CHOICES.forEach((choice, index) => {
        const id = `mod-ban-${n}-${index}`;
        fieldset.append(
          el(
            "label",
            { className: "mod-choice", for: id },
            el("input", {
              type: "radio",
              id,
              name: "minutes",
              value: choice.minutes === null ? "" : String(choice.minutes),
              checked: index === 0,
            }),
            el("span", { text: choice.label() }),
          ),
        );
      });
      return fieldset;
    };
  }

  const reasonOf = (data) => String(data.get("reason") || "").trim().slice(0, REASON_MAX);

  async function confirmKick(id) {
    const name = names.get(id) || gettext("this person");
    const data = await ask({
      title: fmt(gettext("Remove %(name)s from the call?"), { name }),
      text: gettext("They leave the call now but may join again. To keep them out, ban them instead."),
      confirm: gettext("Remove"),
      fields: [reasonField(gettext("Reason (kept in the moderation log)"))],
      peerId: id,
    });
    if (data) act({ type: "kick", peer_id: id, reason: reasonOf(data) });
  }

  async function confirmBan(id) {
    const name = names.get(id) || gettext("this person");
    const data = await ask({
      title: fmt(gettext("Ban %(name)s from this room?"), { name }),
      text: fmt(gettext("%(name)s leaves the call now and cannot join this room again while the ban lasts."), {
        name,
      }),
      confirm: gettext("Ban"),
      fields: [durationField(), reasonField(gettext("Reason (kept in the moderation log)"))],
      peerId: id,
    });
    if (!data) return;
    const minutes = String(data.get("minutes") || "");
    act({ type: "ban", peer_id: id, reason: reasonOf(data), minutes: minutes ? Number(minutes) : null });
  }

  async function confirmPromote(id) {
    const name = names.get(id) || gettext("this person");
    const data = await ask({
      title: fmt(gettext("Make %(name)s a moderator?"), { name }),
      text: fmt(
        gettext(
          "%(name)s will be able to mute, remove and ban people, hide messages and end the meeting in this room, now and in later meetings.",
        ),
        { name },
      ),
      confirm: gettext("Make moderator"),
      danger: false,
      peerId: id,
    });
    if (data) act({ type: "promote", peer_id: id });
  }

  async function confirmEnd() {
    const data = await ask({
      title: gettext("End the meeting for everyone?"),
      text: gettext("Everyone is disconnected and the room is closed. This cannot be undone."),
      confirm: gettext("End meeting"),
    });
    if (data) act({ type: "end" });
  }

  function act(message) {
    if (!signaling.send(message)) {
      toast(gettext("You are not connected right now. Try again in a moment."), "error");
      return false;
    }
    return true;
  }

  // --- Chat: a Hide button on each message --------------------------------------------------

  function decorateMessage(item, message) {
    if (typeof message.id !== "number" || !knows("hide-chat")) return;
    const button = el(
      "button",
      {
        type: "button",
        className: "message-hide mod-only",
        title: gettext("Hide this message from everyone"),
        "aria-label": fmt(gettext("Hide the message from %(name)s"), { name: message.name }),
      },
      icon("hide"),
      el("span", { text: gettext("Hide") }),
    );
    button.addEventListener("click", () => {
      if (act({ type: "hide-chat", id: message.id })) {
        button.disabled = true;
        item.classList.add("hiding");
      }
    });
    (item.querySelector(".message-meta") || item).append(button);
  }

  // --- What the server says -------------------------------------------------------------------

  function setModerator(value) {
    const changed = isModerator !== Boolean(value);
    isModerator = Boolean(value);
    root.classList.toggle("is-moderator", isModerator && !closed);
    if (!isModerator) closeAll();
    if (changed) refreshMenus(); // "Moderate …" or "Options for …"
  }

  // Items that everyone gets on remote tiles' menus (see the top of this file).
  function addTileItems(provide) {
    tileProviders.push(provide);
    refreshMenus();
  }

  function setLocked(value) {
    locked = Boolean(value);
    roomButton.classList.toggle("locked", locked);
  }

  function closeAll() {
    for (const menu of root.querySelectorAll(".mod-menu")) {
      if (menu.matches(":popover-open")) menu.hidePopover();
    }
    openDialog?.dialog.close();
  }

  signaling.on("welcome", (welcome) => {
    known = new Set(Array.isArray(welcome.moderation) ? welcome.moderation.filter((type) => typeof type === "string") : []);
    setModerator(welcome.self?.is_moderator);
    if (welcome.room && typeof welcome.room.locked === "boolean") setLocked(welcome.room.locked);
  });

  signaling.on("role", ({ peer_id: id, is_moderator: value }) => {
    if (id === signaling.peerId) {
      const was = isModerator;
      setModerator(value);
      if (value && !was) toast(gettext("You are now a moderator of this room."));
    } else if (value && isModerator && names.has(id)) {
      toast(fmt(gettext("%(name)s is now a moderator."), { name: names.get(id) }));
    }
  });

  signaling.on("room-updated", ({ locked: value }) => {
    if (typeof value !== "boolean" || value === locked) return;
    setLocked(value);
    toast(value ? gettext("The room is locked: nobody new can join.") : gettext("The room is unlocked."));
  });

  signaling.on("peer-left", ({ peer_id: id, reason }) => {
    const name = names.get(id);
    if (openDialog && openDialog.peerId === id) openDialog.dialog.close();
    if (name && reason === "kicked") toast(fmt(gettext("A moderator removed %(name)s from the call."), { name }));
    if (name && reason === "banned") toast(fmt(gettext("A moderator banned %(name)s from this room."), { name }));
    names.delete(id);
  });

  signaling.on("chat-hidden", ({ id }) => {
    // If focus is on the message that goes away, give it to a neighbour first.
    const item = messages?.querySelector(`[data-id="${CSS.escape(String(id))}"]`);
    if (!item || !item.contains(document.activeElement)) return;
    const neighbour = item.nextElementSibling || item.previousElementSibling;
    const target = neighbour?.querySelector(".message-hide") || chatInput;
    target?.focus();
  });

  signaling.on("error", (message) => {
    if (!knows(message.ref)) return;
    if (message.ref === "hide-chat") {
      for (const item of messages?.querySelectorAll(".message.hiding") || []) {
        item.classList.remove("hiding");
        const button = item.querySelector(".message-hide");
        if (button) button.disabled = false;
      }
    }
    toast(moderationErrorWords(message), "error");
  });

  signaling.on("close", ({ final, superseded }) => {
    if (!final || superseded) return;
    closed = true;
    closeAll();
    root.classList.remove("is-moderator");
  });

  // Whether a participant's menu has anything for us (moderator actions, or others' items).
  const hasMenu = () => isModerator || tileProviders.length > 0;

  /** More items for the room menu (moderators only), e.g. the invite links (invites.js). */
  function addRoomItems(provide) {
    roomProviders.push(provide);
  }

  return { attachTiles, attachMenu, hasMenu, decorateMessage, toast, addTileItems, addRoomItems, act, knows };
}
