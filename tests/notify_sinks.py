"""Real receivers for the notification tests: an SMTP server (aiosmtpd, on a free port) and
an HTTP webhook receiver (Starlette on uvicorn) that checks each Standard Webhooks signature
with the spec's reference library. Both can be told to fail or to hold their answer."""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import free_port, serve


@dataclass
class Mail:
    to: list[str]
    message: EmailMessage
    at: float

    @property
    def event_id(self) -> str:
        return str(self.message["X-Coursereg-Event-Id"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())


@dataclass
class SmtpSink:
    """aiosmtpd in its own thread. `hold_first` seconds: the first message's DATA is answered
    that late (a kill lands mid-send); `stop()` / `start()` take it down and back up on the
    same port."""

    port: int = field(default_factory=free_port)
    mails: list[Mail] = field(default_factory=list)
    hold_first: float = 0.0
    received_first: threading.Event = field(default_factory=threading.Event)
    _controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        first = not self.mails
        self.mails.append(Mail([str(t) for t in envelope.rcpt_tos], message, time.time()))
        if first and self.hold_first:
            self.received_first.set()
            await asyncio.sleep(self.hold_first)
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.to]

    def counts(self) -> Counter[str]:
        return Counter(m.event_id for m in self.mails)


@contextlib.contextmanager
def smtp_sink(**given: Any) -> Any:
    sink = SmtpSink(**given)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@dataclass
class Hook:
    event_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class WebhookSink:
    """Every request verified against `secret`; `fail_first` tries of each event answered
    503; the first request held `hold_first` seconds before its answer."""

    secret: str
    fail_first: int = 0
    hold_first: float = 0.0
    hooks: list[Hook] = field(default_factory=list)  # verified and answered 2xx (or held)
    tries: Counter[str] = field(default_factory=Counter)  # every verified request per event
    bad_signatures: int = 0
    received_first: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        try:
            Webhook(self.secret).verify(body, headers)
        except Exception:
            self.bad_signatures += 1
            return Response(status_code=400)
        event_id = headers["webhook-id"]
        self.tries[event_id] += 1
        if self.tries[event_id] <= self.fail_first:
            return Response(status_code=503)
        first = not self.hooks
        self.hooks.append(Hook(event_id, json.loads(body), headers, time.time()))
        if first and self.hold_first:
            self.received_first.set()
            await asyncio.sleep(self.hold_first)
        return Response(status_code=204)

    def counts(self) -> Counter[str]:
        return Counter(h.event_id for h in self.hooks)


@contextlib.asynccontextmanager
async def webhook_sink(secret: str, **given: Any) -> AsyncIterator[WebhookSink]:
    sink = WebhookSink(secret, **given)
    app = Starlette(routes=[Route("/hook", sink.receive, methods=["POST"])])
    async with serve(app) as url:
        sink.url = url + "/hook"
        yield sink
