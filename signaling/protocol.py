"""The one place that decides whether a client's message is well formed.

docs/protocol.md is the contract; this module is its executable form. `parse` turns a raw
websocket frame into a `Message` or raises `ProtocolError` with a stable code and a
reason a developer can act on. Handlers receive only messages that passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rooms.models import CHAT_MAX_LENGTH

MAX_FRAME = 72 * 1024
MAX_SDP = 64 * 1024
MAX_CANDIDATE = 2048
MAX_PEER_ID = 64

# Error codes (docs/protocol.md, "error"). Stable: clients switch on them.
BAD_MESSAGE = "bad_message"
UNKNOWN_PEER = "unknown_peer"
RATE_LIMITED = "rate_limited"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
SERVER_ERROR = "server_error"

# Close codes (docs/protocol.md, "Close codes").
CLOSE_LEFT = 1000
CLOSE_ABUSE = 4400
CLOSE_NOT_SIGNED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SUPERSEDED = 4408
CLOSE_NOT_FOUND = 4404
CLOSE_FULL = 4409
CLOSE_ENDED = 4410
CLOSE_RATE_LIMITED = 4429

RELAY_TYPES = frozenset({"offer", "answer", "candidate"})


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref

    def as_message(self) -> dict[str, Any]:
        return error(self.code, self.message, self.ref)


def error(code: str, message: str, ref: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref:
        out["ref"] = ref
    return out


@dataclass(frozen=True, slots=True)
class Message:
    type: str
    fields: dict[str, Any]


def _string(data: dict[str, Any], name: str, kind: str, *, min_len: int, max_len: int) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ProtocolError(BAD_MESSAGE, f"{name} must be a string", kind)
    if len(value) < min_len:
        raise ProtocolError(BAD_MESSAGE, f"{name} must not be empty", kind)
    if len(value) > max_len:
        raise ProtocolError(BAD_MESSAGE, f"{name} is longer than {max_len} characters", kind)
    return value


def _bool(data: dict[str, Any], name: str, kind: str) -> bool:
    value = data.get(name)
    if not isinstance(value, bool):
        raise ProtocolError(BAD_MESSAGE, f"{name} must be true or false", kind)
    return value


def _sdp(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "to": _string(data, "to", kind, min_len=1, max_len=MAX_PEER_ID),
        "sdp": _string(data, "sdp", kind, min_len=1, max_len=MAX_SDP),
    }


def _candidate(data: dict[str, Any], kind: str) -> dict[str, Any]:
    if "candidate" not in data:
        raise ProtocolError(BAD_MESSAGE, "candidate is missing", kind)
    candidate = data["candidate"]
    if candidate is not None:
        if not isinstance(candidate, dict):
            raise ProtocolError(BAD_MESSAGE, "candidate must be an object or null", kind)
        if len(json.dumps(candidate)) > MAX_CANDIDATE:
            raise ProtocolError(
                BAD_MESSAGE, f"candidate is larger than {MAX_CANDIDATE} characters", kind
            )
    return {"to": _string(data, "to", kind, min_len=1, max_len=MAX_PEER_ID), "candidate": candidate}


def _stored_text(data: dict[str, Any], name: str, kind: str, *, max_len: int) -> str:
    """A string that will be written to the database. PostgreSQL text cannot hold NUL
    characters (the fuzz run found a chat body with one answered by a server error)."""
    value = _string(data, name, kind, min_len=0, max_len=max_len)
    if "\x00" in value:
        raise ProtocolError(BAD_MESSAGE, f"{name} must not contain NUL characters", kind)
    return value.strip()


def _chat(data: dict[str, Any], kind: str) -> dict[str, Any]:
    body = _stored_text(data, "body", kind, max_len=CHAT_MAX_LENGTH * 4)
    if not body:
        raise ProtocolError(BAD_MESSAGE, "body must not be empty", kind)
    if len(body) > CHAT_MAX_LENGTH:
        raise ProtocolError(BAD_MESSAGE, f"body is longer than {CHAT_MAX_LENGTH} characters", kind)
    return {"body": body}


def _media(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: _bool(data, name, kind) for name in ("audio", "video", "screen")}


def _nothing(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {}


MAX_REASON = 200
MAX_BAN_MINUTES = 60 * 24 * 365


def _reason(data: dict[str, Any], kind: str) -> str:
    if data.get("reason") is None:
        return ""
    return _stored_text(data, "reason", kind, max_len=MAX_REASON)


def _peer_action(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "peer_id": _string(data, "peer_id", kind, min_len=1, max_len=MAX_PEER_ID),
        "reason": _reason(data, kind),
    }


def _ban(data: dict[str, Any], kind: str) -> dict[str, Any]:
    minutes = data.get("minutes")
    if minutes is not None and (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not 1 <= minutes <= MAX_BAN_MINUTES
    ):
        raise ProtocolError(
            BAD_MESSAGE,
            f"minutes must be a whole number from 1 to {MAX_BAN_MINUTES}, or null",
            kind,
        )
    return {**_peer_action(data, kind), "minutes": minutes}


def _ping(data: dict[str, Any], kind: str) -> dict[str, Any]:
    if data.get("id") is None:
        return {}
    return {"id": _string(data, "id", kind, min_len=0, max_len=MAX_PEER_ID)}


def _room_action(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"reason": _reason(data, kind)}


def _hide_chat(data: dict[str, Any], kind: str) -> dict[str, Any]:
    message_id = data.get("id")
    if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id < 1:
        raise ProtocolError(BAD_MESSAGE, "id must be a chat message id", kind)
    return {"id": message_id}


VALIDATORS = {
    "offer": _sdp,
    "answer": _sdp,
    "candidate": _candidate,
    "chat": _chat,
    "media": _media,
    "ping": _ping,
    "leave": _nothing,
    # Moderation (docs/protocol.md, "Moderation"): rooms.moderation checks the right.
    "kick": _peer_action,
    "ban": _ban,
    "mute": _peer_action,
    "stop-video": _peer_action,
    "promote": _peer_action,
    "lock": _room_action,
    "unlock": _room_action,
    "end": _room_action,
    "hide-chat": _hide_chat,
}
MODERATION_TYPES = frozenset(
    {"kick", "ban", "mute", "stop-video", "promote", "lock", "unlock", "end", "hide-chat"}
)


def parse(text: str | None, binary: bytes | None = None) -> Message:
    """Validate one websocket frame from a client."""
    if text is None:
        raise ProtocolError(BAD_MESSAGE, "binary frames are not accepted; send JSON text")
    if len(text) > MAX_FRAME:
        raise ProtocolError(BAD_MESSAGE, f"frame is larger than {MAX_FRAME} characters")
    try:
        data = json.loads(text)
    except ValueError:
        raise ProtocolError(BAD_MESSAGE, "frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, "a message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(BAD_MESSAGE, "type is missing or not a string")
    validator = VALIDATORS.get(kind)
    if validator is None:
        raise ProtocolError(BAD_MESSAGE, f"unknown message type {kind[:40]!r}")
    return Message(kind, validator(data, kind))


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
