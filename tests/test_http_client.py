"""miniloop.http_client, the hub's callback client, against real sockets on loopback.

DFSPs answer callbacks with whatever their HTTP stack does: a Content-Length body, a chunked
one, a body ended by closing the connection, a 100 Continue first, or they close an idle
kept-alive connection. Each must end in the right status, and a connection is reused only when
its answer was read completely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from miniloop.http_client import HttpClient, HttpClientError


class Canned:
    """A raw TCP server: for each request read, writes the next canned answer (bytes or a callable)."""

    def __init__(self, answers: list[bytes | Callable[[asyncio.Transport], None]]) -> None:
        self.answers = answers
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        canned = self

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport
                self.buffer = b""
                canned.connections += 1

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while b"\r\n\r\n" in self.buffer:
                    head, _, rest = self.buffer.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    if len(rest) < length:
                        return
                    canned.requests.append(head + b"\r\n\r\n" + rest[:length])
                    self.buffer = rest[length:]
                    answer = canned.answers.pop(0)
                    if callable(answer):
                        answer(self.transport)
                    else:
                        self.transport.write(answer)

        self.server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


def test_content_length_answers_reuse_one_connection() -> None:
    async def scenario() -> None:
        server = Canned([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"])
        async with server as url:
            client = HttpClient()
            assert await client.request("PUT", url + "/dfsp/transfers/1", {"fspiop-source": "Hub"}, b'{"a":1}') == 200
            assert await client.request("POST", url + "/dfsp/transfers?x=1", {}, b"{}") == 202
            await client.close()
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"PUT /dfsp/transfers/1 HTTP/1.1\r\n")
        assert b"\r\nfspiop-source: Hub\r\n" in first and b"\r\ncontent-length: 7\r\n" in first
        assert first.endswith(b'{"a":1}')
        assert server.requests[1].startswith(b"POST /dfsp/transfers?x=1 HTTP/1.1\r\n")
    run(scenario())


def test_chunked_answer_with_trailers_then_reuse() -> None:
    def chunked_in_pieces(transport: asyncio.Transport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab")
        transport.write(b"cd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: yes\r\n\r\n")

    async def scenario() -> None:
        server = Canned([chunked_in_pieces, b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"])
        async with server as url:
            client = HttpClient()
            assert await client.request("PUT", url + "/a", {}, b"x") == 200
            assert await client.request("PUT", url + "/b", {}, b"x") == 500
            await client.close()
        assert server.connections == 1
    run(scenario())


def test_body_ended_by_close_and_interim_100_continue() -> None:
    def until_close(transport: asyncio.Transport) -> None:
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nthe whole body")
        transport.close()

    async def scenario() -> None:
        server = Canned([until_close, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
        async with server as url:
            client = HttpClient()
            assert await client.request("PUT", url + "/a", {}, b"x") == 200
            assert await client.request("PUT", url + "/b", {}, b"x") == 200
            await client.close()
        assert server.connections == 2  # the first connection ended with its answer
    run(scenario())


def test_idle_connection_closed_by_the_server_is_replaced_once() -> None:
    def answer_then_close(transport: asyncio.Transport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        transport.close()  # like a keep-alive timeout: the client still holds it as idle

    async def scenario() -> None:
        server = Canned([answer_then_close, b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
        async with server as url:
            client = HttpClient()
            assert await client.request("PUT", url + "/a", {}, b"x") == 200
            await asyncio.sleep(0)  # let the close arrive (no timing involved: one loop turn)
            assert await client.request("POST", url + "/b", {}, b"x") == 202
            await client.close()
        assert len(server.requests) == 2
    run(scenario())


def test_silent_server_times_out_and_broken_answers_fail() -> None:
    async def scenario() -> None:
        server = Canned([lambda transport: None, b"NOT HTTP AT ALL\r\n\r\n"])
        async with server as url:
            client = HttpClient(timeout_s=0.3)
            with pytest.raises(TimeoutError):
                await client.request("PUT", url + "/a", {}, b"x")
            with pytest.raises(HttpClientError):
                await client.request("PUT", url + "/b", {}, b"x")
            with pytest.raises(HttpClientError):
                await client.request("PUT", "https://127.0.0.1/c", {}, b"x")
            await client.close()
    run(scenario())


def test_unreachable_server_raises_oserror() -> None:
    async def scenario() -> None:
        server = Canned([])
        async with server as url:
            pass  # closed: nothing listens there any more
        client = HttpClient(timeout_s=2)
        with pytest.raises(OSError):
            await client.request("PUT", url + "/a", {}, b"x")
        await client.close()
    run(scenario())


def test_requests_beyond_the_limit_wait_their_turn_on_the_same_connection() -> None:
    async def scenario() -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        server = Canned([answer] * 5)
        async with server as url:
            client = HttpClient(limit_per_host=1)
            statuses = await asyncio.gather(*(client.request("PUT", f"{url}/t/{i}", {}, b"x") for i in range(5)))
            await client.close()
        assert statuses == [200] * 5
        assert server.connections == 1  # one at a time: never a second connection
        assert sorted(r.split(b" ")[1] for r in server.requests) == [f"/t/{i}".encode() for i in range(5)]
    run(scenario())
