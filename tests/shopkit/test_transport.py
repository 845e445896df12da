"""The services' HTTP client on a real wire: httpx's API over aiohttp's pool (`shopkit.http.AiohttpTransport`).

A raw asyncio server on loopback plays the upstream, so each test decides exactly what the wire does: answer, close
without answering, stay silent, or refuse the connection. The failures must arrive as the httpx exceptions that
balancing, retries and the gateway's mapping decide on."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from shop_devtools.processes import free_port
from shopkit import create_client, send_with_retries
from shopkit.http import KEEPALIVE_EXPIRY_SECONDS, BalancedTransport
from shopkit.server import KEEP_ALIVE_SECONDS

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
CLOSING = OK.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)


@dataclass
class Wire:
    """What the upstream saw: one entry per connection, the raw request heads it read on it."""

    url: str
    connections: list[list[bytes]] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0


Answer = Callable[[bytes], Awaitable[bytes | None]]
"""Given a request's head, the bytes to answer with; None closes the connection without an answer."""


async def ok(_head: bytes) -> bytes:
    return OK


@asynccontextmanager
async def upstream(answer: Answer = ok) -> AsyncIterator[Wire]:
    port = free_port()
    wire = Wire(f"http://127.0.0.1:{port}")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads: list[bytes] = []
        wire.connections.append(heads)
        wire.open_now += 1
        wire.most_open = max(wire.most_open, wire.open_now)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                heads.append(head)
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)  # fmt: skip
                await reader.readexactly(length)
                reply = await answer(head)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            wire.open_now -= 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        yield wire


async def test_requests_share_a_kept_alive_connection_and_an_idle_one_is_dropped_before_the_server_would() -> None:
    assert KEEPALIVE_EXPIRY_SECONDS < KEEP_ALIVE_SECONDS  # uvicorn closes idle connections after KEEP_ALIVE_SECONDS
    async with upstream() as wire, create_client(wire.url, timeout=5) as client:
        for _ in range(20):
            assert (await client.get("/products")).json() == {"ok": True}
        assert [len(heads) for heads in wire.connections] == [20]
        await asyncio.sleep(KEEPALIVE_EXPIRY_SECONDS + 0.5)
        assert (await client.get("/products")).status_code == 200
    assert [len(heads) for heads in wire.connections] == [20, 1]


async def test_no_more_connections_than_the_bulkhead_allows() -> None:
    async def slow(_head: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return OK

    async with upstream(slow) as wire, create_client(wire.url, timeout=5, max_connections=4) as client:
        answers = await asyncio.gather(*(client.get("/products") for _ in range(40)), return_exceptions=True)
    refused = [a for a in answers if isinstance(a, httpx.PoolTimeout)]
    assert [a.status_code for a in answers if isinstance(a, httpx.Response)] == [200] * (40 - len(refused))
    assert wire.most_open == 4
    assert len(wire.connections) == 4


async def test_the_path_query_and_headers_arrive_as_the_client_encoded_them() -> None:
    async with upstream() as wire, create_client(wire.url, timeout=5) as client:
        url = httpx.URL(path="/products/a%2Fb/%2e%2e", query=b"q=%E2%82%AC&x=1")
        await client.get(url, headers={"Idempotency-Key": "key with spaces\tand tab", "X-Request-ID": "r-1"})
    head = wire.connections[0][0]
    assert head.startswith(b"GET /products/a%2Fb/%2e%2e?q=%E2%82%AC&x=1 HTTP/1.1\r\n")
    assert b"\r\nidempotency-key: key with spaces\tand tab\r\n" in head.lower()
    assert b"\r\nx-request-id: r-1\r\n" in head.lower()


@pytest.mark.parametrize("value", [b"key\x00", b"cl\xe9", b"key-\xff\xfe", b"a\x7fb"])
async def test_a_header_value_that_cannot_pass_unchanged_is_refused_before_anything_is_sent(value: bytes) -> None:
    async with upstream() as wire, create_client(wire.url, timeout=5) as client:
        with pytest.raises(httpx.LocalProtocolError):
            await client.get("/products", headers=[(b"idempotency-key", value)])
    assert wire.connections == []


async def test_a_refused_connection_is_a_connect_error_and_balancing_skips_that_replica() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with create_client(dead, timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/products")
    async with upstream() as wire, create_client(f"{dead},{wire.url}", timeout=5) as client:
        statuses = [(await client.get("/products")).status_code for _ in range(6)]
    assert statuses == [200] * 6
    assert sum(map(len, wire.connections)) == 6


async def test_a_replica_that_answers_connection_close_is_left_out_of_the_round_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a replica out of rotation says (unready or draining): the next requests go to the other replicas, and
    it is tried again once `OUT_OF_ROTATION_SECONDS` passed. With every replica out, the round goes on as before."""
    monkeypatch.setattr(BalancedTransport, "OUT_OF_ROTATION_SECONDS", 0.5)
    closing = {"now": True}

    async def unready(_head: bytes) -> bytes:
        return CLOSING if closing["now"] else OK

    async def always_closing(_head: bytes) -> bytes:
        return CLOSING

    async with (
        upstream(unready) as sick,
        upstream() as well,
        create_client(f"{sick.url},{well.url}", timeout=5) as client,
    ):
        statuses = [(await client.get("/products")).status_code for _ in range(8)]
        assert statuses == [200] * 8
        assert sum(map(len, sick.connections)) == 1, "one answer with Connection: close, then left out"
        closing["now"] = False
        await asyncio.sleep(0.6)
        for _ in range(8):
            await client.get("/products")
        assert sum(map(len, sick.connections)) == 5, "back in the round: every other request"
    async with upstream(always_closing) as one, upstream(always_closing) as other:
        async with create_client(f"{one.url},{other.url}", timeout=5) as client:
            for _ in range(6):
                await client.get("/products")
        assert [sum(map(len, one.connections)), sum(map(len, other.connections))] == [3, 3], "all out: the round"


async def test_a_connection_closed_without_an_answer_is_retried_when_the_request_may_be_sent_again() -> None:
    seen = 0

    async def drop_the_first(_head: bytes) -> bytes | None:
        nonlocal seen
        seen += 1
        return None if seen == 1 else OK

    async with upstream(drop_the_first) as wire, create_client(wire.url, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):  # a POST without an Idempotency-Key is sent once
            await send_with_retries(client, client.build_request("POST", "/payments", json={}))
        seen = 0
        keyed = client.build_request("POST", "/payments", json={}, headers={"Idempotency-Key": "k"})
        assert (await send_with_retries(client, keyed)).status_code == 200
    assert seen == 2
    assert len(wire.connections) == 3


async def test_an_upstream_that_does_not_answer_is_a_read_timeout() -> None:
    async def silent(_head: bytes) -> bytes:
        await asyncio.sleep(10)
        return OK

    async with upstream(silent) as wire, create_client(wire.url, timeout=1.0) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/products")
    assert len(wire.connections) == 1


async def test_an_answer_that_is_not_http_is_a_protocol_error() -> None:
    async def garbage(_head: bytes) -> bytes:
        return b"SMTP ready\r\n\r\n"

    async with upstream(garbage) as wire, create_client(wire.url, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/payments", json={})
    assert len(wire.connections) == 1
