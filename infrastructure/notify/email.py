"""E-mail over SMTP (aiosmtplib): one message per delivery, plain text and HTML from
templates/ (string.Template: the few fields need no template engine), Message-ID derived from
the event id so a repeated send is recognisably the same message."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from importlib import resources
from string import Template

import aiosmtplib

from domain.notifications import Delivery, NotificationKind, SendFailed

# A kept connection idle longer is closed rather than reused (servers drop idle clients
# after a few minutes; RFC 5321 suggests 5).
IDLE_SECONDS = 30.0
SUBJECTS = {
    NotificationKind.PROMOTED: "You are enrolled in ${course} ${section}",
    NotificationKind.OFFERED: "A seat in ${course} ${section} is offered to you until ${until}",
    NotificationKind.OFFER_EXPIRED: "Your offer of a seat in ${course} ${section} has expired",
    NotificationKind.OFFER_DECLINED: "You declined the seat in ${course} ${section}",
    NotificationKind.SWAP_COMPLETED: "Swap completed: you are enrolled in ${course} ${section}",
    NotificationKind.DROPPED_LINKED: "You were dropped from ${course} ${section}",
    NotificationKind.REMOVED_FROM_WAITLIST: "You were removed from the waitlist of ${course} "
    "${section}",
}
MESSAGES = {
    NotificationKind.PROMOTED: "A seat opened and you have been moved from the waitlist: you "
    "are now enrolled in ${course} ${section}.",
    NotificationKind.OFFERED: "A seat opened in ${course} ${section} and it is held for you. "
    "Claim it before ${until}, or it passes to the next student in line.",
    NotificationKind.OFFER_EXPIRED: "The seat offered to you in ${course} ${section} was not "
    "claimed in time: you are off its waitlist and the seat went to the next student in line.",
    NotificationKind.OFFER_DECLINED: "You declined the seat offered in ${course} ${section}: "
    "you are off its waitlist and the seat went to the next student in line.",
    NotificationKind.SWAP_COMPLETED: "Your swap went through: you are enrolled in ${course} "
    "${section}, and ${replaced} was dropped.",
    NotificationKind.DROPPED_LINKED: "You were dropped from ${course} ${section} because the "
    "section it is linked to was dropped.",
    NotificationKind.REMOVED_FROM_WAITLIST: "You were removed from the waitlist of ${course} "
    "${section}: a registration rule now refuses you (${reason}).",
}


def _template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates", name).read_text())


TEXT, HTML = _template("email.txt"), _template("email.html")


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(delivery: Delivery, sender: str) -> EmailMessage:
    """The message: subject, plain text and HTML naming the course, section, new status and
    (an offer) its deadline."""
    fields = {
        "name": delivery.student_name,
        "course": delivery.course_code,
        "title": delivery.course_title,
        "section": delivery.section_code,
        "semester": delivery.semester_name,
        "status": delivery.status,
        "until": when(delivery.expires),
        "reason": delivery.reason or "",
        "replaced": delivery.replaced_code or "your former section",
        "event_id": str(delivery.event_id),
        "occurred": when(delivery.occurred_at),
    }
    subject = Template(SUBJECTS[delivery.kind]).substitute(fields)
    message = Template(MESSAGES[delivery.kind]).substitute(fields)
    deadline = f"  Claim by: {fields['until']}\n" if delivery.expires else ""
    text = TEXT.substitute(fields, subject=subject, message=message, deadline=deadline)
    escaped = {k: html.escape(v) for k, v in fields.items()}
    row = f'<tr><th align="left">Claim by</th><td>{escaped["until"]}</td></tr>'
    page = HTML.substitute(
        escaped,
        subject=html.escape(subject),
        message=html.escape(message),
        deadline=row if delivery.expires else "",
    )
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = sender
    mail["To"] = delivery.email
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = f"<{delivery.event_id}@coursereg.notifications>"
    mail["X-Coursereg-Event-Id"] = str(delivery.event_id)
    mail["X-Coursereg-Event-Type"] = delivery.kind.value
    mail.set_content(text)
    mail.add_alternative(page, subtype="html")
    return mail


@dataclass(slots=True)
class SmtpChannel:
    """Sends over a few kept SMTP connections (one per concurrent send), each reused while
    it was idle less than IDLE_SECONDS: a rush pays one connect, EHLO, STARTTLS and login
    per connection, not per message. A connection that fails is closed, never reused."""

    host: str
    port: int
    sender: str
    starttls: bool = True
    user: str | None = None
    password: str | None = None
    timeout: float = 10.0
    _idle: list[tuple[float, aiosmtplib.SMTP]] = field(default_factory=list)

    async def send(self, delivery: Delivery) -> None:
        message = render(delivery, self.sender)
        client = await self._client()
        try:
            await client.send_message(message, timeout=self.timeout)
        except BaseException as exc:
            client.close()
            if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
                raise SendFailed(f"smtp: {type(exc).__name__}: {exc}") from exc
            raise
        self._idle.append((time.monotonic(), client))

    async def _client(self) -> aiosmtplib.SMTP:
        while self._idle:
            since, client = self._idle.pop()
            if client.is_connected and time.monotonic() - since < IDLE_SECONDS:
                return client
            client.close()
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            start_tls=self.starttls,
            username=self.user,
            password=self.password,
            timeout=self.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            raise SendFailed(f"smtp: {type(exc).__name__}: {exc}") from exc
        return client

    def close(self) -> None:
        for _, client in self._idle:
            client.close()
        self._idle.clear()
