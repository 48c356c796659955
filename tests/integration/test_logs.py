"""Logs an operator can search: JSON lines (LOG_FORMAT=json), the request id on the API's
lines and again on the worker's line for the change it wrote, and never a token or the
JWT secret, even at DEBUG."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from domain.model import Role
from infrastructure.auth import TokenService
from infrastructure.logs import RedactedJson, RedactedText, Redactor, RequestIdFilter, secrets_of
from infrastructure.settings import Settings, load_settings
from tests.client import REGISTER
from tests.conftest import Api, Catalog
from tests.servers import free_port, replica_env, wait_ready
from tests.waiting import wait_until


@contextlib.asynccontextmanager
async def process(
    settings: Settings, log: Path, *command: str, env: dict[str, str], port: int = 0
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A `coursereg` process logging to `log`; SIGTERM and a clean exit at the end."""
    environment = {**replica_env(settings, port or free_port()), **env}
    with log.open("wb") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "infrastructure.cli", *command], env=environment, stderr=sink
        )
        try:
            yield child
        finally:
            child.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(child.wait, 30)
    assert code == 0, log.read_text()[-2000:]


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in parsed:
        assert {"time", "level", "logger", "message", "request_id"} <= set(record), record
    return parsed


async def test_request_ids_reach_the_worker_and_no_secret_is_logged(
    api: Api, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    section = await catalog.section(seats=5)
    (student,) = await catalog.students(1)
    token = api.student_token(student.id)
    forged = TokenService("another-secret-" + "z" * 40).issue(Role.STAFF, "mallory", 60)
    request_id = f"rid-{uuid.uuid4().hex}"
    port = free_port()
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    json_debug = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
    async with (
        process(settings, api_log, "serve", env=json_debug, port=port) as server,
        process(settings, worker_log, "worker", env=json_debug),
    ):
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, server, 30)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            variables = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
            answer = await client.post(
                "/graphql",
                json={"query": REGISTER, "variables": {"i": variables}},
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
            )
            assert answer.headers["x-request-id"] == request_id
            (result,) = answer.json()["data"]["register"]["results"]
            assert result["outcome"] == "ENROLLED"
            refused = await client.post(
                "/graphql",
                json={"query": "{ me { id } }"},
                headers={"Authorization": f"Bearer {forged}"},
            )
            assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            await wait_until(
                lambda: request_id in worker_log.read_text(), 10, "the worker logged the request"
            )

    api_lines, worker_lines = json_lines(api_log), json_lines(worker_log)
    assert any(r["request_id"] == request_id for r in api_lines), "the API logs the request id"
    applied = [r for r in worker_lines if request_id in r.get("request_ids", [])]
    assert applied and applied[0]["shard"] is not None, "the worker names the request"
    everything = api_log.read_text() + worker_log.read_text()
    for secret in (token, forged, settings.jwt_secret, token.split(".")[2]):
        assert secret not in everything


def _formatted(formatter: logging.Formatter, message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(f"test.redaction.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning(message, *args)
    return stream.getvalue()


def test_tokens_and_secrets_are_masked_in_both_formats() -> None:
    secret = "s3cret-" + "q" * 40
    settings = load_settings(
        jwt_secret=secret,
        database_url="postgresql://app:db-password@db:5432/coursereg",
        redis_url="redis://:redis-password@cache:6379/0",
    )
    token = TokenService(secret).issue(Role.STAFF, "admin", 60)
    redact = Redactor(secrets_of(settings))
    for formatter in (RedactedJson(redact), RedactedText(redact)):
        line = _formatted(
            formatter,
            "headers %s; token=%s; secret %s; urls %s %s",
            {"authorization": "Bearer opaque-token-value"},
            token,
            secret,
            settings.database_url,
            settings.redis_url,
        )
        for leaked in (token, secret, "opaque-token-value", "db-password", "redis-password"):
            assert leaked not in line, (leaked, line)
        assert "[redacted" in line
