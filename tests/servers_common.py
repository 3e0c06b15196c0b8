"""Starting and stopping the real servers that tests run as subprocesses: a daphne of the
test's own (the browser suite's session server and tests/browser/servers.py's) and the
daphne workers of tests/cluster. Plain functions, no fixtures and no Playwright, so that
either suite can use them.

Every process is started here and stopped by its PID; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)  # polling a condition, not waiting for a result
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop one process we started, by its PID: `sig`, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"({path} unreadable)"


# What a server must never log unless a test provoked it (docs: "A test run logs no
# traceback"). daphne's own "Exception inside application" is an ERROR line too.
ERROR_MARKERS = (" ERROR ", " CRITICAL ", "Traceback (most recent call last)")


def server_errors(log: Path, start: int = 0, allowed: tuple[str, ...] = ()) -> list[str]:
    """The ERROR and traceback lines a server wrote to `log` after byte `start`, except
    records containing one of `allowed` (with the traceback that follows them)."""
    try:
        text = log.read_bytes()[start:].decode(errors="replace")
    except OSError:
        return []
    found, excused = [], False
    for line in text.splitlines():
        if line[:4].isdigit():  # a new log record ("2026-12-03 11:03:43,377 ERROR ...")
            excused = any(a in line for a in allowed)
        if not excused and any(m in line for m in ERROR_MARKERS):
            found.append(line)
    return found


def assert_no_server_errors(
    log: Path, start: int = 0, what: str = "daphne", allowed: tuple[str, ...] = ()
) -> None:
    errors = server_errors(log, start, allowed)
    if errors:
        shown = "\n".join(errors[:20])
        raise AssertionError(f"{what} logged errors that no test expected:\n{shown}\n{tail(log)}")


def http_status(url_host: str, port: int, path: str) -> int | None:
    connection = HTTPConnection(url_host, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def start_daphne(port: int, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """daphne serving config.asgi:application on 127.0.0.1:`port` with exactly `env`, its
    output in `log`. The caller waits for it to answer and stops it."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


# --- one daphne on SQLite with its own settings ------------------------------------------------


def base_env(database: Path) -> dict[str, str]:
    """The environment of a test's own daphne (production settings, DEBUG off, no Redis, no
    STUN or TURN) on the SQLite file `database`; callers add or override settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"}
        and not key.startswith(("TURN_", "STUN_", "ICE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="0",
        HTTPS="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"sqlite:///{database}",
        REDIS_URL="",
        STUN_URLS="",  # no external STUN: an empty list (django-environ gives [] for "")
        TURN_URLS="",
        ICE_TRANSPORT_POLICY="all",
        # The browser suite reuses a few accounts across many rooms in a couple of minutes;
        # the per-person join throttle is tested elsewhere, not here.
        JOINS_PER_MINUTE="600",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path
    pid: int  # ours, for its memory (/proc) and nothing else: daphne() stops it
    port: int

    def manage(self, *args: str) -> str:
        """Run a management command against this server's database."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout


@contextmanager
def daphne(workdir: Path, **settings: str) -> Iterator[Server]:
    """A daphne of its own (own SQLite database, in-memory channel layer) with `settings`
    added to the environment, e.g. TURN_URLS=..., TURN_SECRET=..."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = base_env(workdir / "db.sqlite3")
    env.update(settings)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
    )
    port = free_port()
    log = workdir / "daphne.log"
    with log.open("wb") as log_file:
        process = start_daphne(port, env, log_file)
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"daphne exited with {process.returncode}:\n{tail(log)}")
            return http_status("127.0.0.1", port, "/accounts/login/") == 200

        wait_until(up, START_TIMEOUT, "daphne to answer")
        yield Server(url=f"http://127.0.0.1:{port}", env=env, log=log, pid=process.pid, port=port)
    finally:
        stop(process)
    # Reached only when the body passed: its own failure says more than the log would.
    assert_no_server_errors(log)
