"""A private Janus (Debian's `janus` 1.1.2) for tests: its own trimmed config dir, the
VideoRoom plugin and the WebSocket transport only, on 127.0.0.1 and a free port, started
and stopped by its PID. Plain functions, no fixtures, so that tests/janus and the browser
suite can both use them (the browser suite passes `ice_ip`: see below).

Facts this relies on (checked on this machine, /work/shared/notes/services.md):
- `janus -F DIR -C DIR/janus.jcfg -o` stays in the foreground and logs to stdout; with
  `configs_folder` pointing at DIR it reads the plugin and transport files from there, so
  the machine's /etc/janus is never read.
- Janus skips every loopback interface when it gathers ICE candidates. Tests without media
  (tests/janus) do not care; browser tests in a network namespace add a veth with an
  address such as 10.99.0.1 and pass it as `ice_ip`, which becomes `ice_enforce_list`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect, unix_connect
from websockets.typing import Subprotocol

from tests.servers_common import START_TIMEOUT, free_port, stop, tail, wait_until

JANUS = Path("/usr/bin/janus")
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
SUBPROTOCOL = Subprotocol("janus-protocol")

# Everything Debian ships except what Confab uses: fewer threads, ports and log lines, and
# nothing that could listen anywhere but where we say.
UNUSED_PLUGINS = (
    "audiobridge",
    "duktape",
    "echotest",
    "lua",
    "nosip",
    "recordplay",
    "sip",
    "streaming",
    "textroom",
    "videocall",
    "voicemail",
)
UNUSED_TRANSPORTS = ("http", "mqtt", "nanomsg", "pfunix", "rabbitmq")


def janus_installed() -> bool:
    return JANUS.exists() and (LIB / "plugins" / "libjanus_videoroom.so").exists()


def _jcfg_string(value: str) -> str:
    # libconfig strings: a JSON string literal is valid libconfig for the values we write
    # (secrets are token_hex, addresses and paths plain ASCII).
    return json.dumps(value)


def write_config(
    directory: Path,
    *,
    ws_port: int,
    api_secret: str,
    ice_ip: str | None = None,
    admin_key: str | None = None,
    session_timeout: int = 60,
    rtp_ports: tuple[int, int] = (20000, 20999),
    server_name: str = "confab-test",
    unix_socket: Path | None = None,
) -> Path:
    """Write janus.jcfg, janus.plugin.videoroom.jcfg and janus.transport.websockets.jcfg
    into `directory`; returns the path of janus.jcfg."""
    directory.mkdir(parents=True, exist_ok=True)
    disabled_plugins = ",".join(f"libjanus_{name}.so" for name in UNUSED_PLUGINS)
    disabled_transports = ",".join(f"libjanus_{name}.so" for name in UNUSED_TRANSPORTS)
    # Without a media address the tests need no candidate at all; enforcing loopback (which
    # Janus then skips) keeps it from binding RTP ports on the machine's real interfaces.
    enforce = ice_ip or "127.0.0.1"
    main = f"""\
general: {{
	configs_folder = {_jcfg_string(str(directory))}
	plugins_folder = {_jcfg_string(str(LIB / "plugins"))}
	transports_folder = {_jcfg_string(str(LIB / "transports"))}
	events_folder = {_jcfg_string(str(LIB / "events"))}
	loggers_folder = {_jcfg_string(str(LIB / "loggers"))}
	debug_level = 4
	debug_timestamps = true
	server_name = {_jcfg_string(server_name)}
	api_secret = {_jcfg_string(api_secret)}
	session_timeout = {session_timeout}
	reclaim_session_timeout = 0
	hide_dependencies = true
}}
certificates: {{
}}
media: {{
	rtp_port_range = "{rtp_ports[0]}-{rtp_ports[1]}"
}}
nat: {{
	nice_debug = false
	ice_enforce_list = {_jcfg_string(enforce)}
	ignore_mdns = true
}}
plugins: {{
	disable = {_jcfg_string(disabled_plugins)}
}}
transports: {{
	disable = {_jcfg_string(disabled_transports)}
}}
loggers: {{
	disable = "libjanus_jsonlog.so"
}}
events: {{
	broadcast = false
}}
"""
    videoroom_general = f"\tadmin_key = {_jcfg_string(admin_key)}\n" if admin_key else ""
    videoroom = f"""\
# No preconfigured rooms: Confab creates each room over the API, with its own secret.
general: {{
{videoroom_general}}}
"""
    listen = f"ws_unix = {_jcfg_string(str(unix_socket))}" if unix_socket else 'ws_ip = "127.0.0.1"'
    websockets = f"""\
general: {{
	json = "compact"
	ws = true
	ws_port = {ws_port}
	{listen}
	wss = false
}}
admin: {{
	admin_ws = false
	admin_wss = false
}}
"""
    (directory / "janus.jcfg").write_text(main)
    (directory / "janus.plugin.videoroom.jcfg").write_text(videoroom)
    (directory / "janus.transport.websockets.jcfg").write_text(websockets)
    return directory / "janus.jcfg"


def info_answers(url: str, timeout: float = 1.0) -> dict[str, object] | None:
    """Janus's `info` over its WebSocket API (it needs no api secret), or None."""
    transaction = secrets.token_hex(8)
    options: dict[str, Any] = {
        "subprotocols": [SUBPROTOCOL],
        "open_timeout": timeout,
        "close_timeout": timeout,
        "compression": None,
    }
    try:
        if url.startswith("ws+unix://"):
            opened = unix_connect(url.removeprefix("ws+unix://"), "ws://localhost/", **options)
        else:
            opened = connect(url, proxy=None, **options)
        with opened as socket:
            socket.send(json.dumps({"janus": "info", "transaction": transaction}))
            answer = json.loads(socket.recv(timeout=timeout))
    except (OSError, TimeoutError, ValueError, WebSocketException):
        return None  # not listening yet, or not speaking the protocol yet
    if answer.get("janus") == "server_info" and answer.get("transaction") == transaction:
        return dict(answer)
    return None


@dataclass
class JanusProcess:
    """A Janus we started. `url` is its WebSocket API (ws://127.0.0.1:PORT)."""

    url: str
    api_secret: str
    admin_key: str | None
    workdir: Path
    process: subprocess.Popen[bytes]
    ws_port: int
    rtp_ports: tuple[int, int]
    session_timeout: int
    stopped: bool = field(default=False)

    @property
    def log(self) -> Path:
        return self.workdir / "janus.log"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (Janus tears its sessions down and exits), SIGKILL if it lingers."""
        stop(self.process, signal.SIGTERM, timeout=10)
        self.stopped = True

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to anybody (failover tests)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.stopped = True

    def pause(self) -> None:
        """SIGSTOP, as a hung Janus: it keeps its sockets open and answers nothing. Returns
        once every thread has stopped (kill() returns before they do, and a thread still
        running can answer one more request)."""
        os.kill(self.process.pid, signal.SIGSTOP)

        def stopped() -> bool:
            tasks = Path(f"/proc/{self.process.pid}/task")
            states = []
            for task in tasks.iterdir():
                try:
                    states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
                except (OSError, IndexError):
                    continue  # a thread that just ended
            return all(state in ("T", "t") for state in states)

        wait_until(stopped, 5, "janus to stop (SIGSTOP)")

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def log_tail(self, chars: int = 3000) -> str:
        return tail(self.log, chars)


def start_janus(
    workdir: Path,
    *,
    api_secret: str,
    ice_ip: str | None = None,
    admin_key: str | None = None,
    session_timeout: int = 60,
    rtp_ports: tuple[int, int] = (20000, 20999),
    unix_socket: bool = False,
    timeout: float = START_TIMEOUT,
) -> JanusProcess:
    """Start Janus with a config dir of its own under `workdir`, wait until its WebSocket
    API answers `info` with the VideoRoom plugin loaded; fail with the log tail. With
    `unix_socket`, the API is on workdir/janus.sock (url ws+unix://...) instead of TCP."""
    if not janus_installed():
        raise AssertionError(f"{JANUS} is not installed (Debian: apt-get install janus)")
    workdir.mkdir(parents=True, exist_ok=True)
    ws_port = free_port()
    config = write_config(
        workdir / "conf",
        ws_port=ws_port,
        api_secret=api_secret,
        ice_ip=ice_ip,
        admin_key=admin_key,
        session_timeout=session_timeout,
        rtp_ports=rtp_ports,
        unix_socket=workdir / "janus.sock" if unix_socket else None,
    )
    log = workdir / "janus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(JANUS), "-F", str(config.parent), "-C", str(config), "-o"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    janus = JanusProcess(
        url=f"ws+unix://{workdir / 'janus.sock'}" if unix_socket else f"ws://127.0.0.1:{ws_port}",
        api_secret=api_secret,
        admin_key=admin_key,
        workdir=workdir,
        process=process,
        ws_port=ws_port,
        rtp_ports=rtp_ports,
        session_timeout=session_timeout,
    )

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"janus exited with {process.returncode}:\n{tail(log)}")
        answer = info_answers(janus.url)
        if answer is None:
            return False
        plugins = answer.get("plugins")
        if not isinstance(plugins, dict) or "janus.plugin.videoroom" not in plugins:
            raise AssertionError(f"janus answers without the VideoRoom plugin:\n{tail(log)}")
        return True

    try:
        wait_until(up, timeout, "janus to answer info on its WebSocket API")
    except AssertionError as error:
        janus.stop()
        raise AssertionError(f"{error}\n--- janus log ---\n{tail(log)}") from None
    return janus
