// @ts-check
// Invite links, for the room's moderators (rooms/guests.py): "Invite guests…" in the room
// menu opens a dialog that makes a link (how long it lasts, how many guests it lets in),
// shows it once with a Copy button (only its hash is kept on the server), lists the room's
// links with their state and uses, and revokes one, optionally removing the guests it let
// in. It talks to the server over HTTP (config.invites_url), not the call's socket: links
// are made from the admin too, and a link outlives the meeting.
//
//   setupInvites({config, root, moderation});
import { el, fmt, gettext, ngettext } from "./dom.js";

const STATE_WORDS = {
  valid: () => gettext("Valid"),
  expired: () => gettext("Expired"),
  revoked: () => gettext("Revoked"),
  used_up: () => gettext("Used up"),
};

/** @returns {string} Django's CSRF token, from its cookie */
function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/**
 * @typedef {object} InviteItem  views.room_invites, one link
 * @property {number} id
 * @property {string} created_at
 * @property {string} expires_at
 * @property {number | null} max_uses
 * @property {number} uses
 * @property {"valid" | "expired" | "revoked" | "used_up"} state
 */

/**
 * @param {object} options
 * @param {{invites_url?: string | null}} options.config
 * @param {HTMLElement} options.root
 * @param {{addRoomItems(provide: () => object[]): void}} options.moderation
 */
export function setupInvites({ config, root, moderation }) {
  const url = config.invites_url;
  if (!url) return; // not a moderator of this room
  const locale = document.documentElement.lang || undefined;
  const when = (/** @type {string} */ iso) =>
    new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));

  moderation.addRoomItems(() => [{ label: gettext("Invite guests…"), icon: "link", action: open, hint: gettext("a link for people without an account") }]);

  const titleId = "invite-dialog-title";
  const dialog = el("dialog", { className: "mod-dialog invite-dialog", id: "invite-dialog", "aria-labelledby": titleId });
  const error = el("p", { className: "invite-error", role: "alert", hidden: true });
  const hours = el(
    "select",
    { id: "invite-hours", name: "hours" },
    el("option", { value: "1", text: gettext("1 hour") }),
    el("option", { value: "24", text: gettext("1 day"), selected: true }),
    el("option", { value: "168", text: gettext("7 days") }),
  );
  const uses = el("input", { id: "invite-uses", name: "max_uses", type: "number", min: "1", max: "1000", inputmode: "numeric", placeholder: gettext("Any number") });
  const create = el("button", { type: "submit", className: "button primary", id: "invite-create", text: gettext("Create link") });
  const form = el(
    "form",
    { className: "invite-form" },
    el("div", { className: "field" }, el("label", { for: "invite-hours", text: gettext("Expires after") }), hours),
    el("div", { className: "field" }, el("label", { for: "invite-uses", text: gettext("Guests it lets in") }), uses),
    create,
  );
  const linkField = /** @type {HTMLInputElement} */ (el("input", { id: "invite-link", type: "text", readonly: true, "aria-label": gettext("The new invite link") }));
  const copy = el("button", { type: "button", className: "button", id: "invite-copy", text: gettext("Copy") });
  const made = el(
    "div",
    { className: "invite-made", hidden: true },
    el("p", { className: "invite-made-note", text: gettext("Copy the link now: it is shown only this once.") }),
    el("div", { className: "invite-made-row" }, linkField, copy),
  );
  const list = el("ul", { className: "invite-list", id: "invite-list" });
  const empty = el("p", { className: "invite-empty", text: gettext("No invite links yet.") });
  const removeGuests = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", id: "invite-remove-guests" }));
  const close = el("button", { type: "button", className: "button", text: gettext("Close") });
  dialog.append(
    el(
      "div",
      { className: "mod-dialog-form" },
      el("h2", { id: titleId, text: gettext("Invite guests") }),
      el("p", {
        className: "mod-dialog-text",
        text: gettext("Whoever has the link joins this room, and only this room, without an account. The others see them marked as a guest."),
      }),
      form,
      made,
      error,
      el("h3", { className: "invite-list-title", text: gettext("Links to this room") }),
      empty,
      list,
      el("label", { className: "invite-remove", for: "invite-remove-guests" }, removeGuests, el("span", { text: gettext("Revoking also removes the guests the link let in") })),
      el("div", { className: "mod-dialog-actions" }, close),
    ),
  );
  root.append(dialog);
  close.addEventListener("click", () => dialog.close());

  /** @param {string} text */
  function showError(text) {
    error.textContent = text;
    error.hidden = false;
  }

  /** @param {RequestInit} [init] */
  async function call(target, init) {
    error.hidden = true;
    let response;
    try {
      response = await fetch(target, { credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() }, ...init });
    } catch {
      showError(gettext("The server cannot be reached. Try again in a moment."));
      return null;
    }
    if (!response.ok) {
      showError(response.status === 403 ? gettext("Only moderators of this room can manage its invite links.") : gettext("That did not work. Try again."));
      return null;
    }
    return response.json();
  }

  /** @param {InviteItem[]} invites */
  function paint(invites) {
    empty.hidden = invites.length > 0;
    list.replaceChildren(
      ...invites.map((invite) => {
        const usage =
          invite.max_uses === null
            ? fmt(ngettext("used %(count)s time", "used %(count)s times", invite.uses), { count: invite.uses })
            : fmt(gettext("%(uses)s of %(max)s guests"), { uses: invite.uses, max: invite.max_uses });
        const revoke =
          invite.state === "valid" || invite.state === "used_up"
            ? el("button", { type: "button", className: "button danger small", text: gettext("Revoke"), "data-invite": String(invite.id) })
            : null;
        revoke?.addEventListener("click", () => revokeInvite(invite.id));
        const state = (STATE_WORDS[invite.state] || STATE_WORDS.expired)();
        return el(
          "li",
          { className: `invite-item ${invite.state}`, "data-state": invite.state },
          el(
            "div",
            { className: "invite-item-text" },
            el("span", { className: "invite-state", text: state }),
            el("span", { className: "invite-facts", text: `${fmt(gettext("expires %(when)s"), { when: when(invite.expires_at) })} · ${usage}` }),
          ),
          revoke,
        );
      }),
    );
  }

  async function refresh() {
    const answer = await call(url);
    if (answer) paint(answer.invites);
  }

  async function open() {
    form.reset(); // each visit starts from the defaults: 1 day, any number of guests
    removeGuests.checked = false;
    made.hidden = true;
    linkField.value = "";
    error.hidden = true;
    dialog.showModal();
    hours.focus();
    await refresh();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    create.disabled = true;
    // Form-encoded: an empty multipart body (a revoke without options) is one Django refuses.
    const body = new URLSearchParams();
    body.set("hours", hours.value);
    if (uses.value) body.set("max_uses", uses.value);
    const answer = await call(url, { method: "POST", body });
    create.disabled = false;
    if (!answer) return;
    linkField.value = answer.url;
    made.hidden = false;
    linkField.focus();
    linkField.select();
    paint(answer.invites);
  });

  copy.addEventListener("click", async () => {
    linkField.select();
    try {
      await navigator.clipboard.writeText(linkField.value);
      copy.textContent = gettext("Copied");
    } catch {
      copy.textContent = gettext("Press Ctrl+C to copy");
    }
    setTimeout(() => {
      copy.textContent = gettext("Copy");
    }, 2500);
  });

  /** @param {number} id */
  async function revokeInvite(id) {
    const body = new URLSearchParams();
    if (removeGuests.checked) body.set("remove_guests", "1");
    const answer = await call(`${url}/${id}/revoke`, { method: "POST", body });
    if (answer) paint(answer.invites);
  }
}
