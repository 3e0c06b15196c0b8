"""Real daphne workers on a real Redis, sharing the test database.

Each test gets its own private redis-server (so one may restart it) and starts workers as
subprocesses on free loopback ports. The workers use the test database pytest-django made,
so these tests need a server database (PostgreSQL): `make test-postgres` runs them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.db import connection

from tests.async_db import close_consumer_connections
from tests.servers_common import (
    assert_no_server_errors,
    free_port,
    start_daphne,
    stop,
    wait_until,
)

__all__ = ["close_consumer_connections"]


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="confab-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, "redis to start")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


class Worker:
    def __init__(self, worker_id: str, env: dict[str, str], *, healthy: bool = True) -> None:
        self.id = worker_id
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"confab-{worker_id}-", suffix=".log", delete=False
        )
        self.process = start_daphne(self.port, {**env, "WORKER_ID": worker_id}, self.log)
        # Log records a test provoked on purpose (a Redis it stopped): see allow_errors.
        self.allowed: tuple[str, ...] = ()
        ready = self.healthy if healthy else self.answering
        try:
            wait_until(ready, 30, f"worker {worker_id} to serve /healthz")
        except BaseException:
            # Not handed to the test yet, so nobody else would stop it.
            stop(self.process, timeout=10)
            self.log.close()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"worker {self.id} exited: {Path(self.log.name).read_text()[-2000:]}"
            )
        try:
            return self.healthz()[0] == 200
        except OSError:
            return False

    def answering(self) -> bool:
        """Serving /healthz at all, healthy or not (a worker started with a dead database)."""
        self.healthy()  # raises if the process exited
        try:
            return self.healthz()[0] in (200, 503)
        except OSError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def allow_errors(self, *fragments: str) -> None:
        """This test provokes errors logged by others' code (channels-redis losing its
        Redis): records containing one of `fragments` do not fail it."""
        self.allowed += fragments

    def stop(self) -> None:
        stop(self.process, timeout=10)
        self.log.close()
        try:
            assert_no_server_errors(
                Path(self.log.name), what=f"worker {self.id}", allowed=self.allowed
            )
        finally:
            os.unlink(self.log.name)


@pytest.fixture
def start_workers(
    redis_server: RedisServer, transactional_db: None
) -> Iterator[Callable[..., list[Worker]]]:
    if connection.vendor != "postgresql":
        raise AssertionError(
            "cluster tests need PostgreSQL: run them with DATABASE_URL=postgres://..."
        )
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "PRESENCE_TIMEOUT": "3",
        "PRESENCE_TOUCH_INTERVAL": "1",
        "STUN_URLS": "",
    }
    started: list[Worker] = []

    def start(count: int, *, healthy: bool = True, **settings: str) -> list[Worker]:
        """`count` more workers; `settings` are extra environment variables for them.
        `healthy=False`: wait only until they answer (their database may be down)."""
        workers = [
            Worker(f"w{len(started) + n + 1}", {**env, **settings}, healthy=healthy)
            for n in range(count)
        ]
        started.extend(workers)
        return workers

    yield start
    for worker in started:
        worker.stop()


class Client:
    """A participant speaking the protocol over a real websocket."""

    def __init__(self, ws: Any, welcome: dict[str, Any]) -> None:
        self.ws = ws
        self.welcome = welcome

    @property
    def peer_id(self) -> str:
        return str(self.welcome["self"]["peer_id"])

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive_type(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.ws.recv())
                if message["type"] == kind:
                    return dict(message)


async def connect(worker: Worker, path: str, cookie: str) -> Any:
    return await websockets.connect(
        f"ws://127.0.0.1:{worker.port}{path}",
        additional_headers={"Cookie": cookie},
        origin=websockets.Origin("http://127.0.0.1"),
        open_timeout=10,
    )


async def join(worker: Worker, room_slug: str, cookie: str) -> Client:
    ws = await connect(worker, f"/ws/rooms/{room_slug}/", cookie)
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert welcome["type"] == "welcome", welcome
    return Client(ws, welcome)
