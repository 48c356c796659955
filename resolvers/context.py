"""What the composition root hands to resolvers: the services, and per request the actor
and the DataLoaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.catalog import CatalogService
from domain.errors import Unauthenticated
from domain.model import Actor
from domain.ports import Catalog, LiveEvents, SeatStore
from domain.registration import Registrar
from resolvers.loaders import Loaders


class Authenticator(Protocol):
    def actor(self, authorization: str | None) -> Actor | None:
        """None without a token; raises Unauthenticated for a bad one."""


@dataclass(frozen=True, slots=True)
class Services:
    registrar: Registrar
    catalog: CatalogService
    records: Catalog
    seats: SeatStore
    live: LiveEvents
    auth: Authenticator


@dataclass
class Context:
    services: Services
    authorization: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    connection_params: dict[str, Any] | None = None
    request: Any = None
    response: Any = None
    _loaders: Loaders | None = None

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.services.records, self.services.seats)
        return self._loaders

    def authorization_value(self) -> str | None:
        if self.connection_params is not None:
            value = self.connection_params.get("Authorization") or self.connection_params.get(
                "authorization"
            )
            return value if isinstance(value, str) else None
        return self.authorization

    def actor_or_none(self) -> Actor | None:
        return self.services.auth.actor(self.authorization_value())

    @property
    def actor(self) -> Actor:
        """The authenticated actor; UNAUTHENTICATED without a valid token."""
        actor = self.actor_or_none()
        if actor is None:
            raise Unauthenticated("a Bearer token is required")
        return actor
