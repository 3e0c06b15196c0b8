// @ts-check
// What the call page says, worded from what happened: pure functions from codes and data to
// translated text (no DOM, no state). docs/protocol.md has the codes.
import { CLOSE } from "./signaling.js";
import { fmt, gettext } from "./dom.js";

export const CHAT_MAX = 2000; // docs/protocol.md: a chat body is 1 to 2,000 characters

// --- Our seat -------------------------------------------------------------------------------

/** @param {"joining" | "joined" | "reconnecting" | "closed"} phase */
export function phaseWords(phase) {
  return (
    {
      joining: gettext("Connecting…"),
      waiting: gettext("Waiting to be let in"),
      joined: gettext("Connected"),
      reconnecting: gettext("Reconnecting…"),
      closed: gettext("Not connected"),
    }[phase] || ""
  );
}

/** A participant's connection, on their tile (null: nothing to say). @param {string} state */
export function connectionWords(state) {
  return (
    {
      joining: gettext("Joining…"),
      new: gettext("Connecting…"),
      connecting: gettext("Connecting…"),
      disconnected: gettext("Connection interrupted…"),
      failed: gettext("Connection failed, retrying…"),
    }[state] || null
  );
}

/**
 * While the page reconnects after a close that is not final: 4503 (`unavailable`) and 4500
 * (`server_error`) say what the server said; anything else (1006, 1009) is a lost connection.
 * @param {{refusal?: string | null} | null} [close]
 */
export function reconnectingWords(close) {
  switch (close?.refusal) {
    case "unavailable":
      return gettext("The server cannot take you in right now. Trying again…");
    case "server_error":
      return gettext("The server had a problem with your connection. Rejoining…");
    default:
      return gettext("Connection lost — reconnecting…");
  }
}

/** @param {unknown} iso  an ISO 8601 date, or anything else (then null) @param {string | undefined} locale */
function when(iso, locale) {
  if (typeof iso !== "string") return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  return date.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

/** @param {unknown} value */
const count = (value) => (Number.isInteger(value) && /** @type {number} */ (value) >= 0 ? /** @type {number} */ (value) : null);

// The refusals of docs/protocol.md, "Close codes and refusals". A close without one (an
// older server, a proxy) is worded from its code alone.
const BY_CODE = {
  [CLOSE.ABUSE]: "abuse",
  [CLOSE.NOT_SIGNED_IN]: "not_signed_in",
  [CLOSE.NOT_FOUND]: "not_found",
  [CLOSE.FULL]: "full",
  [CLOSE.ENDED]: "ended",
  [CLOSE.RATE_LIMITED]: "flooding",
};

/**
 * A final close, worded for people from its refusal and data: {title, hint, signin, retry}
 * (signin: offer "Sign in"; retry: offer "Enter the password"). `reason` is never read.
 * @param {{code: number, refusal?: string | null, data?: Record<string, any>, welcomed?: boolean}} close
 * @param {string} [locale]  the page's language, for dates
 * @param {{guest?: boolean}} [who]  guest: the page is a guest's, who has no lobby to go back to
 */
export function closedWords({ code, refusal = null, data = {}, welcomed = false }, locale, { guest = false } = {}) {
  const name = refusal || BY_CODE[code] || (code === CLOSE.FORBIDDEN ? (welcomed ? "kicked" : "forbidden") : null);
  const elsewhere = guest
    ? gettext("Ask the person who invited you if you need to come back.")
    : gettext("You can go back to the lobby and pick another room.");
  const words = (title, hint = elsewhere) => ({ title, hint, signin: name === "not_signed_in", retry: name === "password_required" });
  switch (name) {
    case "not_signed_in":
      return words(gettext("Please sign in to join this room."), gettext("Sign in, then open the room again."));
    case "not_found":
      return words(gettext("This room does not exist or has been closed."));
    case "banned": {
      const until = when(data.until, locale);
      return words(
        until ? fmt(gettext("You are banned from this room (until %(until)s)."), { until }) : gettext("You are banned from this room."),
        gettext("You cannot join this room again while the ban lasts."),
      );
    }
    case "password_required":
      return words(gettext("This room is private: enter its password to join."));
    case "locked":
      return words(gettext("This room is locked: nobody new can join right now."));
    case "kicked":
      return words(
        gettext("You were removed from this room by a moderator."),
        guest ? gettext("You may join this room again later.") : gettext("You may join this room again later, or go back to the lobby."),
      );
    case "declined":
      return words(gettext("A moderator did not let you in."));
    case "invite_revoked":
      return words(gettext("The invite link that let you in was revoked, and your visit has ended."));
    case "guest_ended":
      return words(
        gettext("Your guest visit has ended."),
        gettext("To come back, open your invite link again while it is valid."),
      );
    case "guest_other_room":
      return words(gettext("As a guest you can enter only the room you were invited to."));
    case "full": {
      const occupancy = count(data.occupancy);
      const capacity = count(data.capacity);
      return words(
        occupancy !== null && capacity !== null
          ? fmt(gettext("This room is full (%(count)s of %(capacity)s)."), { count: occupancy, capacity })
          : gettext("This room is full."),
      );
    }
    case "ended":
      return words(
        gettext("The meeting was ended by a moderator."),
        guest ? elsewhere : gettext("The room is closed now. You can go back to the lobby and pick another room."),
      );
    case "abuse":
      return words(gettext("Your connection was closed because it sent too many invalid messages."));
    case "flooding":
      return words(gettext("Your connection sent too much too fast and was closed."));
    case "too_many_connections":
      return words(gettext("You have too many connections open to this room. Close another tab, then try again."));
    case "too_many_joins":
      return words(gettext("You joined too many times in a short while. Wait a minute, then try again."));
    case "forbidden":
      return words(gettext("You cannot join this room right now: it may be locked, or you may be banned from it."));
    default:
      return words(gettext("The connection was closed."));
  }
}

// --- Errors the server answered a message with ----------------------------------------------

/**
 * A chat message the server refused (`error` with ref "chat"). `restored`: the page gave
 * the text back to the message box (it does unless the person already typed something new).
 * @param {{code?: string, detail?: string}} error @param {boolean} restored
 */
export function chatErrorWords(error, restored) {
  switch (error.code) {
    case "rate_limited":
      return gettext("You are sending messages too quickly. Wait a moment, then try again.");
    case "server_error":
      return restored
        ? gettext("Your message could not be sent because of a problem on the server. It is back in the message box: send it again.")
        : gettext("Your message could not be sent because of a problem on the server. Please send it again.");
    case "bad_message":
      return fmt(gettext("That message could not be sent: it must not be empty or longer than %(max)s characters."), {
        max: CHAT_MAX.toLocaleString(),
      });
    default:
      return gettext("That message could not be sent.");
  }
}

/**
 * A moderation message the server refused, from its code, detail and ref.
 * @param {{code?: string, detail?: string, ref?: string}} error
 */
export function moderationErrorWords(error) {
  switch (error.code) {
    case "forbidden":
      if (error.detail === "not_owner") return gettext("Only the room's owner can make someone a moderator.");
      if (error.detail === "owner_protected") return gettext("The room's owner cannot be removed or banned.");
      if (error.detail === "guest") return gettext("A guest cannot be made a moderator.");
      return gettext("Only moderators of this room can do that.");
    case "not_found":
      if (error.detail === "no_message" || (!error.detail && error.ref === "hide-chat")) {
        return gettext("That message no longer exists.");
      }
      if (error.detail === "no_waiting") return gettext("That person is no longer waiting.");
      return gettext("That person is no longer in the call.");
    case "full":
      return gettext("The room is full: let someone in when a seat is free.");
    case "rate_limited":
      return gettext("Too many actions at once. Wait a moment, then try again.");
    case "server_error":
      return gettext("That did not work because of a problem on the server. Try again.");
    default:
      return gettext("That did not work. Try again.");
  }
}

// --- Devices -----------------------------------------------------------------------------------

/** Before the browser answers. @param {boolean} isVoice */
export function askingWords(isVoice) {
  return isVoice
    ? gettext("Allow the microphone so that others can hear you.")
    : gettext("Allow the camera and microphone so that others can see and hear you.");
}

/**
 * What came of asking for devices: {text, retry} or null (all is well).
 * @param {import("./media/local.js").AcquireResult} result @param {boolean} isVoice
 */
export function devicesWords(result, isVoice) {
  if (result.unsupported) {
    return {
      text: gettext(
        "This browser cannot use a camera or microphone on this page (it needs a secure https address). You can still watch, listen and chat.",
      ),
      retry: false,
    };
  }
  const { failure, audio, video } = result;
  if (!audio && !video) {
    const denied = failure && (failure.name === "NotAllowedError" || failure.name === "SecurityError");
    const devices = isVoice ? gettext("microphone") : gettext("camera and microphone");
    return {
      text: denied
        ? fmt(
            gettext(
              "You did not allow the %(devices)s, so nobody can see or hear you. You can still watch, listen and chat. To take part, allow them in your browser's site settings and try again.",
            ),
            { devices },
          )
        : fmt(
            gettext(
              "No %(devices)s could be used (none was found, or another app is using it). You can still watch, listen and chat.",
            ),
            { devices },
          ),
      retry: true,
    };
  }
  if (!isVoice && !video) return { text: gettext("No camera could be used: you are in the call with your microphone only."), retry: true };
  if (!audio) return { text: gettext("No microphone could be used: others can see you but not hear you."), retry: true };
  return null;
}

/** A device that stopped by itself. @param {"audio" | "video"} kind */
export function deviceLostWords(kind) {
  return kind === "video"
    ? gettext("Your camera stopped (it was unplugged or another app took it).")
    : gettext("Your microphone stopped (it was unplugged or another app took it).");
}
