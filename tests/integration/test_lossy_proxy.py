"""The proxy of tests/lossy.py on a real Redis: what it loses, what it still forwards, and
what redis-py does after the loss (its Retry re-sends the request whose reply was lost)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import Servers
from tests.lossy import LossyProxy, parse_command, parse_reply


@pytest.fixture
async def direct(servers: Servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url, decode_responses=True)
    yield client
    await client.aclose()


def through(proxy: LossyProxy, retries: int) -> Redis:
    return Redis.from_url(proxy.url, decode_responses=True, retry=Retry(NoBackoff(), retries))


async def test_a_lost_reply_leaves_the_command_done_and_the_client_disconnected(
    lossy: LossyProxy, direct: Redis
) -> None:
    key = f"lossy:{uuid.uuid4().hex}"
    client = through(lossy, retries=0)
    try:
        assert await client.ping()
        fault = lossy.lose_reply(key, command="SET")
        with pytest.raises(RedisConnectionError):
            await client.set(key, "written", px=60_000)
        assert fault.fired.is_set()
        assert [c[0] for c in fault.commands] == [b"SET"]
        assert await direct.get(key) == "written"
        assert await client.get(key) == "written"  # a new connection: the fault fired once
    finally:
        await client.aclose()
        await direct.delete(key)


async def test_redis_py_resends_a_pipeline_whose_reply_was_lost(
    lossy: LossyProxy, direct: Redis
) -> None:
    """What F7 (c) rests on: Retry re-sends the whole pipeline, so each INCR ran twice and
    the client, told nothing of the loss, sees the second run's replies."""
    one, two = f"lossy:{uuid.uuid4().hex}", f"lossy:{uuid.uuid4().hex}"
    client = through(lossy, retries=1)
    try:
        fault = lossy.lose_reply(one, command="INCRBY")
        pipe = client.pipeline(transaction=False)
        pipe.incr(one)
        pipe.incr(two)
        assert await pipe.execute() == [2, 2]
        assert fault.fired.is_set() and len(fault.commands) == 2
        assert [await direct.get(one), await direct.get(two)] == ["2", "2"]
    finally:
        await client.aclose()
        await direct.delete(one, two)


async def test_replies_owed_before_the_matching_request_still_arrive(
    lossy: LossyProxy, direct: Redis
) -> None:
    key = f"lossy:{uuid.uuid4().hex}"
    host, port = lossy.url.removeprefix("redis://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        fault = lossy.lose_reply(key)
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)  # its own read at the proxy: an earlier request
        command = f"*3\r\n$3\r\nSET\r\n${len(key)}\r\n{key}\r\n$1\r\n1\r\n".encode()
        writer.write(command)
        await writer.drain()
        received = b""
        with contextlib.suppress(ConnectionResetError):  # the cut: a reset, or an end
            while chunk := await reader.read(1024):
                received += chunk
        assert received == b"+PONG\r\n"
        assert fault.fired.is_set()
        assert await direct.get(key) == "1"
    finally:
        writer.close()
        await direct.delete(key)


async def test_a_request_answered_noscript_did_not_run_and_keeps_the_fault_armed(
    lossy: LossyProxy, direct: Redis
) -> None:
    key = f"lossy:{uuid.uuid4().hex}"
    client = through(lossy, retries=0)
    script = client.register_script(f"-- {key}\nreturn redis.call('INCR', KEYS[1])")
    try:
        fault = lossy.lose_reply(script.sha, command="EVALSHA")
        with pytest.raises(RedisConnectionError):  # NOSCRIPT passed, the reload's call lost
            await script(keys=[key])
        assert fault.fired.is_set()
        assert await direct.get(key) == "1"
    finally:
        await client.aclose()
        await direct.delete(key)


async def test_a_delayed_reply_arrives_late_and_whole(lossy: LossyProxy, direct: Redis) -> None:
    key = f"lossy:{uuid.uuid4().hex}"
    await direct.set(key, "x" * 200_000, px=60_000)  # more than one read of the proxy
    client = through(lossy, retries=0)
    try:
        fault = lossy.delay_reply(key, seconds=0.3, command="GET")
        started = time.monotonic()
        assert await client.get(key) == "x" * 200_000
        assert time.monotonic() - started >= 0.3
        assert fault.fired.is_set()
    finally:
        await client.aclose()
        await direct.delete(key)


def test_the_parsers_wait_for_a_whole_command_or_reply() -> None:
    command = b"*2\r\n$3\r\nGET\r\n$5\r\nab\r\nc\r\n"
    reply = b"*3\r\n$3\r\nabc\r\n*2\r\n:1\r\n$-1\r\n%1\r\n+k\r\n-ERR v\r\n"
    for cut in range(len(command)):
        assert parse_command(command, 0) is not None
        assert parse_command(command[:cut], 0) is None
    assert parse_command(command, 0) == ([b"GET", b"ab\r\nc"], len(command))
    for cut in range(len(reply)):
        assert parse_reply(reply[:cut], 0) is None
    assert parse_reply(reply, 0) == (len(reply), True)
    assert parse_reply(b">2\r\n+a\r\n+b\r\n", 0) == (12, False)  # a RESP3 push
