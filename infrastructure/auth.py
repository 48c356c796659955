"""Bearer JWTs (HS256): who is asking. Tokens are verified once and remembered until they
expire, so a client's repeated requests pay for the signature check only once."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

import jwt

from domain.errors import Unauthenticated
from domain.model import Actor, Role

ALGORITHM = "HS256"
DEFAULT_LIFETIME = 8 * 3600
CACHE_SIZE = 50_000


class TokenService:
    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._verified: OrderedDict[str, tuple[Actor, float]] = OrderedDict()

    def issue(self, role: Role, subject: str, lifetime: int = DEFAULT_LIFETIME) -> str:
        now = int(time.time())
        claims = {"sub": subject, "role": role.value, "iat": now, "exp": now + lifetime}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def actor(self, authorization: str | None) -> Actor | None:
        """The actor of an `Authorization: Bearer <JWT>` value; None when there is none."""
        if authorization is None or not authorization.strip():
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        return self.verify(token.strip())

    def expires_at(self, authorization: str | None) -> float | None:
        """When the token of an Authorization value lapses (epoch seconds); None without
        one. A live subscription ends then (resolvers/live.py)."""
        if self.actor(authorization) is None:
            return None
        assert authorization is not None
        return self._verified[authorization.strip().partition(" ")[2].strip()][1]

    def verify(self, token: str) -> Actor:
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        actor, expires = self._decode(token)
        self._verified[token] = (actor, expires)
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return actor

    def _decode(self, token: str) -> tuple[Actor, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        try:
            role = Role(claims["role"])
        except ValueError:
            raise Unauthenticated("token has an unknown role") from None
        subject = str(claims["sub"])
        if role is Role.STUDENT:
            try:
                subject = str(uuid.UUID(subject))
            except ValueError:
                raise Unauthenticated("a student token's sub must be the student's id") from None
        return Actor(subject, role), float(claims["exp"])
