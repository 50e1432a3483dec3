"""The push HTTP client against a scripted HTTP/1.1 server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from webpush_server.push.hosts import EndpointRefused, HostPolicy
from webpush_server.push.http import Client, InvalidRequest, ProtocolError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


async def serve(handler: Handler, scenario: Callable[[Client, str], Awaitable[None]]):
    """Run a server whose handler answers request k on a connection; run the scenario."""
    connections = []

    async def on_connect(reader, writer):
        connections.append(writer)
        count = 0
        try:
            while True:
                await read_request(reader)
                count += 1
                if not await handler(reader, writer, count):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Client(HostPolicy.parse(f"127.0.0.1:{port}"))
    try:
        await scenario(client, f"http://127.0.0.1:{port}")
    finally:
        client.close()
        server.close()
        await server.wait_closed()
        # Closing a transport completes on the next loop iterations: let them run.
        for _ in range(3):
            await asyncio.sleep(0)
    return connections


def run(coro):
    return asyncio.run(coro)


async def ok(reader, writer, count) -> bool:
    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    return True


def test_keep_alive_reuses_one_connection():
    async def scenario(client, origin):
        pool = client.pool(origin)
        for _ in range(5):
            response = await pool.post("/push/1", {"TTL": "60"}, b"x" * 100)
            assert response.status == 201

    assert len(run(serve(ok, scenario))) == 1


def test_chunked_body_and_headers_are_read():
    async def chunked(reader, writer, count) -> bool:
        writer.write(
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n5\r\nslow \r\n4\r\ndown\r\n0\r\n\r\n"
        )
        await writer.drain()
        return True

    async def scenario(client, origin):
        pool = client.pool(origin)
        for _ in range(2):  # the connection stays usable after a chunked body
            response = await pool.post("/p", {}, b"")
            assert (response.status, response.body) == (429, b"slow down")
            assert response.headers["retry-after"] == "7"

    assert len(run(serve(chunked, scenario))) == 1


def test_connection_close_is_honoured():
    async def closing(reader, writer, count) -> bool:
        writer.write(b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return False

    async def scenario(client, origin):
        for _ in range(3):
            assert (await client.pool(origin).post("/p", {}, b"")).status == 201

    assert len(run(serve(closing, scenario))) == 3


def test_a_reused_connection_dropped_before_answering_is_retried_once():
    async def drop_second(reader, writer, count) -> bool:
        if count == 2:
            return False  # read the request, close without a word: a stale keep-alive socket
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return True

    async def scenario(client, origin):
        pool = client.pool(origin)
        assert (await pool.post("/p", {}, b"")).status == 201
        assert (await pool.post("/p", {}, b"")).status == 201  # retried on a new connection

    assert len(run(serve(drop_second, scenario))) == 2


def test_a_broken_answer_is_not_retried():
    async def garbage(reader, writer, count) -> bool:
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\nshort")
        await writer.drain()
        return False

    async def scenario(client, origin):
        with pytest.raises(ProtocolError):
            await client.pool(origin).post("/p", {}, b"")

    assert len(run(serve(garbage, scenario))) == 1


def test_header_injection_is_refused():
    async def scenario(client, origin):
        with pytest.raises(ValueError):
            await client.pool(origin).post("/p", {"Topic": "a\r\nX-Evil: 1"}, b"")

    assert run(serve(ok, scenario)) == []


def test_unlisted_loopback_is_refused_before_connecting():
    async def scenario():
        client = Client(HostPolicy.parse("localhost"))
        with pytest.raises(EndpointRefused):
            await client.pool("https://localhost").post("/p", {}, b"")

    run(scenario())


@pytest.mark.parametrize("target", ["/push/中文", "/push/a b", "/push/\x00", "push/1"])
def test_a_request_we_cannot_write_is_refused_before_connecting(target):
    async def scenario(client, origin):
        pool = client.pool(origin)
        with pytest.raises(InvalidRequest):
            await pool.post(target, {"TTL": "60"}, b"x")
        # The pool is fine for the next request.
        assert (await pool.post("/push/1", {"TTL": "60"}, b"x")).status == 201

    assert len(run(serve(ok, scenario))) == 1
