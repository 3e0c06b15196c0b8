"""The one place that decides whether a client's message is well formed.

docs/protocol.md is the contract; this module is its executable form. `parse` turns a raw
websocket frame into a `Message` or raises `ProtocolError` with a stable code and a
reason a developer can act on. Handlers receive only messages that passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from django.utils import timezone

from rooms import meeting, moderation, waiting
from rooms.models import CHAT_MAX_LENGTH, Room

MAX_FRAME = 72 * 1024
MAX_SDP = 64 * 1024
MAX_CANDIDATE = 2048
MAX_PEER_ID = 64
# Deeper than any message needs, far shallower than the parser's or the encoder's
# recursion limit (a frame of 72 K "[" would otherwise be a RecursionError).
MAX_DEPTH = 32
# Integers the page's JavaScript, msgpack (the Redis layer) and the database all carry.
MAX_INT = 2**53

# Error codes (docs/protocol.md, "error"). Stable: clients switch on them.
BAD_MESSAGE = "bad_message"
UNKNOWN_PEER = "unknown_peer"
RATE_LIMITED = "rate_limited"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
SERVER_ERROR = "server_error"
FULL = "full"

# Error details (docs/protocol.md, "error"): the finer stable name the page words.
TOO_LARGE = "too_large"
NOT_JSON = "not_json"
INVALID_FIELD = "invalid_field"
UNKNOWN_TYPE = "unknown_type"
UNAVAILABLE = "unavailable"
OVERLOADED = "overloaded"

# Close codes (docs/protocol.md, "Close codes and refusals").
CLOSE_LEFT = 1000
CLOSE_SERVER_ERROR = 4500
CLOSE_UNAVAILABLE = 4503
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
    def __init__(
        self, code: str, message: str, ref: str | None = None, *, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.detail = detail if detail is not None else DEFAULT_DETAIL.get(code)

    def as_message(self) -> dict[str, Any]:
        return error(self.code, self.message, self.ref, detail=self.detail)


# A field that fails its check is the commonest bad message; the others say otherwise.
DEFAULT_DETAIL = {BAD_MESSAGE: INVALID_FIELD}


def error(
    code: str, message: str, ref: str | None = None, *, detail: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if detail:
        out["detail"] = detail
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


def _optional_string(data: dict[str, Any], name: str, kind: str, *, max_len: int) -> str | None:
    if data.get(name) is None:
        return None
    return _string(data, name, kind, min_len=0, max_len=max_len)


def _ice_candidate(data: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The message's `candidate`: null (end of candidates), or an object rebuilt from
    RTCIceCandidate's four fields, so that nothing else reaches the other side."""
    if "candidate" not in data:
        raise ProtocolError(BAD_MESSAGE, "candidate is missing", kind)
    raw = data["candidate"]
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ProtocolError(BAD_MESSAGE, "candidate must be an object or null", kind)
    index = raw.get("sdpMLineIndex")
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 65535
    ):
        raise ProtocolError(BAD_MESSAGE, "candidate.sdpMLineIndex must be 0 to 65535 or null", kind)
    fields = {
        "candidate": _string(raw, "candidate", kind, min_len=0, max_len=MAX_CANDIDATE),
        "sdpMid": _optional_string(raw, "sdpMid", kind, max_len=MAX_PEER_ID),
        "sdpMLineIndex": index,
        "usernameFragment": _optional_string(raw, "usernameFragment", kind, max_len=256),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _candidate(data: dict[str, Any], kind: str) -> dict[str, Any]:
    candidate = _ice_candidate(data, kind)
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


SFU_PCS = ("publisher", "subscriber")
# Simulcast layers by name (docs/protocol.md, "SFU rooms") -> Janus substream numbers.
SfuLayer = Literal["low", "medium", "high"]
SFU_LAYERS: dict[SfuLayer, Literal[0, 1, 2]] = {"low": 0, "medium": 1, "high": 2}


def _sfu_sdp(data: dict[str, Any], kind: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"sdp": _string(data, "sdp", kind, min_len=1, max_len=MAX_SDP)}
    if kind == "sfu-publish":
        fields["screen_mid"] = _optional_string(data, "screen_mid", kind, max_len=MAX_PEER_ID)
    return fields


def _sfu_candidate(data: dict[str, Any], kind: str) -> dict[str, Any]:
    pc = data.get("pc")
    if pc not in SFU_PCS:
        raise ProtocolError(BAD_MESSAGE, 'pc must be "publisher" or "subscriber"', kind)
    return {"pc": pc, "candidate": _ice_candidate(data, kind)}


def _sfu_layer(data: dict[str, Any], kind: str) -> dict[str, Any]:
    layer = data.get("layer")
    if layer not in SFU_LAYERS:
        raise ProtocolError(BAD_MESSAGE, 'layer must be "low", "medium" or "high"', kind)
    return {
        "peer_id": _string(data, "peer_id", kind, min_len=1, max_len=MAX_PEER_ID),
        "layer": layer,
    }


def _media(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: _bool(data, name, kind) for name in ("audio", "video", "screen")}


def _hand(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"raised": _bool(data, "raised", kind)}


def _recording(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"on": _bool(data, "on", kind)}


def _reaction(data: dict[str, Any], kind: str) -> dict[str, Any]:
    reaction = data.get("reaction")
    if reaction not in meeting.REACTIONS:
        raise ProtocolError(
            BAD_MESSAGE, f"reaction must be one of {', '.join(meeting.REACTIONS)}", kind
        )
    return {"reaction": reaction}


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


def _waiting(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"waiting_id": _string(data, "waiting_id", kind, min_len=1, max_len=MAX_PEER_ID)}


def _waiting_mode(data: dict[str, Any], kind: str) -> dict[str, Any]:
    mode = data.get("mode")
    if mode not in Room.Waiting.values:
        raise ProtocolError(
            BAD_MESSAGE, f"mode must be one of {', '.join(Room.Waiting.values)}", kind
        )
    return {"mode": mode}


def _hide_chat(data: dict[str, Any], kind: str) -> dict[str, Any]:
    message_id = data.get("id")
    if (
        isinstance(message_id, bool)
        or not isinstance(message_id, int)
        or not 1 <= message_id <= MAX_INT
    ):
        raise ProtocolError(BAD_MESSAGE, "id must be a chat message id", kind)
    return {"id": message_id}


# --- Moderation: one table for validation, dispatch and the page ---------------------------
# Each type names its validator and the rooms.moderation function it calls; the consumer
# dispatches through this table, `welcome.moderation` lists its keys for the page, and
# rooms/ never sees a protocol spelling.

Act = Callable[[Room, moderation.Actor, dict[str, Any]], object]


@dataclass(frozen=True, slots=True)
class Moderation:
    validate: Callable[[dict[str, Any], str], dict[str, Any]]
    act: Act


def _ban_until(fields: dict[str, Any]) -> Any:
    minutes = fields["minutes"]
    return timezone.now() + timedelta(minutes=minutes) if minutes else None


MODERATION: dict[str, Moderation] = {
    "kick": Moderation(
        _peer_action,
        lambda room, actor, f: moderation.kick(
            room, actor, peer_id=f["peer_id"], reason=f["reason"]
        ),
    ),
    "ban": Moderation(
        _ban,
        lambda room, actor, f: moderation.ban(
            room, actor, peer_id=f["peer_id"], reason=f["reason"], expires_at=_ban_until(f)
        ),
    ),
    "mute": Moderation(
        _peer_action,
        lambda room, actor, f: moderation.request_media_off(
            room, actor, peer_id=f["peer_id"], audio=True
        ),
    ),
    "stop-video": Moderation(
        _peer_action,
        lambda room, actor, f: moderation.request_media_off(
            room, actor, peer_id=f["peer_id"], audio=False
        ),
    ),
    "lower-hand": Moderation(
        _peer_action,
        lambda room, actor, f: moderation.lower_hand(room, actor, peer_id=f["peer_id"]),
    ),
    "promote": Moderation(
        _peer_action, lambda room, actor, f: moderation.promote(room, actor, peer_id=f["peer_id"])
    ),
    "lock": Moderation(
        _room_action, lambda room, actor, f: moderation.set_locked(room, actor, True)
    ),
    "unlock": Moderation(
        _room_action, lambda room, actor, f: moderation.set_locked(room, actor, False)
    ),
    "end": Moderation(
        _room_action, lambda room, actor, f: moderation.end_meeting(room, actor, f["reason"])
    ),
    "hide-chat": Moderation(
        _hide_chat, lambda room, actor, f: moderation.hide_message(room, actor, f["id"])
    ),
    # The waiting room (rooms/waiting.py).
    "admit": Moderation(
        _waiting, lambda room, actor, f: waiting.admit(room, actor, waiting_id=f["waiting_id"])
    ),
    "admit-all": Moderation(_nothing, lambda room, actor, f: waiting.admit_all(room, actor)),
    "decline": Moderation(
        _waiting, lambda room, actor, f: waiting.decline(room, actor, waiting_id=f["waiting_id"])
    ),
    "waiting-room": Moderation(
        _waiting_mode, lambda room, actor, f: waiting.set_mode(room, actor, f["mode"])
    ),
}
MODERATION_TYPES = tuple(MODERATION)
# What moderation.turned_off says -> the protocol's moderator-request action.
MODERATOR_REQUEST = {"audio": "mute", "video": "stop-video"}

VALIDATORS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "offer": _sdp,
    "answer": _sdp,
    "candidate": _candidate,
    "chat": _chat,
    "media": _media,
    "hand": _hand,
    "reaction": _reaction,
    "recording": _recording,
    "ping": _ping,
    "leave": _nothing,
    "sfu-publish": _sfu_sdp,
    "sfu-answer": _sfu_sdp,
    "sfu-candidate": _sfu_candidate,
    "sfu-layer": _sfu_layer,
    **{kind: entry.validate for kind, entry in MODERATION.items()},
}
SFU_TYPES = frozenset({"sfu-publish", "sfu-answer", "sfu-candidate", "sfu-layer"})


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# NaN and Infinity are not JSON (the page's JSON.parse refuses them, PostgreSQL's jsonb too).
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _check_carriable(data: Any) -> None:
    """Everything in a message must survive UTF-8 (the database, msgpack in the Redis
    layer), JSON numbers only, bounded depth. Raises ProtocolError (not_json)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ProtocolError(
                    BAD_MESSAGE, "text is not valid Unicode (a lone surrogate?)", detail=NOT_JSON
                ) from None
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -MAX_INT <= value <= MAX_INT:
                raise ProtocolError(BAD_MESSAGE, "a number is too large", detail=NOT_JSON)
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise ProtocolError(BAD_MESSAGE, "a number is too large", detail=NOT_JSON)
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise ProtocolError(
                    BAD_MESSAGE, f"nesting is deeper than {MAX_DEPTH} levels", detail=NOT_JSON
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    stack.append((key, depth + 1))
                stack.append((item, depth + 1))


def parse(text: str | None, binary: bytes | None = None) -> Message:
    """Validate one websocket frame from a client."""
    if text is None:
        raise ProtocolError(
            BAD_MESSAGE, "binary frames are not accepted; send JSON text", detail=NOT_JSON
        )
    # The limit is on the frame's UTF-8 bytes, as daphne counts them (config/daphne_limits).
    if len(text) > MAX_FRAME or len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME:
        raise ProtocolError(
            BAD_MESSAGE, f"frame is larger than {MAX_FRAME} bytes", detail=TOO_LARGE
        )
    try:
        data = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_MESSAGE, "frame is not valid JSON", detail=NOT_JSON) from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, "a message must be a JSON object", detail=NOT_JSON)
    _check_carriable(data)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(BAD_MESSAGE, "type is missing or not a string")
    validator = VALIDATORS.get(kind)
    if validator is None:
        raise ProtocolError(BAD_MESSAGE, f"unknown message type {kind[:40]!r}", detail=UNKNOWN_TYPE)
    return Message(kind, validator(data, kind))


def encode(message: dict[str, Any]) -> str:
    # Not ASCII-escaped: an emoji is 4 bytes, not a 12-byte escape pair, which keeps a
    # welcome carrying 50 long chat messages far under daphne's 1 MiB limit on what it
    # sends. Safe because parse() lets no lone surrogate in.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
