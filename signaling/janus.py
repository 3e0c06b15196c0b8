"""A client for Janus's WebSocket API (Janus 1.x, the VideoRoom plugin), for the consumers.

Confab admits; Janus only forwards media. Browsers never talk to Janus: every request goes
from a worker over one websocket per Janus server (subprotocol "janus-protocol"), carrying
the `apisecret`, so a Janus needs no port but loopback or a private network for its API.

Shape of the protocol, as Janus 1.1.2 answers it (checked against a real one in
tests/janus/test_janus.py):

- Every request carries a `transaction`; its answer carries the same one. Core requests
  (`create`, `attach`, `detach`, `destroy`) answer `success` or `error`; `keepalive` and
  `trickle` answer `ack` and nothing more; a plugin `message` answers either `success` with
  `plugindata` (VideoRoom's synchronous requests: create, destroy, kick, moderate, list...)
  or `ack` and later an `event` with the same transaction (join, publish, configure, start,
  update, leave...). Core errors (`{"janus": "error", "error": {code, reason}}`, e.g. 403
  wrong api secret, 458 no such session, 465 invalid SDP) and VideoRoom errors (data with
  `error_code` and `error`, e.g. 426 no such room, 427 room exists) both raise JanusError
  with Janus's code.
- Everything else is unsolicited and carries `session_id` and `sender` (the handle id):
  plugin `event`s (someone published, left, was kicked; the room was destroyed), and the
  core's `webrtcup`, `media`, `slowlink`, `hangup`, `detached`; `timeout` names only the
  session. They go to the handle's callbacks, in order.
- Janus destroys the sessions a websocket created when that websocket closes (with
  `reclaim_session_timeout = 0`, the default): a worker that dies leaves no ghost in Janus,
  and a connection that drops ends every session on it. A lost connection is therefore
  final for its sessions: requests on them fail at once with JanusUnavailableError, their
  handles hear "disconnected", and `Janus.for_url` opens a new connection for new sessions.

One `Janus` per (event loop, URL, api secret): the consumers of a worker share it, and
each participant has its own `Session` (with a keepalive) and handles on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, TypeAlias
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

logger = logging.getLogger(__name__)

JSON: TypeAlias = dict[str, Any]
EventCallback: TypeAlias = Callable[[JSON, JSON | None], Awaitable[None] | None]
CoreCallback: TypeAlias = Callable[[str, JSON], Awaitable[None] | None]

VIDEOROOM = "janus.plugin.videoroom"
SUBPROTOCOL = Subprotocol("janus-protocol")
UNIX_SCHEME = "ws+unix://"

REQUEST_TIMEOUT = 10.0  # seconds to wait for any answer from Janus
CONNECT_TIMEOUT = 5.0
# Janus ends a session that hears nothing for `session_timeout` (60 s by default); any
# request on the session counts, a keepalive is the cheapest.
KEEPALIVE_INTERVAL = 25.0
# Websocket pings find a Janus that stopped answering (a hung process, a dead host or
# network) within about PING_INTERVAL + PING_TIMEOUT; a killed process is seen at once,
# since its kernel closes the socket.
PING_INTERVAL = 5.0
PING_TIMEOUT = 5.0
# Late answers to requests that timed out are recognised (and dropped) for this many.
ABANDONED_KEPT = 1000

# Codes of our own, for what Janus cannot say: below Janus's range (403..499).
UNAVAILABLE = 0  # no connection to Janus, or it was lost while waiting
TIMEOUT = 1  # Janus did not answer within the timeout
UNEXPECTED = 2  # an answer of a shape this client does not know

# Janus's codes that callers switch on (core: src/apierror.h; VideoRoom: its plugin).
UNAUTHORIZED = 403
SESSION_NOT_FOUND = 458
HANDLE_NOT_FOUND = 459
JSEP_INVALID_SDP = 465
WEBRTC_STATE = 471
VIDEOROOM_NO_MESSAGE = 421
VIDEOROOM_INVALID_REQUEST = 423
VIDEOROOM_JOIN_FIRST = 424
VIDEOROOM_ALREADY_JOINED = 425
NO_SUCH_ROOM = 426
ROOM_EXISTS = 427
NO_SUCH_FEED = 428  # also "no such stream" (moderate with an unknown mid)
VIDEOROOM_MISSING_ELEMENT = 429
VIDEOROOM_INVALID_ELEMENT = 430
PUBLISHERS_FULL = 432
VIDEOROOM_UNAUTHORIZED = 433  # wrong room secret or admin_key
ALREADY_PUBLISHED = 434
NOT_PUBLISHED = 435
ID_EXISTS = 436
VIDEOROOM_INVALID_SDP = 437

# Unsolicited core events a handle can hear (plus our own "disconnected" and "timeout").
CORE_EVENTS = frozenset({"webrtcup", "media", "slowlink", "hangup", "detached", "trickle"})


class JanusError(Exception):
    """A request failed: `code` is Janus's (see the constants above) or one of ours
    (UNAVAILABLE, TIMEOUT, UNEXPECTED); `reason` is Janus's words or ours."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class JanusUnavailableError(JanusError):
    """Janus cannot be reached, the connection was lost, or it did not answer in time:
    the caller should treat this server as down (and, for a room, move elsewhere)."""


async def _call(callback: Callable[..., Awaitable[None] | None], *args: Any) -> None:
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


# --- the connection ---------------------------------------------------------------------------


@dataclass
class _Pending:
    future: asyncio.Future[JSON]
    # keepalive and trickle are answered by an `ack` alone; a plugin message's `ack` only
    # says an `event` will follow.
    ack_is_final: bool


class Janus:
    """One websocket to one Janus server, shared by every participant on this worker.

    Get it with `await Janus.for_url(url, api_secret)`. Once its connection is lost it
    stays closed (Janus ended its sessions with it); `for_url` then returns a new one."""

    # Per event loop: a loop owns its sockets, and tests run a loop per test.
    _instances: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[tuple[str, str], Janus]
    ] = weakref.WeakKeyDictionary()
    _locks: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]
    ] = weakref.WeakKeyDictionary()

    def __init__(self, url: str, api_secret: str, connection: ClientConnection) -> None:
        self.url = url
        self.api_secret = api_secret
        self._connection = connection
        self._pending: dict[str, _Pending] = {}
        # Transactions whose requests timed out (-> ack_is_final), oldest first.
        self._abandoned: dict[str, bool] = {}
        self._sessions: dict[int, Session] = {}
        self._closed_reason: str | None = None
        self._control: Handle | None = None
        self._control_lock = asyncio.Lock()
        self._reader = asyncio.get_running_loop().create_task(
            self._read(), name=f"janus reader {url}"
        )

    # -- getting one

    @classmethod
    async def for_url(
        cls, url: str, api_secret: str, *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> Janus:
        """The shared, connected instance for `url`; connects (again) if there is none or
        the last one lost its connection. Raises JanusUnavailableError if Janus cannot be
        reached within `connect_timeout` seconds."""
        loop = asyncio.get_running_loop()
        key = (url, api_secret)
        instances = cls._instances.setdefault(loop, {})
        janus = instances.get(key)
        if janus is not None and not janus.closed:
            return janus
        lock = cls._locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())
        async with lock:
            janus = instances.get(key)
            if janus is None or janus.closed:
                janus = await cls.connect(url, api_secret, connect_timeout=connect_timeout)
                instances[key] = janus
            return janus

    @classmethod
    async def connect(
        cls, url: str, api_secret: str, *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> Janus:
        """A new connection of its own (not shared): `for_url` is what consumers want."""
        options: dict[str, Any] = {
            "subprotocols": [SUBPROTOCOL],
            "open_timeout": connect_timeout,
            "ping_interval": PING_INTERVAL,
            "ping_timeout": PING_TIMEOUT,
            "close_timeout": 2,
            # Janus's libwebsockets offers no compression; SDPs are small anyway.
            "compression": None,
            "max_size": 4 * 1024 * 1024,
        }
        try:
            if url.startswith(UNIX_SCHEME):
                # ws+unix:///run/janus/janus.sock: Janus's `ws_unix` socket (the compose
                # setup, where Janus shares the host's network and the workers do not).
                path = urlsplit(url).path
                connection = await unix_connect(path, "ws://localhost/", **options)
            else:
                # Janus is on loopback or a private network: never through an HTTP
                # proxy that the environment might name.
                connection = await connect(url, proxy=None, **options)
        except (OSError, TimeoutError, WebSocketException) as error:
            raise JanusUnavailableError(
                UNAVAILABLE, f"cannot connect to {url}: {type(error).__name__}: {error}"
            ) from error
        if connection.subprotocol != SUBPROTOCOL:
            await connection.close()
            raise JanusUnavailableError(UNAVAILABLE, f"{url} does not speak {SUBPROTOCOL}")
        return cls(url, api_secret, connection)

    @classmethod
    async def close_all(cls) -> None:
        """Close every connection of this event loop (shutdown, tests)."""
        instances = cls._instances.pop(asyncio.get_running_loop(), {})
        for janus in list(instances.values()):
            await janus.close()

    # -- state

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    @property
    def closed_reason(self) -> str | None:
        return self._closed_reason

    async def close(self) -> None:
        """Close the connection: Janus ends every session on it; ours hear
        "disconnected"."""
        if not self.closed:
            self._fail_everything("closed by this worker")
        await self._connection.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def __repr__(self) -> str:
        state = f"closed: {self._closed_reason}" if self.closed else "open"
        return f"<Janus {self.url} {state}, {len(self._sessions)} sessions>"

    # -- requests

    async def request(
        self, payload: JSON, *, ack_is_final: bool = False, request_timeout: float = REQUEST_TIMEOUT
    ) -> JSON:
        """Send one request (a dict with "janus" and whatever it needs; the transaction
        and api secret are added) and return Janus's answer to it: `success`, `ack`,
        `event`, `server_info`... Raises JanusError for an `error` answer,
        JanusUnavailableError when the connection is or gets lost or nothing answers in
        `request_timeout` seconds."""
        if self._closed_reason is not None:
            raise JanusUnavailableError(UNAVAILABLE, f"{self.url}: {self._closed_reason}")
        transaction = secrets.token_hex(12)
        message = {**payload, "transaction": transaction, "apisecret": self.api_secret}
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = _Pending(future, ack_is_final)
        try:
            try:
                await self._connection.send(json.dumps(message))
            except ConnectionClosed as error:
                raise JanusUnavailableError(
                    UNAVAILABLE, f"{self.url}: connection lost ({error})"
                ) from error
            try:
                answer = await asyncio.wait_for(future, request_timeout)
            except TimeoutError:
                self._abandon(transaction, ack_is_final)
                raise JanusUnavailableError(
                    TIMEOUT,
                    f"{self.url}: no answer to {payload.get('janus')!r} in {request_timeout:g} s",
                ) from None
        finally:
            self._pending.pop(transaction, None)
        if answer.get("janus") == "error":
            failure = answer.get("error") or {}
            raise JanusError(int(failure.get("code", UNEXPECTED)), str(failure.get("reason", "")))
        return answer

    async def info(self, *, request_timeout: float = REQUEST_TIMEOUT) -> JSON:
        """Janus's `server_info` (version, plugins, transports, session timeout...)."""
        answer = await self.request({"janus": "info"}, request_timeout=request_timeout)
        if answer.get("janus") != "server_info":
            raise JanusError(UNEXPECTED, f"info answered {answer.get('janus')!r}")
        return answer

    async def create_session(self, *, keepalive_interval: float = KEEPALIVE_INTERVAL) -> Session:
        """A new Janus session on this connection, kept alive until destroyed."""
        answer = await self.request({"janus": "create"})
        session_id = _data_id(answer)
        session = Session(self, session_id, keepalive_interval)
        self._sessions[session_id] = session
        session._start_keepalive()
        return session

    async def control(self) -> Handle:
        """A VideoRoom handle of this worker's own, for requests that belong to no
        participant (create, destroy, kick, moderate, list): one per connection, made on
        first use and again if its session ends."""
        async with self._control_lock:
            handle = self._control
            if handle is None or handle.detached or handle.session.closed:
                session = await self.create_session()
                handle = await session.attach(VIDEOROOM)
                self._control = handle
            return handle

    # -- reading

    async def _read(self) -> None:
        reason = "connection closed"
        try:
            async for raw in self._connection:
                try:
                    message = json.loads(raw)
                except ValueError:
                    logger.warning(
                        "janus %s sent something that is not JSON: %.200r", self.url, raw
                    )
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        except ConnectionClosed as error:
            reason = f"connection lost ({error})"
        except Exception as error:  # a bug here must not leave waiters hanging
            logger.exception("janus %s: reader failed", self.url)
            reason = f"reader failed: {error}"
        finally:
            if not self.closed:
                logger.warning("janus %s: %s", self.url, reason)
                self._fail_everything(reason)

    def _dispatch(self, message: JSON) -> None:
        kind = message.get("janus")
        transaction = message.get("transaction")
        pending = self._pending.get(transaction) if isinstance(transaction, str) else None
        if pending is None and transaction in self._abandoned:
            # The late answer to a request that timed out: its caller has moved on (and may
            # have undone it); handing it to on_event as news would mislead.
            if kind != "ack" or self._abandoned[transaction]:
                del self._abandoned[transaction]
            logger.debug("janus %s: late answer dropped: %.300r", self.url, message)
            return
        if pending is not None:
            if kind == "ack" and not pending.ack_is_final:
                return  # the event with this transaction follows
            if not pending.future.done():
                pending.future.set_result(message)
            return
        session = self._sessions.get(message.get("session_id") or 0)
        if kind == "timeout":
            if session is not None:
                session._ended("timeout", "Janus timed the session out")
            return
        if session is None:
            if kind not in ("ack", "success") and transaction is None:
                logger.debug("janus %s: event for no session we know: %.300r", self.url, message)
            return  # e.g. the late answer to a request that timed out
        handle = session._handles.get(message.get("sender") or 0)
        if handle is None:
            logger.debug("janus %s: event for no handle we know: %.300r", self.url, message)
            return
        handle._receive(message)

    def _abandon(self, transaction: str, ack_is_final: bool) -> None:
        self._abandoned[transaction] = ack_is_final
        while len(self._abandoned) > ABANDONED_KEPT:
            del self._abandoned[next(iter(self._abandoned))]

    def _fail_everything(self, reason: str) -> None:
        self._closed_reason = reason
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    JanusUnavailableError(UNAVAILABLE, f"{self.url}: {reason}")
                )
        self._pending.clear()
        for session in list(self._sessions.values()):
            session._ended("disconnected", reason)
        self._sessions.clear()


def _data_id(answer: JSON) -> int:
    data = answer.get("data")
    if answer.get("janus") != "success" or not isinstance(data, dict) or "id" not in data:
        raise JanusError(UNEXPECTED, f"expected success with an id, got {answer!r:.300}")
    return int(data["id"])


# --- sessions and handles ----------------------------------------------------------------------


class Session:
    """A Janus session: a participant's, or the worker's control session. Kept alive by
    a keepalive every `keepalive_interval` seconds until `destroy()`; ended by Janus if
    the connection drops or the keepalives stop (then `closed` and `on_close`)."""

    def __init__(self, janus: Janus, session_id: int, keepalive_interval: float) -> None:
        self.janus = janus
        self.id = session_id
        self.keepalive_interval = keepalive_interval
        self._handles: dict[int, Handle] = {}
        self._keepalive: asyncio.Task[None] | None = None
        self.closed_reason: str | None = None
        # Called once with ("disconnected" | "timeout" | "destroyed", reason).
        self.on_close: Callable[[str, str], Awaitable[None] | None] | None = None

    @classmethod
    async def create(
        cls, janus: Janus, *, keepalive_interval: float = KEEPALIVE_INTERVAL
    ) -> Session:
        return await janus.create_session(keepalive_interval=keepalive_interval)

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def __repr__(self) -> str:
        return f"<Session {self.id} on {self.janus.url}{' closed' if self.closed else ''}>"

    async def request(
        self, payload: JSON, *, ack_is_final: bool = False, request_timeout: float = REQUEST_TIMEOUT
    ) -> JSON:
        if self.closed_reason is not None:
            self._raise_closed()
        try:
            return await self.janus.request(
                {**payload, "session_id": self.id},
                ack_is_final=ack_is_final,
                request_timeout=request_timeout,
            )
        except JanusError as error:
            if error.code == SESSION_NOT_FOUND:
                self._ended("timeout", error.reason)
            raise

    def _raise_closed(self) -> NoReturn:
        """Requests on an ended session fail at once: as unavailable when the connection
        was lost (the caller should move to another Janus), as 458 otherwise."""
        reason = f"{self.janus.url}: session {self.id} ended: {self.closed_reason}"
        if self.closed_reason == "disconnected":
            raise JanusUnavailableError(UNAVAILABLE, reason)
        raise JanusError(SESSION_NOT_FOUND, reason)

    async def attach(self, plugin: str = VIDEOROOM) -> Handle:
        answer = await self.request({"janus": "attach", "plugin": plugin})
        handle = Handle(self, _data_id(answer), plugin)
        self._handles[handle.id] = handle
        return handle

    async def keepalive(self) -> None:
        await self.request({"janus": "keepalive"}, ack_is_final=True)

    async def destroy(self) -> None:
        """End the session (Janus detaches its handles: a publisher leaves the room).
        Never raises: a session whose connection is gone is already ended by Janus, and
        one that does not answer ends by itself once the keepalives stop."""
        if self.closed:
            return
        self._stop_keepalive()
        try:
            await self.request({"janus": "destroy"})
        except JanusError as error:
            if error.code not in (UNAVAILABLE, SESSION_NOT_FOUND):
                logger.warning(
                    "janus %s: destroying session %s: %s", self.janus.url, self.id, error
                )
        self._ended("destroyed", "destroyed by this worker")

    # -- internals

    def _start_keepalive(self) -> None:
        self._keepalive = asyncio.get_running_loop().create_task(
            self._keep_alive(), name=f"janus keepalive {self.id}"
        )

    def _stop_keepalive(self) -> None:
        task, self._keepalive = self._keepalive, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _keep_alive(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.keepalive_interval)
            try:
                await self.keepalive()
            except JanusUnavailableError as error:
                if error.code != TIMEOUT:
                    return  # the connection is gone: the reader has ended this session
                # A busy Janus: the next keepalive may get through before it times us out.
                logger.warning(
                    "janus %s: keepalive of session %s: %s", self.janus.url, self.id, error
                )
            except JanusError:
                return  # 458: Janus no longer knows it; request() has ended it

    def _ended(self, kind: str, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = kind
        self._stop_keepalive()
        self.janus._sessions.pop(self.id, None)
        for handle in list(self._handles.values()):
            handle._ended(kind, reason)
        self._handles.clear()
        if self.on_close is not None:
            _spawn(_call(self.on_close, kind, reason), f"janus session {self.id} on_close")


_background: set[asyncio.Task[None]] = set()


def _spawn(coroutine: Awaitable[None], name: str) -> None:
    async def guarded() -> None:
        try:
            await coroutine
        except Exception:
            logger.exception("janus callback %s failed", name)

    task = asyncio.get_running_loop().create_task(guarded(), name=name)
    _background.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_background.discard)


class Handle:
    """A handle attached to a plugin (the VideoRoom) in a session.

    Set `on_event(data, jsep)` for unsolicited plugin events (`plugindata.data` and the
    JSEP that came with it, if any), and `on_janus(kind, message)` for the core's
    "webrtcup", "media", "slowlink", "hangup", "detached", "trickle", and for our own
    "disconnected" (the connection to Janus was lost) and "timeout" (Janus ended the
    session). Both are called in the order Janus sent the events, one at a time, and may
    be coroutines; an event that arrives before a callback is set is dropped. A handle
    that ends hears it once: "detached", "timeout" or "disconnected" (nothing when we
    detach it ourselves or destroy its session). When Janus times a session out it sends
    the handle's "detached" or the session's "timeout" first, in either order."""

    def __init__(self, session: Session, handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.on_event: EventCallback | None = None
        self.on_janus: CoreCallback | None = None
        # Why the handle is gone: "detached" (by us or by Janus), "destroyed" (its session,
        # by us), "timeout" (its session, by Janus), "disconnected" (the connection).
        self.closed_reason: str | None = None
        self._queue: asyncio.Queue[tuple[str, JSON] | None] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Handle {self.id} {self.plugin} in session {self.session.id}>"

    @property
    def detached(self) -> bool:
        return self.closed_reason is not None

    # -- requests

    async def send(
        self, body: JSON, jsep: JSON | None = None, *, request_timeout: float = REQUEST_TIMEOUT
    ) -> tuple[JSON, JSON | None]:
        """A plugin `message`, synchronous or not: returns (plugindata.data, jsep) of the
        `success` or of the `event` that answers it. Raises JanusError for a core error
        or a plugin `error_code`."""
        if self.closed_reason is not None:
            if self.session.closed:
                self.session._raise_closed()
            raise JanusError(HANDLE_NOT_FOUND, f"handle {self.id} is {self.closed_reason}")
        payload: JSON = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        answer = await self.session.request(payload, request_timeout=request_timeout)
        if answer.get("janus") not in ("success", "event"):
            raise JanusError(UNEXPECTED, f"message answered {answer.get('janus')!r}")
        plugindata = answer.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        if not isinstance(data, dict):
            raise JanusError(UNEXPECTED, f"answer without plugindata: {answer!r:.300}")
        if "error_code" in data:
            raise JanusError(int(data["error_code"]), str(data.get("error", "")))
        answer_jsep = answer.get("jsep")
        return data, answer_jsep if isinstance(answer_jsep, dict) else None

    async def request(self, body: JSON, *, request_timeout: float = REQUEST_TIMEOUT) -> JSON:
        """A synchronous plugin request (VideoRoom create, destroy, kick, moderate,
        listparticipants...): returns plugindata.data."""
        data, _ = await self.send(body, request_timeout=request_timeout)
        return data

    async def message(
        self, body: JSON, jsep: JSON | None = None, *, request_timeout: float = REQUEST_TIMEOUT
    ) -> tuple[JSON, JSON | None]:
        """An asynchronous plugin request (join, publish, configure, start, update...):
        Janus acks it, then answers with an event carrying the same transaction; returns
        that event's (plugindata.data, jsep)."""
        return await self.send(body, jsep, request_timeout=request_timeout)

    async def trickle(self, candidate: JSON | Sequence[JSON] | None) -> None:
        """Pass a browser's ICE candidate ({candidate, sdpMid, sdpMLineIndex}), several,
        or None when it has gathered them all."""
        payload: JSON = {"janus": "trickle", "handle_id": self.id}
        if candidate is None:
            payload["candidate"] = {"completed": True}
        elif isinstance(candidate, dict):
            payload["candidate"] = candidate
        else:
            payload["candidates"] = list(candidate)
        await self.session.request(payload, ack_is_final=True)

    async def hangup(self) -> None:
        """Close this handle's PeerConnection but keep the handle."""
        await self.session.request({"janus": "hangup", "handle_id": self.id})

    async def detach(self) -> None:
        """Detach from the plugin (a publisher leaves its room). Never raises: a handle
        of an ended session is gone already."""
        if self.detached:
            return
        try:
            await self.session.request({"janus": "detach", "handle_id": self.id})
        except JanusError as error:
            if error.code not in (UNAVAILABLE, SESSION_NOT_FOUND, HANDLE_NOT_FOUND):
                logger.warning("janus %s: detaching %s: %s", self.session.janus.url, self.id, error)
        self._ended("detached", "detached by this worker")

    # -- events

    def _receive(self, message: JSON) -> None:
        kind = message.get("janus")
        if kind == "event":
            self._enqueue("event", message)
        elif kind in CORE_EVENTS:
            self._enqueue(str(kind), message)
            if kind == "detached":
                self._ended_locally()
        else:
            logger.debug("janus: handle %s heard %.300r", self.id, message)

    def _ended(self, kind: str, reason: str) -> None:
        """The handle is gone: tell on_janus (unless we detached it ourselves)."""
        if self.detached:
            return
        if kind in ("disconnected", "timeout"):
            self._enqueue(kind, {"janus": kind, "reason": reason})
        self._ended_locally(kind)

    def _ended_locally(self, kind: str = "detached") -> None:
        self.closed_reason = kind
        self.session._handles.pop(self.id, None)
        self._queue.put_nowait(None)  # the dispatcher ends after what is queued

    def _enqueue(self, kind: str, message: JSON) -> None:
        if self.detached:
            return
        self._queue.put_nowait((kind, message))
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"janus handle {self.id} events"
            )

    async def _dispatch(self) -> None:
        while (item := await self._queue.get()) is not None:
            kind, message = item
            try:
                if kind == "event":
                    if self.on_event is not None:
                        plugindata = message.get("plugindata") or {}
                        jsep = message.get("jsep")
                        await _call(
                            self.on_event,
                            plugindata.get("data") or {},
                            jsep if isinstance(jsep, dict) else None,
                        )
                elif self.on_janus is not None:
                    await _call(self.on_janus, kind, message)
            except Exception:
                logger.exception("janus handle %s: %s callback failed", self.id, kind)


# --- health ------------------------------------------------------------------------------------


async def info(url: str, api_secret: str, *, request_timeout: float = 3.0) -> JSON:
    """`server_info` of the Janus at `url`, over this worker's shared connection (made if
    needed), for /healthz. Raises JanusUnavailableError if it does not answer within
    `request_timeout` seconds. Janus answers `info` without checking the api secret:
    this proves it is up, not that the secret is right (the first `create` does)."""
    janus = await Janus.for_url(url, api_secret, connect_timeout=request_timeout)
    return await janus.info(request_timeout=request_timeout)


# --- VideoRoom ---------------------------------------------------------------------------------


@dataclass
class Publisher:
    """An active publisher in a room, as `joined` and `publishers` events list them."""

    id: int
    display: str
    streams: list[JSON]  # {type, mindex, mid, codec, description?, simulcast?, moderated?...}
    raw: JSON = field(repr=False)

    @classmethod
    def from_json(cls, data: JSON) -> Publisher:
        return cls(
            id=int(data["id"]),
            display=str(data.get("display", "")),
            streams=list(data.get("streams") or []),
            raw=data,
        )


def publishers_of(data: JSON) -> list[Publisher]:
    """The publishers listed in a `joined` answer or a `publishers` event."""
    return [Publisher.from_json(p) for p in data.get("publishers") or [] if "id" in p]


@dataclass
class Joined:
    """A publisher handle's `join` answer."""

    id: int  # our participant id in the room (Janus chose it unless we gave one)
    private_id: int  # pass to join_subscriber to tie a subscription to this participant
    publishers: list[Publisher]  # who publishes already
    attendees: list[JSON]  # non-publishing participants, only with notify_joining
    raw: JSON = field(repr=False)


@dataclass
class Subscription:
    """The answer to a subscriber's `join` or `update`."""

    jsep: JSON | None  # Janus's offer: the page answers it, then start(handle, answer)
    # Our m-lines: {mindex, mid, type, active, feed_id, feed_mid, feed_display,
    # feed_description, codec, simulcast?, send, ready}; `mid` is ours, `feed_mid` the
    # publisher's. `active` false: an m-line left over from a stream that went away.
    streams: list[JSON]
    # True when Janus postponed the update (an `updating` answer, another renegotiation
    # under way): the offer comes later in an `updated` event through on_event.
    postponed: bool = False


def _expect(data: JSON, key: str, value: object | None = None) -> None:
    if key not in data or (value is not None and data[key] != value):
        raise JanusError(
            UNEXPECTED, f"expected {key!r}{f'={value!r}' if value else ''}: {data!r:.300}"
        )


async def create_room(
    handle: Handle,
    room: int,
    *,
    secret: str,
    publishers: int,
    description: str = "",
    bitrate: int = 0,
    bitrate_cap: bool = False,
    fir_freq: int = 10,
    videocodec: str = "vp8",
    audiocodec: str = "opus",
    notify_joining: bool = False,
    audiolevel_event: bool = False,
    is_private: bool = False,
    admin_key: str | None = None,
    options: JSON | None = None,
) -> bool:
    """Create VideoRoom `room` (not permanent: it lives until destroyed or Janus stops).
    Returns True if created, False if it existed already (427): creating is idempotent,
    so two workers racing to create the same room both succeed. `bitrate` caps each
    publisher (bit/s, 0 = none); `fir_freq` is how often (s) Janus asks publishers for a
    keyframe; `options` adds any other room setting of janus.plugin.videoroom.jcfg."""
    body: JSON = {
        "request": "create",
        "room": room,
        "permanent": False,
        "secret": secret,
        "publishers": publishers,
        "description": description,
        "bitrate": bitrate,
        "bitrate_cap": bitrate_cap,
        "fir_freq": fir_freq,
        "videocodec": videocodec,
        "audiocodec": audiocodec,
        "notify_joining": notify_joining,
        "audiolevel_event": audiolevel_event,
        "is_private": is_private,
        **(options or {}),
    }
    if admin_key is not None:
        body["admin_key"] = admin_key
    try:
        data = await handle.request(body)
    except JanusError as error:
        if error.code == ROOM_EXISTS:
            return False
        raise
    _expect(data, "videoroom", "created")
    return True


async def destroy_room(handle: Handle, room: int, secret: str) -> bool:
    """Destroy `room` (its participants hear a `destroyed` event). True if destroyed,
    False if there was no such room (426): destroying is idempotent."""
    try:
        await handle.request({"request": "destroy", "room": room, "secret": secret})
    except JanusError as error:
        if error.code == NO_SUCH_ROOM:
            return False
        raise
    return True


async def room_exists(handle: Handle, room: int) -> bool:
    data = await handle.request({"request": "exists", "room": room})
    return bool(data.get("exists"))


async def list_rooms(handle: Handle, *, admin_key: str | None = None) -> list[JSON]:
    """Every public room (and private ones with the plugin's admin_key), each with
    `num_participants`: a measure of this server's load."""
    body: JSON = {"request": "list"}
    if admin_key is not None:
        body["admin_key"] = admin_key
    data = await handle.request(body)
    return list(data.get("list") or [])


async def list_participants(handle: Handle, room: int) -> list[JSON]:
    """[{id, display, publisher: bool, talking?}] of everyone joined as a publisher
    (publishing or not). Raises JanusError 426 for no such room."""
    data = await handle.request({"request": "listparticipants", "room": room})
    return list(data.get("participants") or [])


async def kick(handle: Handle, room: int, secret: str, participant_id: int) -> bool:
    """Kick a participant: Janus closes their publisher PeerConnection, tells their
    handle `{"leaving": "ok", "reason": "kicked"}` and the others `{"kicked": id}`. It
    does not close their subscriptions (unless the room requires private ids) and does
    not stop them joining again: Confab's admission does that. True if kicked, False if
    no such participant (428)."""
    try:
        await handle.request(
            {"request": "kick", "room": room, "secret": secret, "id": participant_id}
        )
    except JanusError as error:
        if error.code == NO_SUCH_FEED:
            return False
        raise
    return True


async def moderate(
    handle: Handle, room: int, secret: str, participant_id: int, mid: str, mute: bool
) -> None:
    """Server-side mute (or unmute) of one published stream (`mid` of the publisher's
    m-line): Janus stops relaying it to every subscriber, whatever the page does.
    Raises JanusError 428 if the participant or the stream does not exist (a participant
    who has not published has no streams), 433 for a wrong secret."""
    await handle.request(
        {
            "request": "moderate",
            "room": room,
            "secret": secret,
            "id": participant_id,
            "mid": mid,
            "mute": mute,
        }
    )


async def join_publisher(
    handle: Handle,
    room: int,
    *,
    display: str,
    participant_id: int | None = None,
    token: str | None = None,
) -> Joined:
    """Join `room` as a participant that may publish. Returns our id, private id and
    who publishes already (with their streams); the handle then hears `publishers`,
    `unpublished`, `leaving`, `kicked`, `joining` (with notify_joining), `destroyed`.
    Raises JanusError 426 (no such room), 436 (id taken), 425 (already joined)."""
    body: JSON = {"request": "join", "ptype": "publisher", "room": room, "display": display}
    if participant_id is not None:
        body["id"] = participant_id
    if token is not None:
        body["token"] = token
    data, _ = await handle.message(body)
    _expect(data, "videoroom", "joined")
    return Joined(
        id=int(data["id"]),
        private_id=int(data.get("private_id", 0)),
        publishers=publishers_of(data),
        attendees=list(data.get("attendees") or []),
        raw=data,
    )


async def publish(
    handle: Handle,
    jsep_offer: JSON,
    *,
    descriptions: Iterable[JSON] = (),
    bitrate: int | None = None,
    display: str | None = None,
) -> JSON:
    """Publish with the page's offer ({"type": "offer", "sdp": ...}); returns Janus's
    answer for the page. `descriptions` ([{mid, description}]) label streams, e.g. the
    camera and the screen. Raises JanusError 465 for an SDP Janus cannot parse, 434 if
    already publishing, 432 if the room has all its publishers."""
    body: JSON = {"request": "publish"}
    descriptions = list(descriptions)
    if descriptions:
        body["descriptions"] = descriptions
    if bitrate is not None:
        body["bitrate"] = bitrate
    if display is not None:
        body["display"] = display
    data, jsep = await handle.message(body, jsep_offer)
    _expect(data, "configured", "ok")
    if jsep is None or jsep.get("type") != "answer":
        raise JanusError(UNEXPECTED, f"publish answered without an SDP answer: {data!r:.300}")
    return jsep


async def configure_publisher(
    handle: Handle,
    *,
    jsep_offer: JSON | None = None,
    streams: Iterable[JSON] = (),
    descriptions: Iterable[JSON] = (),
    bitrate: int | None = None,
    keyframe: bool | None = None,
) -> JSON | None:
    """Renegotiate (the page's new offer, e.g. a screen added) or tweak a publisher;
    returns Janus's answer when an offer was given. `streams`: [{mid, send?, keyframe?}]."""
    body: JSON = {"request": "configure"}
    if streams := list(streams):
        body["streams"] = streams
    if descriptions := list(descriptions):
        body["descriptions"] = descriptions
    if bitrate is not None:
        body["bitrate"] = bitrate
    if keyframe is not None:
        body["keyframe"] = keyframe
    data, jsep = await handle.message(body, jsep_offer)
    _expect(data, "configured", "ok")
    return jsep


async def unpublish(handle: Handle) -> bool:
    """Stop publishing (the others hear `unpublished`); the handle stays in the room.
    True if it was publishing, False if not (435)."""
    try:
        await handle.message({"request": "unpublish"})
    except JanusError as error:
        if error.code == NOT_PUBLISHED:
            return False
        raise
    return True


async def leave(handle: Handle) -> None:
    """Leave the room (publisher: also unpublishes; subscriber: ends the subscription)."""
    await handle.message({"request": "leave"})


async def join_subscriber(
    handle: Handle,
    room: int,
    streams: Iterable[JSON],
    *,
    private_id: int | None = None,
    use_msid: bool = False,
    autoupdate: bool = True,
) -> Subscription:
    """Open one multistream subscription on this handle: `streams` is [{feed, mid?}]
    (every stream of `feed` without a mid). Returns Janus's offer and the stream map
    (our mid -> feed_id, feed_mid); answer it with start(handle, answer). With
    `autoupdate`, Janus renegotiates by itself when a subscribed publisher leaves (an
    `updated` event with a new offer through on_event). Raises JanusError 428 for a
    feed that does not exist (or publishes nothing), 426 for no such room."""
    body: JSON = {
        "request": "join",
        "ptype": "subscriber",
        "room": room,
        "streams": list(streams),
        "use_msid": use_msid,
        "autoupdate": autoupdate,
    }
    if private_id is not None:
        body["private_id"] = private_id
    data, jsep = await handle.message(body)
    _expect(data, "videoroom", "attached")
    return Subscription(jsep=jsep, streams=list(data.get("streams") or []))


async def subscribe_update(
    handle: Handle,
    *,
    subscribe: Iterable[JSON] = (),
    unsubscribe: Iterable[JSON] = (),
) -> Subscription:
    """Add streams ([{feed, mid?}]) to and remove streams ([{feed}, {feed, mid},
    {sub_mid}]) from the subscription in one renegotiation (Janus 1.x `update`).
    Returns the new offer and stream map (`updated`), no offer when nothing changed in
    the SDP, or `postponed=True` when Janus queued it behind a renegotiation under way:
    the offer then arrives as an `updated` event through on_event."""
    body: JSON = {"request": "update"}
    if subscribe := list(subscribe):
        body["subscribe"] = subscribe
    if unsubscribe := list(unsubscribe):
        body["unsubscribe"] = unsubscribe
    if len(body) == 1:
        raise ValueError("subscribe_update needs something to subscribe or unsubscribe")
    data, jsep = await handle.message(body)
    if data.get("videoroom") == "updating":
        return Subscription(jsep=None, streams=[], postponed=True)
    _expect(data, "videoroom", "updated")
    return Subscription(jsep=jsep, streams=list(data.get("streams") or []))


async def start(handle: Handle, jsep_answer: JSON | None = None) -> None:
    """Complete a subscription (or a renegotiation of it) with the page's answer; with
    no answer, resume a paused subscription."""
    data, _ = await handle.message({"request": "start"}, jsep_answer)
    _expect(data, "started", "ok")


async def pause(handle: Handle) -> None:
    data, _ = await handle.message({"request": "pause"})
    _expect(data, "paused", "ok")


async def configure_subscriber(
    handle: Handle, streams: Iterable[JSON] = (), *, restart: bool = False
) -> JSON | None:
    """Tweak subscribed streams ([{mid, send?, substream?, temporal?, fallback?}], our
    mids) or, with `restart`, ask for an ICE-restart offer (returned)."""
    body: JSON = {"request": "configure"}
    if streams := list(streams):
        body["streams"] = streams
    if restart:
        body["restart"] = True
    data, jsep = await handle.message(body)
    _expect(data, "configured", "ok")
    return jsep


async def configure_substream(
    handle: Handle,
    mid: str,
    substream: Literal[0, 1, 2],
    *,
    temporal: Literal[0, 1, 2] | None = None,
    fallback_us: int | None = None,
) -> None:
    """Choose the simulcast layer a subscribed video stream (`mid`: ours, not the
    publisher's) receives: 0 low, 1 medium, 2 high. Janus drops to a lower layer by
    itself when the chosen one stops arriving for `fallback_us` (default 250 ms)."""
    stream: JSON = {"mid": mid, "substream": substream}
    if temporal is not None:
        stream["temporal"] = temporal
    if fallback_us is not None:
        stream["fallback"] = fallback_us
    await configure_subscriber(handle, [stream])
