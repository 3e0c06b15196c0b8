"""The size of what a client may send over a websocket, enforced by daphne itself.

`signaling.protocol.parse` refuses a frame over `MAX_FRAME` (72 KiB), but only after daphne
(autobahn underneath) has read the whole frame into memory, decoded it and queued it for the
consumer. autobahn can refuse earlier: it knows a frame's length from the frame's header,
before any of its payload arrives. This module makes every daphne that serves Confab refuse,
at that header, any frame or fragmented message whose payload is over `DAPHNE_MAX_FRAME`:

- the client gets `error bad_message` (`detail: too_large`) and a close with 1009,
- nothing more is read from the socket (the rest of the frame stays in the kernel's socket
  buffer, outside the process, and is thrown away with the socket),
- the connection is dropped 1 s later (`DROP_AFTER`), and the consumer's `disconnect` runs
  as for any dropped socket (the seat is held for resume).

docs/protocol.md ("Limits", close code 1009) is the contract; docs/security.md has the
figures.

Why a module and not a command-line option: daphne's `--websocket-max-frame-size` and
`--websocket-max-message-size` set the same autobahn limits, but every way of starting a
worker (the Makefile, deploy/, the tests, bench/) would have to pass them, and autobahn's
own reaction to a frame over them is to drop the TCP connection without a word (its server
default `failByDrop`), which the page sees as 1006. The daphne command line imports the
application module (config/asgi.py, which calls `install()`) before it builds its server, so
the protocol installed here serves every connection however daphne was started.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne import ws_protocol

from signaling import protocol

logger = logging.getLogger(__name__)

# Bytes of payload. The protocol's own limit, MAX_FRAME, is 72 KiB of the frame's UTF-8 text
# (docs/protocol.md, "Limits"): no frame parse() accepts comes near this one, and a frame
# between the two is still read and answered by parse() (bad_message, the connection stays
# open). The 8 KiB between them keep this refusal for what no page ever sends.
DAPHNE_MAX_FRAME = 80 * 1024
CLOSE_MESSAGE_TOO_BIG = 1009  # RFC 6455: "a message that is too big for it to process"
# Seconds a refused client has to read the error and the close before its socket is dropped.
DROP_AFTER = 1.0

# The same error parse() gives a frame over MAX_FRAME: the page words `too_large` once.
TOO_LARGE_ERROR = protocol.encode(
    protocol.error(
        protocol.BAD_MESSAGE,
        f"frame is larger than {protocol.MAX_FRAME} bytes",
        detail=protocol.TOO_LARGE,
    )
).encode()


class LimitedWebSocketProtocol(ws_protocol.WebSocketProtocol):
    """daphne's websocket protocol, refusing frames and messages over DAPHNE_MAX_FRAME.

    The mixedCase names are autobahn's and daphne's: they are overridden, not chosen."""

    # autobahn's close-handshake timer (sendCloseFrame starts it), declared for mypy, which
    # cannot infer its type from this class's use of it.
    closeHandshakeTimeoutCall: Any  # noqa: N815

    def onMessageFrameBegin(self, length: int) -> None:  # noqa: N802
        # autobahn calls this with each data frame's length as soon as the frame's header is
        # parsed, before any of its payload is read. A message may come in many frames;
        # autobahn keeps them all until the last, so the bound is on the message so far, this
        # frame included (a message of one frame is just that frame).
        #
        # autobahn's own limits (daphne's --websocket-max-frame-size and
        # --websocket-max-message-size, 1 MiB each) are left as they are: this check is
        # stricter and comes first. maxMessagePayloadSize could not be lowered to 80 KiB
        # anyway: autobahn applies it to what the server sends too, and a welcome carrying
        # fifty chat messages of history can be well over 80 KiB.
        total = self.message_data_total_length + length
        if not self.failedByMe and total > DAPHNE_MAX_FRAME:
            self._max_message_size_exceeded(
                total,
                DAPHNE_MAX_FRAME,
                f"received WebSocket message of {total} octets exceeds {DAPHNE_MAX_FRAME}",
            )
        # autobahn's bookkeeping; its own checks skip a connection that failedByMe.
        super().onMessageFrameBegin(length)

    def _max_message_size_exceeded(self, msg_size: int, max_msg_size: int, reason: str) -> None:
        # autobahn's hook for a frame or message over a limit (from a frame's header, or from
        # inflating a compressed frame, though daphne accepts no compression). autobahn's
        # version drops the TCP connection with nothing sent; this one tells the client why.
        logger.warning(
            "refused a websocket message of %d bytes (over %d) from %s",
            msg_size,
            max_msg_size,
            getattr(self, "client_addr", None),
        )
        # As autobahn's failing would: nothing more of this message is kept or delivered
        # (onMessageFrameData and onMessageEnd skip a connection that failedByMe).
        self.failedByMe = True
        if self.state == self.STATE_OPEN:
            self.sendMessage(TOO_LARGE_ERROR, isBinary=False)
            self.sendCloseFrame(code=CLOSE_MESSAGE_TOO_BIG, reasonUtf8=b"too_large")
        # Read nothing more. What is already buffered (at most one read, 64 KiB) goes now;
        # with self.data empty, processData() stops at this header.
        self.data = b""
        self.transport.pauseProducing()
        # FIN after the error and the close frame. Closing the socket outright with unread
        # input would make the kernel reset the connection at once, throwing away whatever
        # of our last frames it had not sent yet.
        self.transport.loseWriteConnection()
        # The client cannot answer our close while it is still sending the frame, and we no
        # longer read its answer anyway: drop the connection once it has had time to read
        # ours. autobahn's close-handshake timer (started by sendCloseFrame) would do, but
        # txaio batches its timers to whole seconds, so it fires anywhere from 0 to 1 s on.
        if self.closeHandshakeTimeoutCall is not None:
            self.closeHandshakeTimeoutCall.cancel()
            self.closeHandshakeTimeoutCall = None
        self.factory.reactor.callLater(DROP_AFTER, self._drop_refused, reason)

    def _drop_refused(self, reason: str) -> None:
        if self.state != self.STATE_CLOSED:
            self.wasClean = False
            self.wasNotCleanReason = reason
            # onClose follows: daphne sends websocket.disconnect (1006) to the consumer.
            self.dropConnection(abort=True)

    def serverSend(self, content: str | bytes, binary: bool = False) -> None:  # noqa: N802
        # A connection closes before its consumer hears of it: ours after a refusal, until it
        # drops (DROP_AFTER); the client's from its close frame until daphne's disconnect
        # reaches the consumer. Meanwhile the consumer may still send (the room's chat, a peer
        # joining). autobahn refuses to send on a connection that is not open by raising,
        # which would fail the consumer's handler as a server error; what it sends now is
        # lost, as to a socket that already dropped, and the disconnect follows as usual.
        if self.failedByMe or self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return
        super().serverSend(content, binary)


def install() -> None:
    """Make daphne build LimitedWebSocketProtocol for every websocket (idempotent).

    daphne's Server builds one `daphne.ws_protocol.WebSocketFactory` when it runs, and the
    factory builds `factory.protocol` for each connection; setting that class attribute here,
    before the server runs, changes every connection and nothing else. Importing
    daphne.ws_protocol does not install a Twisted reactor, so this is harmless in processes
    that import config.asgi without serving it (tests, other ASGI servers).
    """
    ws_protocol.WebSocketFactory.protocol = LimitedWebSocketProtocol
