"""What the composition root hands to resolvers: the services, and per request the actor
and the DataLoaders."""

from __future__ import annotations

import copy
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import strawberry

from domain.catalog import CatalogService
from domain.errors import DomainError, RateLimited, Unauthenticated
from domain.model import Actor
from domain.notifications import NotificationService
from domain.ports import Catalog, LiveEvents, PendingChanges, SeatStore
from domain.registration import Registrar
from domain.rule_records import RuleRecords
from domain.rules_admin import RulesAdmin
from resolvers.loaders import Loaders


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None) -> tuple[Actor, float] | None:
        """The actor of an Authorization value and when its token lapses (epoch seconds);
        None without a token; raises Unauthenticated (or Forbidden) for a bad one. The first
        sight of a token may fetch keys or look the student up; later ones answer from a
        cache."""


class Throttle(Protocol):
    async def admit(self, actor: Actor, address: str | None) -> None:
        """Raises RateLimited (with retryAfter, in seconds) when this actor or the client
        address asks too often."""


@dataclass(frozen=True, slots=True)
class Services:
    registrar: Registrar
    catalog: CatalogService
    records: Catalog
    seats: SeatStore
    live: LiveEvents
    auth: Authenticator
    throttle: Throttle
    rules_admin: RulesAdmin
    rule_records: RuleRecords
    pending: PendingChanges
    notifications: NotificationService


@dataclass
class Context:
    services: Services
    authorization: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    connection_params: dict[str, Any] | None = None
    request: Any = None
    response: Any = None
    _loaders: Loaders | None = None
    # What authenticate() found: the actor and when its token lapses, None (no token), or
    # the error a bad token gets, raised where an actor is asked for.
    _authenticated: tuple[Actor, float] | DomainError | None = None
    _authenticated_done: bool = False

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(
                self.services.records,
                self.services.seats,
                self.services.rule_records,
                self.services.pending,
            )
        return self._loaders

    def authorization_value(self) -> str | None:
        if self.connection_params is not None:
            value = self.connection_params.get("Authorization") or self.connection_params.get(
                "authorization"
            )
            if value is not None and not isinstance(value, str):
                raise Unauthenticated("Authorization must be 'Bearer <token>'")
            return value
        return self.authorization

    async def authenticate(self) -> None:
        """Who asks, found once per request (per connection over websockets, after
        connection_init) before any resolver asks: `actor` then answers without I/O."""
        try:
            self._authenticated = await self.services.auth.authenticate(self.authorization_value())
        except DomainError as exc:
            self._authenticated = exc
        self._authenticated_done = True

    def _found(self) -> tuple[Actor, float] | None:
        if not self._authenticated_done:
            raise RuntimeError("Context.authenticate() was not awaited")
        found = self._authenticated
        if isinstance(found, DomainError):
            raise copy.copy(found)
        if found is not None and found[1] <= time.time():
            raise Unauthenticated("token expired")
        return found

    def actor_or_none(self) -> Actor | None:
        found = self._found()
        return None if found is None else found[0]

    def token_expires_at(self) -> float | None:
        found = self._found()
        return None if found is None else found[1]

    @property
    def actor(self) -> Actor:
        """The authenticated actor; UNAUTHENTICATED without a valid token."""
        actor = self.actor_or_none()
        if actor is None:
            raise Unauthenticated("a Bearer token is required")
        return actor

    async def admitted_actor(self) -> Actor:
        """The authenticated actor, within the rate limits of register and drop. A refusal
        over HTTP also carries a Retry-After header."""
        actor = self.actor
        client = getattr(self.request, "client", None)
        try:
            await self.services.throttle.admit(actor, client.host if client else None)
        except RateLimited as exc:
            if self.response is not None:
                self.response.headers["Retry-After"] = str(math.ceil(exc.extensions["retryAfter"]))
            raise
        return actor


Info = strawberry.Info[Context, None]
