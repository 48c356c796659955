"""Bearer JWTs: who is asking. The identity provider's access tokens (infrastructure/oidc.py)
when COURSEREG_OIDC_ISSUER is set, and the HS256 development tokens (`coursereg token`, the
demo sign-in) unless they are turned off. Tokens are verified once and remembered until they
expire, so a client's repeated requests pay for the signature check only once."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

import jwt

from domain.errors import Unauthenticated
from domain.model import Actor, Role
from infrastructure.oidc import OidcVerifier

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
        token = bearer(authorization)
        return None if token is None else self.verify(token)

    def expires_at(self, authorization: str | None) -> float | None:
        """When the token of an Authorization value lapses (epoch seconds); None without
        one. A live subscription ends then (resolvers/live.py)."""
        if self.actor(authorization) is None:
            return None
        assert authorization is not None
        return self._verified[authorization.strip().partition(" ")[2].strip()][1]

    def verify(self, token: str) -> Actor:
        return self.verified(token)[0]

    def verified(self, token: str) -> tuple[Actor, float]:
        """The token's actor and when it lapses (epoch seconds)."""
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached
        found = self._decode(token)
        self._verified[token] = found
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return found

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


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <JWT>` value; None when there is none."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


class Authenticator:
    """The API's authenticator (resolvers/context.py): the provider's tokens when OIDC is
    configured, HS256 development tokens when `dev` is given. A token goes by its header's
    alg: HS256 to the development check (its secret, nothing else), any other alg to the
    provider's keys, which accept RS256, ES256 and EdDSA only, so an HS256 token made with
    a public key as its secret, or an unsigned one, never meets a key it could fool."""

    def __init__(self, dev: TokenService | None, oidc: OidcVerifier | None) -> None:
        self.dev = dev
        self.oidc = oidc

    async def authenticate(self, authorization: str | None) -> tuple[Actor, float] | None:
        token = bearer(authorization)
        if token is None:
            return None
        if self.oidc is not None:
            found = self.oidc.cached(token)
            if found is None and (self.dev is None or not _hs256(token)):
                found = await self.oidc.verify(token)
            if found is not None:
                return found.actor, found.expires
        if self.dev is None:
            raise Unauthenticated("no tokens are accepted: configure COURSEREG_OIDC_ISSUER")
        return self.dev.verified(token)

    def known(self, authorization: str | None) -> Actor | None:
        """The actor of a token without I/O: one verified before (still live), or a
        development token checked now (CPU only); None for no token, a bad one, or a
        provider's token not seen yet. Admission control's staff lane asks it."""
        try:
            token = bearer(authorization)
            if token is None:
                return None
            if self.oidc is not None:
                found = self.oidc.cached(token)
                if found is not None:
                    return found.actor
            if self.dev is not None and _hs256(token):
                return self.dev.verified(token)[0]
        except Unauthenticated:
            return None
        return None

    async def close(self) -> None:
        if self.oidc is not None:
            await self.oidc.close()


def _hs256(token: str) -> bool:
    try:
        return jwt.get_unverified_header(token).get("alg") == ALGORITHM
    except jwt.PyJWTError:
        raise Unauthenticated("invalid token") from None
