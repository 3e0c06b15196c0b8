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

/** While the page reconnects after a close that is not final. */
export function reconnectingWords() {
  return gettext("Connection lost — reconnecting…");
}

/**
 * A final close, worded for people: {title, hint, signin, retry} (signin: offer "Sign in";
 * retry: offer "Enter the password").
 * @param {{code: number, reason?: string, welcomed?: boolean}} close
 * @param {number} capacity  the room's, as the page knows it
 */
export function closedWords({ code, reason = "", welcomed = false }, capacity) {
  return {
    title: closeTitle(code, reason || "", welcomed, capacity),
    hint: closeHint(code, reason || "", welcomed),
    signin: code === CLOSE.NOT_SIGNED_IN,
    retry: code === CLOSE.FORBIDDEN && /password|private/i.test(reason || ""),
  };
}

/** @param {number} code @param {string} reason @param {boolean} welcomed @param {number} capacity */
function closeTitle(code, reason, welcomed, capacity) {
  switch (code) {
    case CLOSE.ABUSE:
      return gettext("Your connection was closed because it sent too many invalid messages.");
    case CLOSE.NOT_SIGNED_IN:
      return gettext("Please sign in to join this room.");
    case CLOSE.NOT_FOUND:
      return gettext("This room does not exist or has been closed.");
    case CLOSE.RATE_LIMITED:
      if (/connections/i.test(reason))
        return gettext("You have too many connections open to this room. Close another tab, then try again.");
      if (/joins/i.test(reason)) return gettext("You joined too many times in a short while. Wait a minute, then try again.");
      return gettext("Your connection sent too much too fast and was closed.");
    case CLOSE.ENDED:
      return gettext("The meeting was ended by a moderator.");
    case CLOSE.FULL: {
      const numbers = reason.match(/(\d+)\s*(?:of|\/)\s*(\d+)/);
      const total = numbers ? numbers[2] : capacity;
      const count = numbers ? numbers[1] : total;
      return fmt(gettext("This room is full (%(count)s of %(capacity)s)."), { count, capacity: total });
    }
    case CLOSE.FORBIDDEN: {
      const why = reason.toLowerCase();
      if (why.includes("banned")) return gettext("You are banned from this room.");
      if (why.includes("password") || why.includes("private"))
        return gettext("This room is private: enter its password to join.");
      if (why.includes("locked")) return gettext("This room is locked: nobody new can join right now.");
      if (why.includes("removed") || why.includes("kick"))
        return gettext("You were removed from this room by a moderator.");
      if (why.includes("ended")) return gettext("The meeting was ended by a moderator.");
      if (reason) return fmt(gettext("You cannot be in this room: %(reason)s."), { reason });
      // No reason (daphne drops it). In the call, only a moderator can close with 4403.
      return welcomed
        ? gettext("You were removed from this room by a moderator.")
        : gettext("You cannot join this room right now: it may be locked, or you may be banned from it.");
    }
    default:
      return reason
        ? fmt(gettext("The connection was closed: %(reason)s."), { reason })
        : gettext("The connection was closed.");
  }
}

/** @param {number} code @param {string} reason @param {boolean} welcomed */
function closeHint(code, reason, welcomed) {
  const why = reason.toLowerCase();
  if (code === CLOSE.NOT_SIGNED_IN) return gettext("Sign in, then open the room again.");
  if (code === CLOSE.ENDED) return gettext("The room is closed now. You can go back to the lobby and pick another room.");
  if (code === CLOSE.FORBIDDEN && why.includes("banned")) return gettext("You cannot join this room again while the ban lasts.");
  if (code === CLOSE.FORBIDDEN && (why.includes("removed") || (!why && welcomed)))
    return gettext("You may join this room again later, or go back to the lobby.");
  return gettext("You can go back to the lobby and pick another room.");
}

// --- Errors the server answered a message with ----------------------------------------------

/** A chat message refused. @param {{code?: string, detail?: string}} error */
export function chatErrorWords(error) {
  switch (error.code) {
    case "rate_limited":
      return gettext("You are sending messages too quickly. Wait a moment, then try again.");
    case "server_error":
      return gettext("Your message could not be saved. Please send it again.");
    case "bad_message":
      return fmt(gettext("That message could not be sent: it must not be empty or longer than %(max)s characters."), {
        max: CHAT_MAX.toLocaleString(),
      });
    default:
      return gettext("That message could not be sent.");
  }
}

/** A moderation message refused. @param {{code?: string, detail?: string, ref?: string, message?: string}} error */
export function moderationErrorWords(error) {
  const why = String(error.message || "").toLowerCase();
  switch (error.code) {
    case "forbidden":
      if (error.ref === "promote") return gettext("Only the room's owner can make someone a moderator.");
      if (why.includes("owner")) return gettext("The room's owner cannot be removed or banned.");
      return gettext("Only moderators of this room can do that.");
    case "not_found":
      return error.ref === "hide-chat"
        ? gettext("That message no longer exists.")
        : gettext("That person is no longer in the call.");
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
