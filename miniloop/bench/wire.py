"""Just enough HTTP/1.1 for the load generator: keep-alive clients and a callback server.

The simulated DFSPs of `miniloop bench` share the machine with the hub, so every microsecond
they spend is taken from the switch being measured. A full client (aiohttp) costs the generator
about as much CPU per transfer as the hub itself spends; these asyncio protocols do only what the
benchmark needs: requests with a Content-Length body over kept-alive connections, answered in
order, and a server that answers every callback at once with an empty 200 or 202.

Not a general HTTP implementation: no chunked bodies, no pipelining. The hub and the baseline
forwarder never send those to a DFSP. The clients speak TLS to an https hub (`miniloop bench
--url https://...`, with --tls-cert/--tls-key/--tls-ca: miniloop.tls.tool_context); the callback
server is plain HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 404: b"Not Found"}
HEAD_MAX = 64 * 1024  # a response head bigger than this is a broken peer
CONNECT_TIMEOUT_S = 5.0


class HttpError(Exception):
    pass


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Send small messages at once (no Nagle): every message here is one small write."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _ClientConnection(asyncio.Protocol):
    """One kept-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _no_delay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection closed ({exc})"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > HEAD_MAX:
                self._fail("response head too long")
            return
        head = bytes(buffer[:end]).lower()
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17: stop if stop >= 0 else len(head)])
        elif b"\r\ntransfer-encoding:" in head:
            self._fail("chunked responses are not supported by the load generator")
            return
        total = end + 4 + length
        if len(buffer) < total:
            return
        status = int(head[9:12])
        body = bytes(buffer[end + 4: total])
        del buffer[:total]
        if b"\r\nconnection: close" in head and self.transport is not None:
            self.closed = True
            self.transport.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, why: str) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(why))


class Client:
    """A pool of kept-alive connections to one server (at most `limit` at a time)."""

    def __init__(self, base_url: str, limit: int = 256, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        https = parts.scheme == "https"
        self.port = parts.port or (443 if https else 80)
        # https: the given context (a client certificate for mutual TLS), else the system's CAs
        self._ssl = (ssl_context or ssl.create_default_context()) if https else None
        self.prefix = parts.path.rstrip("/").encode()
        self._host_header = f"host: {parts.netloc}\r\n".encode()
        self._idle: deque[_ClientConnection] = deque()
        self._slots = asyncio.Semaphore(limit)

    async def request(self, method: bytes, path: bytes, headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request; return (status, body). `headers` are complete header lines."""
        head = b"%s %s%s HTTP/1.1\r\n%s%scontent-length: %d\r\n\r\n" % (
            method, self.prefix, path, self._host_header, headers, len(body))
        async with self._slots:
            connection = await self._connection()
            loop = asyncio.get_running_loop()
            connection.waiter = loop.create_future()
            assert connection.transport is not None
            connection.transport.write(head + body if body else head)
            try:
                result = await connection.waiter
            except BaseException:
                connection.closed = True
                connection.transport.close()
                raise
            if not connection.closed:
                self._idle.append(connection)
            return result

    async def _connection(self) -> _ClientConnection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(_ClientConnection, self.host, self.port, ssl=self._ssl,
                                   server_hostname=self.host if self._ssl is not None else None), CONNECT_TIMEOUT_S)
        return protocol

    def close(self) -> None:
        while self._idle:
            connection = self._idle.pop()
            if connection.transport is not None:
                connection.transport.close()


Handler = Callable[[bytes, bytes, bytes, bytes], int]  # (method, path, head, body) -> status


class _ServerConnection(asyncio.Protocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _no_delay(transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > HEAD_MAX and self.transport is not None:
                    self.transport.close()
                return
            head = bytes(buffer[:end])
            lower = head.lower()
            length = 0
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17: stop if stop >= 0 else len(lower)])
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4: total])
            del buffer[:total]
            line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            method, path, _ = line.split(b" ", 2)
            try:
                status = self.handler(method, path, head, body)
            except Exception:  # a bug in the generator must not look like a hub failure
                status = 400
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\n\r\n" % (status, _REASONS.get(status, b"")))


async def serve(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Answer every request with `handler(method, path, head, body)`'s status and no body."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _ServerConnection(handler), host, port, backlog=1024)
