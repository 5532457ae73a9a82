"""An httpx transport with an overall deadline per request and a cap on the reply's size.

httpx's timeouts are per operation: a read timeout of 10 s never fires against a server that
sends one byte every 9 s (headers or body), so a trickling or stuck server could hold a request
forever, and a reply of gigabytes was read into memory. This transport gives every request
one deadline for the whole exchange (connect, send, headers, body) and refuses a reply past
`max_bytes`. It works at the socket level, through httpcore's pluggable network backend: every
read and write gets at most the time left, and a read after the deadline fails with
`httpx.ReadTimeout`, which the callers already turn into one line.

The official `ollama` client takes it as `transport=` (its keyword arguments go to
`httpx.Client`), so the ollama client stays the one that speaks the API.
"""

from __future__ import annotations

import time
from typing import Any

import httpcore
import httpx


class DeadlineExceeded(httpcore.ReadTimeout):
    pass


class _Clock:
    def __init__(self, deadline_s: float, max_bytes: int) -> None:
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.expires = time.monotonic() + deadline_s
        self.received = 0

    def start(self) -> None:
        self.expires = time.monotonic() + self.deadline_s
        self.received = 0

    def left(self, timeout: float | None) -> float:
        remaining = self.expires - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(
                f"no complete reply within {self.deadline_s:g} s (the server is too slow or stuck)"
            )
        return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, clock: _Clock) -> None:
        self.inner, self.clock = inner, clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            data = self.inner.read(max_bytes, self.clock.left(timeout))
        except httpcore.ReadTimeout:
            self.clock.left(None)  # past the deadline: say so, not just "timed out"
            raise
        self.clock.received += len(data)
        if self.clock.received > self.clock.max_bytes:
            raise httpcore.ReadError(
                f"the reply is larger than {self.clock.max_bytes:,} bytes; refused"
            )
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self.clock.left(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout=None):
        return _Stream(
            self.inner.start_tls(ssl_context, server_hostname, self.clock.left(timeout)),
            self.clock,
        )

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, clock: _Clock) -> None:
        self.inner = httpcore.SyncBackend()
        self.clock = clock

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self.inner.connect_tcp(
            host, port, self.clock.left(timeout), local_address, socket_options
        )
        return _Stream(stream, self.clock)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        stream = self.inner.connect_unix_socket(path, self.clock.left(timeout), socket_options)
        return _Stream(stream, self.clock)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """`httpx.HTTPTransport` whose every request must finish within `deadline_s` seconds
    and whose replies may not exceed `max_bytes` (one client, one request at a time)."""

    def __init__(self, deadline_s: float, max_bytes: int = 64 << 20) -> None:
        super().__init__()
        self.clock = _Clock(deadline_s, max_bytes)
        # httpx builds its pool without a network backend argument; this is the same pool
        # with the deadline backend (httpcore.ConnectionPool's documented parameter).
        self._pool = httpcore.ConnectionPool(network_backend=_Backend(self.clock))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.clock.start()
        return super().handle_request(request)
