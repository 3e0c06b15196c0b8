"""Confab's signaling benchmark (`make bench`; never part of `make test`).

It uses the app as people do: accounts are made with the sign-up form and signed in with
the login form, rooms are created with the lobby form, and everything after that speaks
the websocket protocol of docs/protocol.md. Servers run as separate daphne processes pinned
to CPU 0; this load generator runs on CPU 1. All traffic is on 127.0.0.1, every phase is
bounded in count and time, and everything started here is stopped by PID at the end.

For each setup (in-memory layer with one worker; Redis pub/sub with one and with two
workers; the Redis core layer with one and two workers, to compare the layers on our own
workloads) it measures the project and the "framework floor" (bench/floor.py) and writes the
results to bench/results/latest.json and the table in docs/performance.md.

    .venv/bin/python -m bench.run [--quick] [--setups memory,redis1,redis2,core1,core2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.cookiejar
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
PG_ADMIN = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
SDP = "v=0\r\n" + "a=candidate-free-padding-line-for-a-realistic-session-description\r\n" * 45
CANDIDATE_PAD = "x" * 150
LEVELS = [250, 500, 1000, 2000, 3000, 4000, 6000]
CHAT_RATE = 40.0  # messages a second, all rooms and senders together
CHAT_PEOPLE = 48  # in rooms of 6 or 12: 0.83 messages a second each, under the chat limit
BURST = 200  # rooms, each holding one person, that one newcomer each joins at once
LEAVE_TIMEOUT = 1.5  # seconds a page waits for the server to close after `leave`


# --- Processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)  # polling for a server to come up
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


@dataclass
class Cluster:
    """A private Redis (if asked for), a fresh database and N daphne workers."""

    workers: int
    layer: str  # "memory", "pubsub" or "core" (the CHANNEL_LAYER setting)
    spread: bool = False  # a core for each worker (else every server on CPU 0)
    app: str = "config.asgi:application"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    redis_process: subprocess.Popen[bytes] | None = None
    tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="confab-bench-"))
    database_url: str = ""

    def env(self, worker: int) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "bench-" + "k" * 50,
            "DEBUG": "0",
            "HTTPS": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "WORKER_ID": f"w{worker}",
            "STUN_URLS": "",
            "LOG_LEVEL": "WARNING",
            # The benchmark plays hundreds of people from a handful of accounts.
            "MAX_CONNECTIONS_PER_ROOM": "12",
            "MAX_CONNECTIONS_PER_USER": "100000",
            "JOINS_PER_MINUTE": "1000000",
        }
        env.pop("REDIS_URL", None)
        if self.redis_process is not None:
            env["REDIS_URL"] = self.redis_url
            env["CHANNEL_LAYER"] = self.layer
        return env

    @property
    def redis(self) -> bool:
        return self.layer != "memory"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self) -> None:
        if self.redis:
            self.redis_port = free_port()
            self.redis_process = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "0",
                    "redis-server",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.tmp,
                ],
                stdout=subprocess.DEVNULL,
            )
            wait_port(self.redis_port)
        self.database_url = self.make_database()
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env(0), check=True
        )
        for worker in range(1, self.workers + 1):
            port = free_port()
            log = open(Path(self.tmp) / f"daphne{worker}.log", "wb")  # noqa: SIM115
            cpu = (worker - 1) % (os.cpu_count() or 1) if self.spread else 0
            process = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    str(cpu),
                    PYTHON,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    self.app,
                ],
                cwd=ROOT,
                env=self.env(worker),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.processes.append(process)
            self.ports.append(port)
        for port in self.ports:
            wait_port(port)

    def make_database(self) -> str:
        if not self.redis:
            return f"sqlite:///{self.tmp}/bench.sqlite3"
        # Several workers need a server database: the machine's PostgreSQL.
        name = f"confab_bench_{secrets.token_hex(4)}"
        subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {name}"], check=True)
        self.pg_name = name
        return f"postgres://postgres:postgres@127.0.0.1:5432/{name}"

    def log_tail(self, chars: int = 3000) -> str:
        """What went wrong in the workers' logs: the first error and what follows it
        (daphne's access lines left out)."""
        parts = []
        for n in range(1, self.workers + 1):
            lines = [
                line
                for line in (Path(self.tmp) / f"daphne{n}.log")
                .read_text(errors="replace")
                .splitlines()
                if not re.match(r"^[\d.:]+ - - \[", line)
            ]
            first = next(
                (i for i, line in enumerate(lines) if "Error" in line or "Traceback" in line), 0
            )
            parts.append(f"--- daphne{n} log ---\n" + "\n".join(lines[first:])[:chars])
        return "\n".join(parts)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def redis_cpu(self) -> float:
        return cpu_seconds(self.redis_process.pid) if self.redis_process else 0.0

    def rss(self) -> int:
        return sum(rss_bytes(pid) for pid in self.pids())

    def stop(self) -> None:
        for process in [*self.processes, self.redis_process]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.processes, self.redis_process]:
            if process is not None:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        if getattr(self, "pg_name", None):
            subprocess.run(
                ["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)"],
                check=False,
            )
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def cluster(
    workers: int, layer: str, app: str = "config.asgi:application", spread: bool = False
) -> Iterator[Cluster]:
    c = Cluster(workers=workers, layer=layer, app=app, spread=spread)
    try:
        c.start()
        yield c
    finally:
        c.stop()


# --- The web UI, as a person uses it --------------------------------------------------------


class Browser:
    """Cookies and CSRF, like a browser filling in Confab's forms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return str(response.read().decode())

    def post_form(
        self, path: str, data: dict[str, str], form_page: str | None = None
    ) -> tuple[int, str]:
        """Fill in the form found on `form_page` (default: the page it posts to)."""
        page = self.get(form_page or path)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, f"no CSRF token on {path}"
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": match.group(1)}).encode()
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, ""
        except urllib.error.HTTPError as redirect:
            return redirect.code, redirect.headers.get("Location", "")

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def make_accounts(base: str, count: int) -> list[str]:
    """Sign up through the sign-up form, then sign in through the login form."""
    cookies = []
    for n in range(count):
        username, password = f"bench{n}-{secrets.token_hex(3)}", "a-long-bench-passphrase-7"
        status, _ = Browser(base).post_form(
            "/accounts/signup/",
            {
                "username": username,
                "display_name": f"Bench {n}",
                "password1": password,
                "password2": password,
            },
        )
        assert status == 302, f"sign-up failed: {status}"
        browser = Browser(base)
        status, _ = browser.post_form(
            "/accounts/login/", {"username": username, "password": password}
        )
        assert status == 302, f"login failed: {status}"
        cookies.append(browser.cookie_header())
    return cookies


def make_rooms(base: str, cookie: str, count: int, capacity: int, media: str = "mesh") -> list[str]:
    browser = Browser(base)
    for part in cookie.split("; "):
        name, value = part.split("=", 1)
        browser.jar.set_cookie(
            http.cookiejar.Cookie(
                0,
                name,
                value,
                None,
                False,
                "127.0.0.1",
                False,
                False,
                "/",
                True,
                False,
                None,
                True,
                None,
                None,
                {},
            )
        )
    slugs = []
    for n in range(count):
        status, location = browser.post_form(
            "/rooms/new/",
            {
                "name": f"Bench room {n}",
                "capacity": str(capacity),
                "kind": "video",
                "media_path": media,
            },
            form_page="/",
        )
        assert status == 302, f"room creation failed: {status}"
        slugs.append(location.rstrip("/").rsplit("/", 1)[1])
    return slugs


# --- Websocket clients ----------------------------------------------------------------------


@dataclass
class Peer:
    ws: Any
    peer_id: str
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None
    latencies: list[float] | None = None
    known: set[str] = field(default_factory=set)
    heartbeat: float = 20.0  # what `welcome` asks for


async def open_peer(
    port: int, slug: str, cookie: str, *, latencies: list[float] | None = None
) -> tuple[Peer, float]:
    started = time.perf_counter()
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/rooms/{slug}/",
        additional_headers={"Cookie": cookie},
        origin=websockets.Origin("http://127.0.0.1"),
        open_timeout=60,
        max_size=2**20,
        compression=None,
    )
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
    elapsed = time.perf_counter() - started
    if welcome["type"] != "welcome":
        await ws.close()
        raise RuntimeError(f"refused: {welcome}")
    peer = Peer(ws, welcome["self"]["peer_id"], latencies=latencies)
    peer.known = {p["peer_id"] for p in welcome.get("peers", [])}
    peer.heartbeat = float(welcome.get("heartbeat") or peer.heartbeat)
    peer.reader = asyncio.get_running_loop().create_task(read(peer))
    return peer, elapsed


def stamp_of(message: dict[str, Any]) -> float | None:
    text = (
        message.get("sdp")
        or (message.get("candidate") or {}).get("candidate")
        or message.get("body")
        or ""
    )
    match = re.search(r"t=(\d+\.\d+)", text)
    return float(match.group(1)) if match else None


async def read(peer: Peer) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in peer.ws:
            message = json.loads(raw)
            kind = message["type"]
            if kind == "peer-joined":
                peer.known.add(message["peer"]["peer_id"])
            if kind in ("offer", "answer", "candidate") and peer.latencies is not None:
                stamp = stamp_of(message)
                if stamp is not None:
                    peer.latencies.append(time.perf_counter() - stamp)
                    continue
            await peer.inbox.put(message)


def relay_message(kind: str, to: str) -> str:
    t = f"t={time.perf_counter():.9f}"
    if kind == "candidate":
        body = {
            "candidate": f"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host {t} {CANDIDATE_PAD}",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
        return json.dumps({"type": "candidate", "to": to, "candidate": body})
    return json.dumps({"type": kind, "to": to, "sdp": f"{t}\r\n{SDP}"})


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- Workloads --------------------------------------------------------------------------------


async def pairs_in_rooms(
    c: Cluster, cookies: list[str], slugs: list[str], latencies: list[float]
) -> list[tuple[Peer, Peer]]:
    pairs = []
    for n, slug in enumerate(slugs):
        a, _ = await open_peer(c.ports[0], slug, cookies[n % len(cookies)], latencies=latencies)
        b, _ = await open_peer(
            c.ports[-1], slug, cookies[(n + 1) % len(cookies)], latencies=latencies
        )
        async with asyncio.timeout(10):
            while b.peer_id not in a.known or a.peer_id not in b.known:
                await asyncio.sleep(0.005)  # until each side has heard of the other
        pairs.append((a, b))
    return pairs


async def settle(c: Cluster, limit: float = 60) -> None:
    """Wait until the servers are idle (under 3% of a core over half a second), so that a
    measurement window holds no backlog of the previous phase."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        before = c.cpu()
        await asyncio.sleep(0.5)
        if c.cpu() - before < 0.015:
            return


NEGOTIATION = ["offer", "answer"] + ["candidate"] * 10


async def relay_load(
    c: Cluster, pairs: list[tuple[Peer, Peer]], latencies: list[float], rate: int, seconds: float
) -> dict[str, Any]:
    """Offer `rate` relayed messages a second for `seconds`, spread over the pairs, in
    negotiation-shaped sequences (offer, answer, 10 candidates)."""
    latencies.clear()
    await settle(c)
    total = int(rate * seconds)
    cpu0, redis0, wall0 = c.cpu(), c.redis_cpu(), time.perf_counter()
    for n in range(total):
        due = wall0 + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        a, b = pairs[n % len(pairs)]
        kind = NEGOTIATION[(n // len(pairs)) % len(NEGOTIATION)]
        sender, target = (a, b) if kind != "answer" else (b, a)
        try:
            await sender.ws.send(relay_message(kind, target.peer_id))
        except websockets.ConnectionClosed as closed:
            # The server gave up on a socket (the core layer under load): a finding, not a
            # crash of the benchmark. This level and any higher one are not measured.
            return {"offered_per_s": rate, "failed": f"server closed a socket: {closed}"}
    sent_for = time.perf_counter() - wall0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while len(latencies) < total:
                await asyncio.sleep(0.01)  # until every relayed message has arrived (or 30 s)
    lost = total - len(latencies)
    cpu, redis = c.cpu() - cpu0, c.redis_cpu() - redis0
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(total / sent_for),
        "messages": total,
        "lost": lost,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "server_cpu_ms_per_msg": round(cpu / total * 1000, 3),
        "redis_cpu_ms_per_msg": round(redis / total * 1000, 3),
    }


async def relay_phase(
    c: Cluster, cookies: list[str], slugs: list[str], levels: list[int], seconds: float
) -> list[dict[str, Any]]:
    latencies: list[float] = []
    pairs = await pairs_in_rooms(c, cookies, slugs, latencies)
    await relay_load(c, pairs, latencies, 200, 1)  # warm up
    results = []
    for rate in levels:
        result = await relay_load(c, pairs, latencies, rate, seconds)
        results.append(result)
        if "failed" in result:
            print(f"    relay {rate}/s: {result['failed']}", flush=True)
            print(c.log_tail(), flush=True)
            break
        print(
            f"    relay {rate}/s: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"{result['server_cpu_ms_per_msg']} ms CPU/msg",
            flush=True,
        )
        if result["p99_ms"] > 200:
            break  # far past saturation: higher loads would only queue
    await close_all([p for pair in pairs for p in pair])
    return results


async def close_all(peers: list[Peer]) -> None:
    """Leave as a page does when its person clicks Leave (static/js/signaling.js): send
    `leave` and wait for the server to close, at most LEAVE_TIMEOUT. A bare close would
    hold each seat for RESUME_GRACE seconds, and their expiry would land in a later phase;
    closing right after `leave` (as this did until 2026-12-07) ran the server's leave
    during whatever the next phase or the next join measured."""
    for peer in peers:
        with contextlib.suppress(websockets.ConnectionClosed):
            await peer.ws.send('{"type":"leave"}')

    async def closed(peer: Peer) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(peer.ws.wait_closed(), LEAVE_TIMEOUT)
        await peer.ws.close()
        if peer.reader:
            await peer.reader

    await asyncio.gather(*(closed(peer) for peer in peers))


async def join_phase(c: Cluster, cookies: list[str], slug: str, count: int) -> dict[str, Any]:
    times = []
    for n in range(count):
        peer, elapsed = await open_peer(c.ports[n % len(c.ports)], slug, cookies[n % len(cookies)])
        times.append(elapsed)
        await close_all([peer])
    return {
        "joins": count,
        "p50_ms": round(percentile(times, 50) * 1000, 1),
        "p99_ms": round(percentile(times, 99) * 1000, 1),
    }


async def storm_phase(
    c: Cluster, cookies: list[str], slugs: list[str], people: int, window: float
) -> dict[str, Any]:
    """`people` join len(slugs) rooms within `window` seconds; every pair does an offer, an
    answer and 10 candidates each way. Time until every pair has finished."""
    per_room = people // len(slugs)
    finished: dict[tuple[str, str], int] = {}
    expected_pairs = len(slugs) * per_room * (per_room - 1) // 2
    done = asyncio.Event()
    peers: list[Peer] = []
    refused = 0
    start = time.perf_counter()

    def mark(a: str, b: str) -> None:
        key = (min(a, b), max(a, b))
        finished[key] = finished.get(key, 0) + 1
        # A pair is done when the newcomer's offer and 10 candidates and the answer and
        # 10 candidates back have all arrived: 22 arrivals.
        if sum(1 for v in finished.values() if v >= 22) >= expected_pairs:
            done.set()

    async def person(n: int) -> None:
        nonlocal refused
        await asyncio.sleep(window * n / people)
        slug = slugs[n % len(slugs)]
        try:
            peer, _ = await open_peer(c.ports[n % len(c.ports)], slug, cookies[n % len(cookies)])
        except RuntimeError:
            refused += 1
            return
        peers.append(peer)
        for other in list(peer.known):  # the newcomer offers to everyone already there
            await peer.ws.send(relay_message("offer", other))
            for _ in range(10):
                await peer.ws.send(relay_message("candidate", other))
        while True:
            message = await peer.inbox.get()
            if message["type"] not in ("offer", "answer", "candidate"):
                continue
            mark(peer.peer_id, message["from"])
            if message["type"] == "offer":
                await peer.ws.send(relay_message("answer", message["from"]))
                for _ in range(10):
                    await peer.ws.send(relay_message("candidate", message["from"]))

    tasks = [asyncio.get_running_loop().create_task(person(n)) for n in range(people)]
    try:
        async with asyncio.timeout(60):
            await done.wait()
        elapsed = time.perf_counter() - start
    except TimeoutError:
        elapsed = float("nan")
    for task in tasks:
        task.cancel()
    occupancy = await room_occupancy(c, slugs)
    await close_all(peers)
    return {
        "people": people,
        "rooms": len(slugs),
        "window_s": window,
        "pairs": expected_pairs,
        "admitted": len(peers),
        "refused": refused,
        "all_pairs_done_s": round(elapsed, 2),
        "max_room_occupancy": max(occupancy),
        "capacity": per_room,
    }


async def burst_phase(
    c: Cluster, cookies: list[str], slugs: list[str], capacity: int | None
) -> dict[str, Any]:
    """The start of the hour: every room already holds one person, then one newcomer per
    room arrives, all at the same moment. Time from each newcomer's connect to its
    `welcome`; afterwards no room may hold more than its capacity."""
    seated = []
    gate = asyncio.Semaphore(8)

    async def sit(n: int) -> None:
        async with gate:
            peer, _ = await open_peer(
                c.ports[n % len(c.ports)], slugs[n], cookies[n % len(cookies)]
            )
            seated.append(peer)

    await asyncio.gather(*(sit(n) for n in range(len(slugs))))
    await settle(c)
    go = asyncio.Event()

    async def arrive(n: int) -> tuple[Peer | None, float]:
        await go.wait()
        try:
            return await open_peer(
                c.ports[n % len(c.ports)], slugs[n], cookies[(n + 1) % len(cookies)]
            )
        except RuntimeError:
            return None, float("nan")

    tasks = [asyncio.get_running_loop().create_task(arrive(n)) for n in range(len(slugs))]
    await asyncio.sleep(0.1)  # every task is waiting on the gate
    go.set()
    arrived = await asyncio.gather(*tasks)
    times = [t for peer, t in arrived if peer is not None]
    occupancy = await room_occupancy(c, slugs) if capacity is not None else []
    await close_all(seated + [peer for peer, _ in arrived if peer is not None])
    return {
        "joins": len(slugs),
        "admitted": len(times),
        "p50_ms": round(percentile(times, 50) * 1000, 1),
        "p99_ms": round(percentile(times, 99) * 1000, 1),
        "max_ms": round(max(times, default=float("nan")) * 1000, 1),
        "over_capacity_rooms": sum(1 for n in occupancy if capacity and n > capacity),
        "capacity": capacity,
    }


async def room_occupancy(c: Cluster, slugs: list[str]) -> list[int]:
    code = (
        "import json,sys; from rooms.models import Room;"
        f"print(json.dumps([Room.objects.get(slug=s).presences.count() for s in {slugs!r}]))"
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=c.env(0),
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


async def chat_phase(
    c: Cluster,
    cookies: list[str],
    slugs: list[str],
    size: int,
    messages: int,
    rate: float = CHAT_RATE,
) -> dict[str, Any]:
    """Rooms of `size` people; everyone together sends `rate` messages a second, in turn, on
    a schedule that does not wait for the previous message (people do not wait either), each
    person under the server's chat limit of one a second. Time from a send to its arrival at
    the last of its room, the sender's own echo included."""
    rooms = [
        [
            (await open_peer(c.ports[n % len(c.ports)], slug, cookies[n % len(cookies)]))[0]
            for n in range(size)
        ]
        for slug in slugs
    ]
    # In turn: one from each room, then the next person of each room.
    senders = [room[k] for k in range(size) for room in rooms]
    peers = [peer for room in rooms for peer in room]
    sent: dict[str, float] = {}
    arrived: dict[str, list[float]] = {}
    complete = asyncio.Event()

    async def receive(peer: Peer) -> None:
        while True:
            message = await peer.inbox.get()
            if message["type"] == "chat" and message["body"] in sent:
                times = arrived.setdefault(message["body"], [])
                times.append(time.perf_counter())
                if len(arrived) == messages and all(len(t) == size for t in arrived.values()):
                    # every message reached the `size` people of its room
                    complete.set()

    receivers = [asyncio.get_running_loop().create_task(receive(peer)) for peer in peers]
    start = time.perf_counter()
    for n in range(messages):
        await asyncio.sleep(max(0, start + n / rate - time.perf_counter()))  # on schedule
        body = f"message {n} of the chat bench"
        sent[body] = time.perf_counter()
        await senders[n % len(senders)].ws.send(json.dumps({"type": "chat", "body": body}))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await complete.wait()
    for task in receivers:
        task.cancel()
    await close_all(peers)
    latencies = [max(arrived[b]) - t for b, t in sent.items() if len(arrived.get(b, [])) == size]
    return {
        "room_size": size,
        "rooms": len(slugs),
        "messages": messages,
        "rate_per_s": rate,
        "lost": messages - len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


async def idle_phase(
    c: Cluster, cookies: list[str], slugs: list[str], count: int, seconds: float
) -> dict[str, Any]:
    """`count` people sit in rooms of 12 and only keep their sockets alive, pinging at the
    interval `welcome` asks for (the floor's welcome names none: 20 s, the same as ours)."""
    await settle(c)
    rss0 = c.rss()
    peers: list[Peer] = []
    gate = asyncio.Semaphore(8)  # a few joins in flight, as people arrive in a real crowd
    started = time.perf_counter()

    async def arrive(n: int) -> None:
        async with gate:
            peer, _ = await open_peer(
                c.ports[n % len(c.ports)], slugs[n // 12], cookies[n % len(cookies)]
            )
            peers.append(peer)

    await asyncio.gather(*(arrive(n) for n in range(count)))
    joined_in = time.perf_counter() - started
    await settle(c)  # the joins' lobby and peer-joined events, before measuring
    rss1 = c.rss()
    heartbeat = peers[0].heartbeat

    async def beat(peer: Peer, offset: float) -> None:
        await asyncio.sleep(offset)
        while True:
            await peer.ws.send('{"type":"ping"}')
            await asyncio.sleep(heartbeat)

    cpu0, wall0 = c.cpu(), time.perf_counter()
    beats = [
        asyncio.get_running_loop().create_task(beat(p, heartbeat * n / count))
        for n, p in enumerate(peers)
    ]
    await asyncio.sleep(seconds)
    cpu, wall = c.cpu() - cpu0, time.perf_counter() - wall0
    for task in beats:
        task.cancel()
    await close_all(peers)
    return {
        "connections": count,
        "joined_in_s": round(joined_in, 1),
        "rss_per_connection_kb": round((rss1 - rss0) / count / 1024, 1),
        "heartbeat_s": heartbeat,
        "heartbeat_cpu_percent_of_one_core": round(cpu / wall * 100, 1),
    }


# --- Running it all ---------------------------------------------------------------------------


# name: (workers, layer, idle connections measured). The core layer is measured on the relay,
# join and chat workloads only, to compare it with pub/sub (docs/deployment.md); Confab
# ships pub/sub, so the long idle phases are not repeated for it.
SETUPS = {
    "memory": (1, "memory", True),
    "redis1": (1, "pubsub", True),
    "redis2": (2, "pubsub", True),
    "core1": (1, "core", False),
    "core2": (2, "core", False),
    "redis2x": (2, "pubsub", False),
}
# Setups whose workers get a core each (the others pin every server to CPU 0), and the
# phases they run: the start of the hour on two workers, each as fast as one. On a machine
# of two cores the load generator then shares the cores with the workers.
SPREAD_SETUPS = {"redis2x": ("join", "burst", "chat")}
LAYER_NAMES = {"memory": "in-memory", "pubsub": "redis pub/sub", "core": "redis core"}


PHASES = ("relay", "join", "burst", "storm", "chat", "idle")


async def measure(setup: str, quick: bool, phases: tuple[str, ...] = PHASES) -> dict[str, Any]:
    workers, layer, idle = SETUPS[setup]
    spread = setup in SPREAD_SETUPS
    if spread:
        phases = tuple(phase for phase in phases if phase in SPREAD_SETUPS[setup])
    seconds = 3 if quick else 8
    levels = [250, 500] if quick else LEVELS
    idle_counts = ([200] if quick else [1000, 5000]) if idle else []
    out: dict[str, Any] = {
        "setup": setup,
        "workers": f"{workers} (a core each)" if spread else workers,
        "layer": LAYER_NAMES[layer],
    }
    with cluster(workers, layer, spread=spread) as c:
        base = f"http://127.0.0.1:{c.ports[0]}"
        cookies = await asyncio.to_thread(make_accounts, base, 4)
        print(f"  {setup}: accounts ready", flush=True)
        if "relay" in phases:
            relay_rooms = await asyncio.to_thread(make_rooms, base, cookies[0], 100, 2)
            out["relay"] = await relay_phase(c, cookies, relay_rooms, levels, seconds)
        if "join" in phases:
            (join_room,) = await asyncio.to_thread(make_rooms, base, cookies[0], 1, 12)
            out["join"] = await join_phase(c, cookies, join_room, 20 if quick else 50)
            print(f"  {setup}: join {out['join']}", flush=True)
        if "burst" in phases:
            burst_rooms = await asyncio.to_thread(make_rooms, base, cookies[0], BURST, 2)
            out["burst"] = await burst_phase(c, cookies, burst_rooms, 2)
            print(f"  {setup}: burst {out['burst']}", flush=True)
        if "storm" in phases:
            storm_rooms = await asyncio.to_thread(make_rooms, base, cookies[0], 10, 6)
            out["storm"] = await storm_phase(c, cookies, storm_rooms, 60, 5)
            print(f"  {setup}: storm {out['storm']}", flush=True)
        out["chat"] = []
        for size in (6, 12) if "chat" in phases else ():
            chat_rooms = await asyncio.to_thread(
                make_rooms, base, cookies[0], CHAT_PEOPLE // size, size
            )
            out["chat"].append(await chat_phase(c, cookies, chat_rooms, size, 40 if quick else 400))
            print(f"  {setup}: chat {out['chat'][-1]}", flush=True)
        out["idle"] = []
        for count in idle_counts if "idle" in phases else []:
            # Fresh rooms for each size: the seats of the previous phase may still be
            # being given back when it starts.
            idle_rooms = await asyncio.to_thread(make_rooms, base, cookies[0], count // 12 + 1, 12)
            out["idle"].append(await idle_phase(c, cookies, idle_rooms, count, 10 if quick else 40))
            print(f"  {setup}: idle {out['idle'][-1]}", flush=True)
    with cluster(workers, layer, app="bench.floor_asgi:application", spread=spread) as floor:
        floor_cookies = [""]
        slugs = [f"floor-{n}" for n in range(100)]
        if "relay" in phases:
            out["floor_relay"] = await relay_phase(floor, floor_cookies, slugs, levels, seconds)
        if "join" in phases:
            out["floor_join"] = await join_phase(
                floor, floor_cookies, "floor-join", 20 if quick else 50
            )
        if "burst" in phases:
            out["floor_burst"] = await burst_phase(
                floor, floor_cookies, [f"floor-burst-{n}" for n in range(BURST)], None
            )
        out["floor_chat"] = [
            await chat_phase(
                floor,
                floor_cookies,
                [f"floor-chat-{size}-{n}" for n in range(CHAT_PEOPLE // size)],
                size,
                40 if quick else 400,
            )
            for size in ((6, 12) if "chat" in phases else ())
        ]
        out["floor_idle"] = [
            await idle_phase(
                floor,
                floor_cookies,
                [f"floor-idle-{n}" for n in range(max(idle_counts) // 12 + 1)],
                count,
                10 if quick else 40,
            )
            for count in (idle_counts if "idle" in phases else [])
        ]
    return out


def machine() -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    versions = subprocess.run(
        [PYTHON, "-m", "pip", "freeze"], capture_output=True, text=True, check=False
    ).stdout
    wanted = (
        "Django==",
        "channels==",
        "daphne==",
        "channels-redis==",
        "redis==",
        "Twisted==",
        "websockets==",
    )
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": ", ".join(line for line in versions.splitlines() if line.startswith(wanted)),
        "redis": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[2],
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run, to check the benchmark itself"
    )
    parser.add_argument(
        "--setups",
        default=",".join(SETUPS),
        help=f"comma-separated, of: {', '.join(SETUPS)}",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated phases, of: {', '.join(PHASES)}; written to "
        "bench/results/only.json, leaving latest.json and docs/performance.md alone",
    )
    args = parser.parse_args()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    phases = tuple(args.only.split(",")) if args.only else PHASES
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    partial = args.quick or bool(args.only)
    path = out / ("quick.json" if args.quick else "only.json" if args.only else "latest.json")
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "setups": []}
    for setup in args.setups.split(","):
        print(f"{setup}:", flush=True)
        # The load generator on CPU 1, the servers on CPU 0; where each worker has a core of
        # its own, the generator goes where the scheduler puts it.
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) if setup in SPREAD_SETUPS else {1})
        results["setups"].append(asyncio.run(measure(setup, args.quick, phases)))
        save(results, path, partial)  # after each setup: a later failure loses nothing
    print(json.dumps(results, indent=2))


def save(results: dict[str, Any], path: Path, quick: bool) -> None:
    results = {**results, "setups": list(results["setups"])}
    if path.exists() and not quick:
        # Setups measured in an earlier run and not in this one are kept, so that the setups
        # can be measured one at a time (each holds the machine for several minutes).
        earlier = json.loads(path.read_text())
        measured = {s["setup"] for s in results["setups"]}
        kept = [s for s in earlier.get("setups", []) if s["setup"] not in measured]
        order = list(SETUPS)
        results["setups"] = sorted(kept + results["setups"], key=lambda s: order.index(s["setup"]))
        for key in ("call_setup", "sfu"):  # the browser benches' figures, measured apart
            if key in earlier:
                results[key] = earlier[key]
    path.write_text(json.dumps(results, indent=2))
    if not quick:
        from bench.report import write_report

        write_report(results, ROOT / "docs" / "performance.md")


def store_result(key: str, result: dict[str, Any]) -> None:
    """A browser bench's figures (bench/call_setup.py, bench/sfu.py) into latest.json under
    `key`, beside the others, and the tables of docs/performance.md again."""
    from bench.report import write_report

    path = ROOT / "bench" / "results" / "latest.json"
    results = (
        json.loads(path.read_text()) if path.exists() else {"machine": machine(), "setups": []}
    )
    results[key] = result
    path.write_text(json.dumps(results, indent=2))
    write_report(results, ROOT / "docs" / "performance.md")


if __name__ == "__main__":
    main()
