"""The API as an OpenID Connect resource server (README "Sign-in (OIDC)"): access tokens are
JWTs of the university's identity provider, checked with the keys its discovery document
names (RS256, ES256 or EdDSA only: no HS256, no `none`), for iss, aud, exp and nbf with a
little clock skew, then mapped by settings to an actor: staff, advisor, or a student found
by the student number or e-mail the token carries.

PyJWT (with cryptography) parses the keys and checks signatures and claims; what is
written here is the caching around it: keys by kid, fetched again when they are old or a
token names a kid they lack, but no more often than an interval, so a flood of tokens with
made-up kids costs the provider one fetch per interval, and a fetch replaces the set, so a
key the provider dropped stops verifying, tokens it verified before included."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import jwt

from domain.errors import Forbidden, Unauthenticated, Unavailable
from domain.model import Actor, Role
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256", "EdDSA")
FETCH_TIMEOUT = 5.0
CACHE_SIZE = 50_000
# A student's id by their student number or e-mail: kept a while (an import may change an
# e-mail); an unknown one only briefly, so a student added a moment ago can sign in.
STUDENT_TTL = 300.0
UNKNOWN_STUDENT_TTL = 5.0
STUDENT_CACHE_SIZE = 100_000

Column = Literal["student_number", "email"]


class StudentIdentities(Protocol):
    async def student_id(self, column: Column, value: str) -> UUID | None:
        """The id of the one student whose `column` is `value`; None if none (or several)."""


@dataclass(frozen=True, slots=True)
class Verified:
    actor: Actor
    expires: float  # epoch seconds: exp plus the allowed skew
    kid: str | None


class ProviderKeys:
    """The provider's signing keys, fetched from the jwks_uri of its discovery document."""

    def __init__(
        self, issuer: str, ttl: float, refetch_interval: float, client: httpx.AsyncClient
    ) -> None:
        self.issuer = issuer
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.client = client
        self.fetches = 0  # attempts to fetch the key set, for the tests and the logs
        self._jwks_uri: str | None = None
        self._keys: dict[str | None, list[jwt.PyJWK]] = {}
        self._fetched_at: float | None = None  # monotonic, of the last good fetch
        self._tried_at: float | None = None  # monotonic, of the last attempt
        self._failed = False  # whether that attempt failed
        self._lock = asyncio.Lock()

    def has(self, kid: str | None) -> bool:
        """Whether the set held has this kid (a token without one: whether any set is)."""
        return kid in self._keys if kid is not None else self._fetched_at is not None

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key that verifies a token with this kid and alg: from the set held, or from
        a set fetched now if the held one is old or lacks the kid (within the rate limit)."""
        if not self._usable(kid):
            await self._refresh(kid)
        held = (
            [key for keys in self._keys.values() for key in keys]
            if kid is None
            else self._keys.get(kid, [])
        )
        candidates = [key for key in held if key.algorithm_name == alg]
        if not candidates and self._failed and (kid is None or kid not in self._keys):
            # Not known to be a bad key: the provider could not be asked.
            raise Unavailable("the identity provider's keys could not be fetched; try again")
        if kid is None and len(candidates) != 1:
            raise Unauthenticated(
                f"the token names no key (kid) and the provider has no one {alg} key"
            )
        if not candidates:
            if kid in self._keys:
                raise Unauthenticated(f"the token's key {kid!r} is not an {alg} key")
            raise Unauthenticated(f"the token's signing key {kid!r} is not the provider's")
        return candidates[0]

    def _usable(self, kid: str | None) -> bool:
        fetched = self._fetched_at
        fresh = fetched is not None and time.monotonic() - fetched < self.ttl
        return fresh and (kid is None or kid in self._keys)

    async def _refresh(self, kid: str | None) -> None:
        async with self._lock:
            if self._usable(kid):  # fetched while this one waited for the lock
                return
            now = time.monotonic()
            if self._tried_at is not None and now - self._tried_at < self.refetch_interval:
                return  # rate-limited: the held set answers (or the token is refused)
            self._tried_at = now
            self.fetches += 1
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                self._jwks_uri = None  # discover again next time
                self._failed = True
                # The set held (if any) goes on answering: a provider's outage is no reason
                # to refuse the tokens its keys still verify.
                log.warning("the identity provider's keys could not be fetched: %s", exc)
                return
            self._failed = False
            self._keys = keys
            self._fetched_at = time.monotonic()
            log.info("identity provider keys fetched: %s", sorted(map(str, keys)))

    async def _fetch(self) -> dict[str | None, list[jwt.PyJWK]]:
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover()
        answer = await self.client.get(self._jwks_uri)
        answer.raise_for_status()
        keys: dict[str | None, list[jwt.PyJWK]] = {}
        for data in answer.json()["keys"]:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(data)
            except jwt.PyJWTError:
                continue  # a kind of key PyJWT does not know: not one we accept anyway
            if key.algorithm_name in ALGORITHMS:
                keys.setdefault(data.get("kid"), []).append(key)
        return keys

    async def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        answer = await self.client.get(url)
        answer.raise_for_status()
        document = answer.json()
        if document.get("issuer") != self.issuer:
            # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer asked.
            raise ValueError(f"{url} names issuer {document.get('issuer')!r}")
        jwks_uri = str(document["jwks_uri"])
        if urlsplit(jwks_uri).scheme != urlsplit(self.issuer).scheme:
            raise ValueError(f"jwks_uri {jwks_uri!r} is not {urlsplit(self.issuer).scheme}")
        return jwks_uri


class OidcVerifier:
    """Access tokens of the provider -> actors, each token verified once while it lives."""

    def __init__(
        self,
        settings: Settings,
        students: StudentIdentities,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        assert settings.oidc_issuer is not None and settings.oidc_audience is not None
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.leeway = settings.oidc_leeway_seconds
        self.roles_claim = settings.oidc_roles_claim.split(".")
        self.staff = frozenset(settings.oidc_staff_values)
        self.advisors = frozenset(settings.oidc_advisor_values)
        self.students_values = frozenset(settings.oidc_student_values)
        self.student_claim = settings.oidc_student_claim
        self.student_column: Column = settings.oidc_student_match
        self.client = client or httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False)
        self.keys = ProviderKeys(
            self.issuer,
            settings.oidc_jwks_ttl_seconds,
            settings.oidc_jwks_refetch_seconds,
            self.client,
        )
        self.students = students
        self._verified: OrderedDict[str, Verified] = OrderedDict()
        self._student_ids: OrderedDict[str, tuple[UUID | None, float]] = OrderedDict()

    def cached(self, token: str) -> Verified | None:
        """A token verified before, still live, whose key the provider still publishes."""
        found = self._verified.get(token)
        if found is None or found.expires <= time.time() or not self.keys.has(found.kid):
            return None
        return found

    async def verify(self, token: str) -> Verified:
        found = self.cached(token)
        if found is not None:
            return found
        verified = await self._verify(token)
        self._verified[token] = verified
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified

    async def _verify(self, token: str) -> Verified:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Unauthenticated(
                f"tokens signed with {alg!r} are not accepted: the identity provider's "
                f"are signed with {', '.join(ALGORITHMS)}"
            )
        if unverified.get("iss") != self.issuer:
            # Before any key is fetched: another issuer's kids must not cause fetches.
            raise Unauthenticated("the token is from another issuer")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("invalid token")
        key = await self.keys.key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is not for this API (aud)") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet (nbf or iat)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        actor = await self._actor(claims)
        return Verified(actor, float(claims["exp"]) + self.leeway, kid)

    async def _actor(self, claims: dict[str, Any]) -> Actor:
        values = set(self._role_values(claims))
        if values & self.staff:
            return Actor(str(claims["sub"]), Role.STAFF)
        if values & self.advisors:
            return Actor(str(claims["sub"]), Role.ADVISOR)
        if values & self.students_values or (
            not self.students_values and self.student_claim in claims
        ):
            return Actor(str(await self._student_id(claims)), Role.STUDENT)
        raise Forbidden(
            f"signed in, but the token's {'.'.join(self.roles_claim)} claim names none of "
            "this API's staff, advisor or student values"
        )

    def _role_values(self, claims: dict[str, Any]) -> list[str]:
        found: Any = claims
        for part in self.roles_claim:
            found = found.get(part) if isinstance(found, dict) else None
        if isinstance(found, str):
            return found.replace(",", " ").split()
        if isinstance(found, list):
            return [value for value in found if isinstance(value, str)]
        return []

    async def _student_id(self, claims: dict[str, Any]) -> UUID:
        value = claims.get(self.student_claim)
        if not isinstance(value, str) or not value.strip():
            raise Unauthenticated(f"a student's token must carry the {self.student_claim} claim")
        value = value.strip()
        cached = self._student_ids.get(value)
        if cached is not None and cached[1] > time.monotonic():
            found = cached[0]
        else:
            found = await self.students.student_id(self.student_column, value)
            ttl = STUDENT_TTL if found is not None else UNKNOWN_STUDENT_TTL
            self._student_ids[value] = (found, time.monotonic() + ttl)
            self._student_ids.move_to_end(value)
            if len(self._student_ids) > STUDENT_CACHE_SIZE:
                self._student_ids.popitem(last=False)
        if found is None:
            raise Unauthenticated(
                f"signed in as a student, but no student here has {self.student_column} "
                f"{value!r}: ask the registrar"
            )
        return found

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()
