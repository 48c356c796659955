"""The app on a real socket: an in-process uvicorn for websocket tests, and `coursereg
serve` subprocesses for the multi-replica cases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.types import ASGIApp

from infrastructure.settings import Settings


def bound_socket() -> socket.socket:
    """A listening socket on a free port, handed to the server (no pick-then-bind race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with contextlib.closing(bound_socket()) as sock:
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, send_buffer: int | None = None) -> AsyncIterator[str]:
    """Serve an app whose lifespan already runs; yields its http://host:port.
    `send_buffer` sets SO_SNDBUF of the accepted sockets (they inherit the listener's)."""
    sock = bound_socket()
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def replica_env(settings: Settings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.postgres,
        "REDIS_URL": settings.redis,
        "COURSEREG_JWT_SECRET": settings.jwt_secret,
        "COURSEREG_KEY_PREFIX": settings.key_prefix,
        "COURSEREG_SHARDS": str(settings.shards),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }


@contextlib.asynccontextmanager
async def replicas(
    settings: Settings, count: int, timeout: float = 30.0
) -> AsyncIterator[list[str]]:
    """`count` `coursereg serve` processes on free ports, sharing the settings' database and
    key prefix; yields their URLs once every /ready is 200."""
    ports = [free_port() for _ in range(count)]
    command = [sys.executable, "-m", "infrastructure.cli", "serve"]
    processes = [subprocess.Popen(command, env=replica_env(settings, port)) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        await asyncio.gather(
            *(wait_ready(u, p, timeout) for u, p in zip(urls, processes, strict=True))
        )
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"replica exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"replica at {url} never became ready")


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http") + "/graphql"
