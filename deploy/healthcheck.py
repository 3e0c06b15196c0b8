"""Ask one Confab worker for /healthz directly (not through nginx); exit 0 only on 200.

    python deploy/healthcheck.py /run/confab/daphne-1.sock       # a worker's Unix socket
    python deploy/healthcheck.py 127.0.0.1:8001                  # or host:port
    python deploy/healthcheck.py /run/confab/daphne-1.sock --host meet.example.org

Django answers only for ALLOWED_HOSTS, so the request names the first usable entry of the
ALLOWED_HOSTS environment variable, or --host. Used by the compose file's healthchecks and
usable from a monitor or a systemd timer. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import sys


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def default_host() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        host = entry.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a Unix socket path, or host:port")
    parser.add_argument("--host", default=default_host(), help="Host header to send")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()

    connection: http.client.HTTPConnection
    if args.target.startswith("/"):
        connection = UnixHTTPConnection(args.target, args.timeout)
    else:
        address, _, port = args.target.rpartition(":")
        connection = http.client.HTTPConnection(address, int(port), timeout=args.timeout)
    try:
        connection.request("GET", "/healthz", headers={"Host": args.host})
        response = connection.getresponse()
        body = response.read(2000).decode("utf-8", "replace")
    except OSError as problem:
        print(f"unhealthy: {args.target}: {problem}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if response.status != 200:
        print(f"unhealthy: HTTP {response.status}: {body}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
