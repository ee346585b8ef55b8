"""The hub's HTTP/1.1 client for callbacks to DFSPs: kept-alive connections, little else.

Every transfer costs the hub two callbacks, so the client is on the hot path. aiohttp's client
spent about a third of the event loop's time per callback in its own bookkeeping (request and
response objects, timers, header multidicts; docs/performance.md); a callback needs none of it:
send a request with a known body, read the status, drain the body, keep the connection.

What it does: one pool of connections per (host, port), at most `limit_per_host` open; bodies
delimited by Content-Length, chunked encoding, or the end of the connection; interim 1xx answers
skipped; a total timeout per request; a request that finds a kept-alive connection closed by the
server before any answer is sent once more on a new connection (the server never saw it). Plain
http only: miniloop.notify keeps aiohttp for https endpoints.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from urllib.parse import urlsplit

HEAD_MAX = 64 * 1024  # a response head bigger than this is refused
BODY_MAX = 1024 * 1024  # a callback's answer body is read and thrown away, up to this
CONNECT_TIMEOUT_S = 5.0


class HttpClientError(Exception):
    """The request could not be sent or its answer could not be read."""


class _Closed(HttpClientError):
    """The connection closed before any byte of the answer arrived."""


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; parses the answer as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.reusable = True
        self.closed = False
        self._status = 0
        self._mode = ""  # "", "length", "chunked", "close": how the body in progress ends
        self._left = 0
        self._read = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.buffer.clear()
        self._status, self._mode, self._read = 0, "", 0
        self.transport.write(data)
        return self.waiter

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self.waiter is not None and not self.waiter.done():
            if self._mode == "close":
                self._finish()
            elif self._status == 0 and not self.buffer:
                self.waiter.set_exception(_Closed("the connection closed before an answer"))
            else:
                self.waiter.set_exception(HttpClientError("the connection closed in the middle of the answer"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.reusable = False  # bytes nobody asked for: never reuse this connection
            if self.transport is not None:
                self.transport.close()
            return
        self.buffer += data
        try:
            self._parse()
        except (ValueError, HttpClientError) as exc:
            self.reusable = False
            if not self.waiter.done():
                self.waiter.set_exception(HttpClientError(f"bad answer: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def _parse(self) -> None:
        buffer = self.buffer
        while True:
            if not self._mode:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > HEAD_MAX:
                        raise HttpClientError("answer head too long")
                    return
                head = bytes(buffer[:end]).decode("latin-1").lower()
                del buffer[: end + 4]
                lines = head.split("\r\n")
                version, status = lines[0][:8], int(lines[0][9:12])
                if 100 <= status < 200:
                    continue  # interim answer (100 Continue): the real one follows
                fields = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    fields[name.strip()] = value.strip()
                self._status = status
                if fields.get("connection") == "close" or (version == "http/1.0" and fields.get("connection") != "keep-alive"):
                    self.reusable = False
                if status in (204, 304):
                    self._left, self._mode = 0, "length"
                elif "chunked" in fields.get("transfer-encoding", ""):
                    self._left, self._mode = -1, "chunked"
                elif "content-length" in fields:
                    self._left, self._mode = int(fields["content-length"]), "length"
                    if self._left < 0:
                        raise HttpClientError("negative content-length")
                else:
                    self._mode = "close"
                    self.reusable = False
            if self._mode == "length":
                take = min(self._left, len(buffer))
                del buffer[:take]
                self._left -= take
                self._count(take)
                if self._left == 0:
                    self._finish()
                return
            if self._mode == "close":
                self._count(len(buffer))
                buffer.clear()
                return
            # chunked: _left is what remains of the current chunk (-1: a size line is next)
            while True:
                if self._left > 0:
                    take = min(self._left, len(buffer))
                    del buffer[:take]
                    self._left -= take
                    self._count(take)
                    if self._left > 0:
                        return
                    self._left = -2  # the CRLF after the chunk
                if self._left == -2:
                    if len(buffer) < 2:
                        return
                    del buffer[:2]
                    self._left = -1
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";")[0].strip() or b"x", 16)
                if size == 0:  # the last chunk, then trailer lines up to an empty line
                    rest = end + 2
                    if buffer[rest: rest + 2] == b"\r\n":
                        done = rest + 2
                    else:
                        found = buffer.find(b"\r\n\r\n", rest)
                        if found < 0:
                            return
                        done = found + 4
                    del buffer[:done]
                    self._finish()
                    return
                del buffer[: end + 2]
                self._left = size

    def _count(self, n: int) -> None:
        self._read += n
        if self._read > BODY_MAX:
            raise HttpClientError(f"answer body longer than {BODY_MAX} bytes")

    def _finish(self) -> None:
        waiter, self.waiter = self.waiter, None
        self._mode = ""
        if self.buffer:
            self.reusable = False  # more than the answer: the connection is out of step
        if waiter is not None and not waiter.done():
            waiter.set_result(self._status)


class _Pool:
    """The connections to one server; at most `limit` requests at a time (the rest queue)."""

    def __init__(self, host: str, port: int, netloc: str, limit: int) -> None:
        self.host, self.port, self.netloc = host, port, netloc
        self.idle: deque[_Connection] = deque()
        self.limit = limit
        self.busy = 0
        self.queue: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        # cheaper than asyncio.Semaphore, whose acquire walks its waiters on every call
        if self.busy < self.limit and not self.queue:
            self.busy += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self.queue.append(turn)
        try:
            await turn  # release() hands its slot over: busy stays the same
        except BaseException:
            if not turn.cancelled() and turn.done():
                self.release()  # the slot arrived as we were cancelled: pass it on
            elif turn in self.queue:
                self.queue.remove(turn)
            raise

    def release(self) -> None:
        while self.queue:
            turn = self.queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.busy -= 1


class HttpClient:
    """Callbacks over kept-alive HTTP/1.1 connections, at most `limit_per_host` per server."""

    def __init__(self, limit_per_host: int = 64, timeout_s: float = 10.0) -> None:
        self._limit = limit_per_host
        self._timeout = timeout_s
        self._pools: dict[str, _Pool] = {}  # by "http://host:port"
        self._open: set[_Connection] = set()

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> int:
        """Send the request; return the answer's status once its body is read.

        Raises HttpClientError, OSError or TimeoutError when it cannot be done.
        """
        if not url.startswith("http://"):
            raise HttpClientError(f"not a plain http URL: {url}")
        slash = url.find("/", 7)
        base, target = (url, "/") if slash < 0 else (url[:slash], url[slash:])
        pool = self._pools.get(base) or self._new_pool(base, url)
        lines = [f"{method} {target} HTTP/1.1", f"host: {pool.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method not in ("GET", "DELETE"):
            lines.append(f"content-length: {len(body) if body else 0}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        async with asyncio.timeout(self._timeout):
            await pool.acquire()
            try:
                return await self._exchange(pool, data)
            finally:
                pool.release()

    def _new_pool(self, base: str, url: str) -> _Pool:
        parts = urlsplit(url)
        if not parts.hostname:
            raise HttpClientError(f"no host in {url}")
        pool = self._pools[base] = _Pool(parts.hostname, parts.port or 80, parts.netloc, self._limit)
        return pool

    async def _exchange(self, pool: _Pool, data: bytes) -> int:
        for attempt in range(2):
            connection, reused = await self._connection(pool, fresh=attempt > 0)
            try:
                status = await connection.send(data)
            except _Closed:
                self._drop(connection)
                if reused and attempt == 0:
                    continue  # the server had closed this idle connection: it never saw the request
                raise
            except BaseException:
                self._drop(connection)
                raise
            if connection.reusable and not connection.closed:
                pool.idle.append(connection)
            else:
                self._drop(connection)
            return status
        raise AssertionError("unreachable")

    async def _connection(self, pool: _Pool, fresh: bool = False) -> tuple[_Connection, bool]:
        while pool.idle and not fresh:
            connection = pool.idle.pop()
            if not connection.closed:
                return connection, True
            self._open.discard(connection)
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(_Connection, pool.host, pool.port), CONNECT_TIMEOUT_S)
        self._open.add(connection)
        return connection, False

    def _drop(self, connection: _Connection) -> None:
        self._open.discard(connection)
        if connection.transport is not None and not connection.closed:
            connection.transport.close()

    async def close(self) -> None:
        for connection in list(self._open):
            self._drop(connection)
        self._pools.clear()
