"""Servers that browser tests start for themselves, inside the test's network namespace:
coturn, a daphne configured for TURN (tests/servers_common.py's `daphne`, with settings),
and the whole nginx + Redis + workers cluster of deploy/run-cluster.sh. Also `Crowd`:
people on a server other than the session's one.

Every process is started here and stopped by its PID; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.browser.conftest import Browsers, Person
from tests.servers_common import (
    REPO,
    START_TIMEOUT,
    base_env,
    free_port,
    stop,
    tail,
    wait_until,
)

# --- coturn ---------------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stun_binding_answers(port: int) -> bool:
    """Send a STUN Binding request (RFC 5389) over UDP; True if a success response comes."""
    transaction = secrets.token_bytes(12)
    request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        try:
            sock.sendto(request, ("127.0.0.1", port))
            answer, _ = sock.recvfrom(2048)
        except OSError:
            return False
    return answer[:2] == b"\x01\x01" and answer[8:20] == transaction


@dataclass
class Coturn:
    """coturn on loopback with the TURN REST scheme (`use-auth-secret`), as in
    /work/shared/notes/browser-testing.md. `--allow-loopback-peers` only because the
    whole test lives on loopback; never in production."""

    secret: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def log(self) -> Path:
        return self.workdir / "turn.log"


@contextmanager
def coturn(
    workdir: Path, secret: str, relay_ports: tuple[int, int] = (49160, 49260)
) -> Iterator[Coturn]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    log = workdir / "turn.log"
    with (workdir / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            [
                "turnserver",
                "-n",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                f"--listening-port={port}",
                f"--min-port={relay_ports[0]}",
                f"--max-port={relay_ports[1]}",
                "--use-auth-secret",
                f"--static-auth-secret={secret}",
                "--realm=example.test",
                "--fingerprint",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--no-multicast-peers",
                "--allow-loopback-peers",
                f"--userdb={workdir / 'turndb'}",
                f"--pidfile={workdir / 'turn.pid'}",
                f"--log-file={log}",
                "--simple-log",
                "--verbose",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    turn = Coturn(secret=secret, port=port, workdir=workdir, process=process)
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"turnserver exited with {process.returncode}:\n{tail(log)}")
            return stun_binding_answers(port)

        wait_until(up, START_TIMEOUT, "turnserver to answer STUN")
        yield turn
    finally:
        stop(process)


# --- the cluster of deploy/run-cluster.sh ------------------------------------------------------


@dataclass
class Cluster:
    url: str
    dir: Path
    process: subprocess.Popen[bytes]
    output: Path
    worker_ports: list[int]  # WORKER_ID n listens on worker_ports[n - 1]

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def describe(self) -> str:
        parts = [f"run-cluster.sh output:\n{tail(self.output)}"]
        for log in sorted(self.logs.glob("*.log")):
            parts.append(f"{log.name}:\n{tail(log, 1500)}")
        return "\n\n".join(parts)


def consecutive_free_ports(count: int) -> int:
    """A first port such that `count` ports from it are free on 127.0.0.1."""
    for _ in range(200):
        base = free_port()
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError(f"no {count} consecutive free ports")


@contextmanager
def cluster(workdir: Path, workers: int = 2, **settings: str) -> Iterator[Cluster]:
    """deploy/run-cluster.sh itself: a private redis-server, `workers` daphne workers on a
    shared SQLite file, nginx in front (deploy/nginx.conf, least_conn). Stopped with SIGTERM
    to the script's PID, whose trap stops every process it started, by PID."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = consecutive_free_ports(workers)
    while base <= port < base + workers:
        base = consecutive_free_ports(workers)
    env = base_env(workdir / "db.sqlite3")
    env.update(settings)
    env.update(
        WORKERS=str(workers),
        PORT=str(port),
        WORKER_PORT_BASE=str(base),
        CLUSTER_DIR=str(workdir),
    )
    # The script's own choices, as for someone trying it: a private redis-server, a key it
    # generates, a SQLite file in its state dir.
    for name in ("REDIS_URL", "SECRET_KEY", "DATABASE_URL"):
        del env[name]
    output = workdir / "run-cluster.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(REPO / "deploy" / "run-cluster.sh")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = Cluster(
        url=f"http://127.0.0.1:{port}",
        dir=workdir,
        process=process,
        output=output,
        worker_ports=list(range(base, base + workers)),
    )
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"run-cluster.sh exited with {process.returncode}:\n{running.describe()}"
                )
            return "Confab is at" in output.read_text(errors="replace")

        wait_until(up, 120, "run-cluster.sh to report the cluster up")
        yield running
    finally:
        stop(process, timeout=30)


# --- people on a server of the test's own ----------------------------------------------------


class Crowd:
    """Like the `person` fixture, for a server this test started: each person signs up on it
    in a browser context of their own. Content Security Policy reports and page errors are
    collected; close() fails the test if there were any. `websockets` lists the URL of every
    websocket any of their pages opened, in order."""

    def __init__(self, browsers: Browsers, base_url: str) -> None:
        self.browsers = browsers
        self.base_url = base_url
        self.people: list[Person] = []
        self.websockets: list[str] = []

    def person(self, name: str, *, engine: str = "chromium") -> Person:
        username = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
        who = self.browsers.new_person(engine, name, self.base_url, username)
        who.page.on("websocket", lambda socket: self.websockets.append(socket.url))
        self.people.append(who)
        who.sign_up()
        return who

    def close(self) -> None:
        problems = [f"{who.name}: {problem}" for who in self.people for problem in who.problems]
        for who in self.people:
            who.context.close()
        self.people.clear()
        assert not problems, "\n".join(problems)


@contextmanager
def crowd(browsers: Browsers, base_url: str) -> Iterator[Crowd]:
    people = Crowd(browsers, base_url)
    try:
        yield people
    except BaseException:
        for who in people.people:
            who.context.close()
        raise
    people.close()
