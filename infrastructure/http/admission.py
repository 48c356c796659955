"""Graceful overload: admission control per process, in front of everything that can change
state. When more arrives than the process can serve, the admitted requests keep their
latency and the rest are refused at once, before anything runs (no idempotency key taken,
no saga begun), with a coded "busy, retry after N s": a GraphQL error UNAVAILABLE with
`extensions.retryAfter`, and over HTTP 503 with Retry-After (REST and GraphQL alike).

How a request is admitted (/graphql and /api/ only; everything else passes):

- A **concurrency limit** of requests in flight (at most COURSEREG_ADMISSION_LIMIT). Below
  it, a request goes straight in: the fast path costs a comparison and two increments.
  The limit follows the admitted requests' latency (a gradient, as Netflix's
  concurrency-limits does): every 100 ms, while their running average is above
  COURSEREG_ADMISSION_LATENCY_MS the limit is scaled down by target / measured (halved at
  most, never below COURSEREG_ADMISSION_MIN_LIMIT), and while it is below and the limit was
  reached, scaled up by 10%. By Little's law the limit then settles near the process's rate
  times the target: the admitted requests keep their latency however slow the process is
  (a machine shared with other work, a slower Redis). An idle or lightly loaded process
  keeps the full limit, so a burst is not refused for the quiet before it.
- A **bounded queue with a deadline** behind it (COURSEREG_ADMISSION_QUEUE waiting at most,
  each at most COURSEREG_ADMISSION_WAIT_MS). A request that would wait longer than the
  deadline, by the queue ahead of it and the service time measured so far, is refused at
  once; one that still waits out its deadline is refused then. Both before any state change.
- The **event loop's own lag** as the overload signal for the queue (CoDel's rule: the
  queueing delay above a target for a whole interval): a sampler measures how late the loop
  wakes it every 20 ms; once the lag has stayed above COURSEREG_ADMISSION_LAG_MS for 100 ms,
  nobody queues: a request that finds the limit full is refused at once, since every wait
  on a lagging loop is longer than it looks. Under overload the loop's own queue is what a
  counter of requests cannot see (requests uvicorn has read but the loop has not run yet).

The limit follows latency rather than the lag: an AIMD limit on the loop's lag was tried
and collapsed under a client that sends again at once (wrk, closed loop, 200 connections:
235 requests admitted in 8 s against 1,650/s without admission control), since refusals
cost the loop too and the lag stayed high however low the limit went. A fixed limit was
tried next: on a machine busy with other work the process's rate fell to 87/s and 256
requests in flight waited 3 s each. The latency the limit follows is measured from
admission to the answer, so a refusal storm that slows the loop shows in it only as much as
it slows the admitted requests, and the limit stops where they meet the target. Its floor
is high (64): with 16, a closed-loop client on a busy machine kept the latency up with the
refusals' own work and the limit at the floor (800 admitted in 8 s).

Cost (in process, this 2-core machine under other load): the middleware's fast path about
4 us a request, a refusal about 18 us before uvicorn's own share.

What is never shed before student writes (the choice): the probes and /metrics, pages and
static files pass without a limit (not /graphql nor /api/); websockets pass (a subscription
is one long request, limited per connection elsewhere). Staff and advisors have a lane of
their own (COURSEREG_ADMISSION_STAFF_LIMIT in flight), used when the main lane is full (when
both are, staff queue like anyone): a flood of student writes cannot starve staff reads.
The lane goes by a token the authenticator has already verified (its cache), or a
development token it checks on the spot (CPU only); a token it has not seen from the
identity provider goes to the main lane.

Written here rather than taken from a library: the limiters on PyPI (aiolimiter, the
`limits` package) bound a rate, not requests in flight with a deadline, and none looks at
the event loop's lag.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import ErrorCode
from domain.model import Role
from infrastructure.auth import Authenticator
from infrastructure.http.media import GRAPHQL_RESPONSE, negotiate
from infrastructure.metrics import (
    ADMISSION_IN_FLIGHT,
    ADMISSION_LIMIT,
    ADMISSION_QUEUE_SECONDS,
    ADMISSION_SHED,
    LOOP_LAG_SECONDS,
)
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

LIMITED_PREFIXES = ("/graphql", "/api/")
SAMPLE_SECONDS = 0.02  # the lag sampler's period
INTERVAL_SECONDS = 0.1  # how long the lag must stay above its target (CoDel's interval)
SERVICE_EWMA = 0.1  # weight of the newest service time in its running average
STAFF_ROLES = frozenset({Role.STAFF, Role.ADVISOR})


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    limit: int = 256
    min_limit: int = 64
    latency_seconds: float = 0.5
    queue: int = 256
    wait_seconds: float = 0.025
    lag_seconds: float = 0.05
    staff_limit: int = 8
    retry_after: float = 1.0

    @classmethod
    def of(cls, settings: Settings) -> AdmissionSettings:
        return cls(
            limit=settings.admission_limit,
            min_limit=min(settings.admission_min_limit, settings.admission_limit),
            latency_seconds=settings.admission_latency_ms / 1000,
            queue=settings.admission_queue,
            wait_seconds=settings.admission_wait_ms / 1000,
            lag_seconds=settings.admission_lag_ms / 1000,
            staff_limit=settings.admission_staff_limit,
            retry_after=settings.admission_retry_after,
        )


class Busy(Exception):
    """A request refused for load; `reason` is the metrics label (queue, wait, lag)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Admission:
    """The lanes' bookkeeping on one event loop (no locks: everything runs on the loop)."""

    settings: AdmissionSettings
    clock: Callable[[], float] = time.monotonic
    in_flight: int = 0
    staff_in_flight: int = 0
    service_seconds: float = 0.0  # running average of an admitted request's time
    lag: float = 0.0  # the lag sampler's last reading
    lagging: bool = False  # the lag has stayed above its target for an interval
    reached: bool = False  # the limit was full at an arrival since the last adjustment
    _limit: float = 0.0  # the gradient's limit, in [min_limit, settings.limit]
    _above_since: float | None = None
    _adjusted: float = -math.inf
    _queue: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        self._limit = float(self.settings.limit)
        ADMISSION_LIMIT.set(self._limit)

    @property
    def limit(self) -> int:
        return min(int(self._limit), self.settings.limit)

    def adjust(self) -> None:
        """The gradient: the limit scaled by target / measured latency, at most once an
        interval (called with each lag sample)."""
        now = self.clock()
        if now - self._adjusted < INTERVAL_SECONDS:
            return
        self._adjusted = now
        measured, target = self.service_seconds, self.settings.latency_seconds
        if measured > target:
            self._limit *= max(0.5, target / measured)
        elif self.reached and measured < target:
            self._limit *= 1.1
        else:
            return
        self._limit = min(
            float(self.settings.limit), max(float(self.settings.min_limit), self._limit)
        )
        self.reached = False
        ADMISSION_LIMIT.set(self._limit)
        self._wake()

    @contextlib.asynccontextmanager
    async def admitted(self, staff: Callable[[], bool]) -> AsyncIterator[None]:
        """Holds a place while the request runs; raises Busy (before the body runs) when
        there is none. `staff` is asked only when the main lane is full."""
        started = self.clock()
        lane = "main"
        if self.in_flight < self.limit and not self._queue:
            self.in_flight += 1
        else:
            self.reached = True
            if self.staff_in_flight < self.settings.staff_limit and staff():
                lane = "staff"
                self.staff_in_flight += 1
            else:  # the staff lane full, staff queue like anyone
                await self._wait(started)  # the place is taken for us when it returns
        ADMISSION_IN_FLIGHT.inc()
        begun = self.clock()
        try:
            yield
        finally:
            ADMISSION_IN_FLIGHT.dec()
            if lane == "main":
                took = self.clock() - begun
                self.service_seconds += SERVICE_EWMA * (took - self.service_seconds)
                self._release()
            else:
                self.staff_in_flight -= 1

    async def _wait(self, started: float) -> None:
        """A place from the queue, or Busy at once when the queue is full or the wait it
        predicts is past the deadline, or Busy when the deadline passes while waiting."""
        if self.lagging:
            raise Busy("lag")
        ahead = len(self._queue)
        if ahead >= self.settings.queue:
            raise Busy("queue")
        predicted = (ahead + 1) / max(self.limit, 1) * self.service_seconds
        if predicted > self.settings.wait_seconds:
            raise Busy("wait")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.settings.wait_seconds)
        except TimeoutError:
            if waiter.done():  # handed a place in the tick the deadline passed: keep it
                return
            raise Busy("wait") from None
        except BaseException:  # cancelled while waiting: a place handed to us goes on
            if waiter.done() and not waiter.cancelled():
                self._release()
            raise
        finally:
            ADMISSION_QUEUE_SECONDS.observe(self.clock() - started)
            if not waiter.done():
                waiter.cancel()
                self._queue.remove(waiter)

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        """Hands free places to the waiters in order; a place handed is taken at once (the
        waiter runs later), so no newcomer can take it first."""
        while self._queue and self.in_flight < self.limit:
            self._queue.popleft().set_result(None)
            self.in_flight += 1

    def observe_lag(self, lag: float) -> None:
        """One reading of the loop's lag: `lagging` once it has stayed above its target for
        an interval, until a reading below it."""
        self.lag = lag
        LOOP_LAG_SECONDS.set(lag)
        if lag <= self.settings.lag_seconds:
            self._above_since, self.lagging = None, False
            return
        now = self.clock()
        if self._above_since is None:
            self._above_since = now
        self.lagging = now - self._above_since >= INTERVAL_SECONDS

    async def sample_lag(self, period: float = SAMPLE_SECONDS) -> None:
        """Runs for the app's life: how late the loop wakes a sleeper is how long a ready
        callback waits for it (the event loop's own queueing delay)."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(period)
            self.observe_lag(max(0.0, loop.time() - asked - period))
            self.adjust()


def busy_body(path: str, retry_after: float) -> bytes:
    message = f"the server is busy; retry in {retry_after:g} s"
    code = ErrorCode.UNAVAILABLE.value
    if path.startswith("/api/"):  # the REST adapter's envelope
        error = {"code": code, "message": message, "retryAfter": retry_after}
        body: dict[str, object] = {"success": False, "message": message, "errors": [error]}
    else:
        extensions = {"code": code, "retryAfter": retry_after}
        body = {"errors": [{"message": message, "extensions": extensions}]}
    return json.dumps(body, separators=(",", ":")).encode()


class AdmissionControl:
    """The ASGI middleware: requests to /graphql and /api/ pass through `admission`."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            async with self.admission.admitted(lambda: _staff(scope)):
                await self.app(scope, receive, send)
        except Busy as busy:
            ADMISSION_SHED.labels(busy.reason).inc()
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        retry_after = self.admission.settings.retry_after
        media = "application/json"
        if not scope["path"].startswith("/api/"):
            accept = b",".join(v for k, v in scope.get("headers") or [] if k == b"accept")
            # Parsed (mimeparse) only when it may name the GraphQL media type: refusals are cheap.
            named = b"graphql-response" in accept
            if named and negotiate(accept.decode("latin-1")) == GRAPHQL_RESPONSE:
                media = f"{GRAPHQL_RESPONSE}; charset=utf-8"
        body = busy_body(scope["path"], retry_after)
        headers = [
            (b"content-type", media.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(math.ceil(retry_after)).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _staff(scope: Scope) -> bool:
    """Whether the request's token is a staff or advisor one the authenticator knows
    without I/O (asked only when the main lane is full)."""
    authorization = None
    for key, value in scope.get("headers") or []:
        if key == b"authorization":
            authorization = value.decode("latin-1")
            break
    if not authorization:
        return False
    app = scope.get("app")
    container = getattr(getattr(app, "state", None), "container", None)
    auth: Authenticator | None = getattr(container, "auth", None)
    if auth is None:
        return False
    actor = auth.known(authorization)
    return actor is not None and actor.role in STAFF_ROLES
