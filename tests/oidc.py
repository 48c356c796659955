"""A real OpenID provider for the tests: panva's oidc-provider (tests/oidc/provider, pinned
by its lockfile; `make install` runs npm ci there) started with node on a free port, its
signing keys generated here, and the Authorization Code + PKCE sign-in driven through its
development login page with httpx, as a browser would.

    async with oidc_provider(alg="ES256", redirect_uris=[...]) as provider:
        token = await provider.login("s-20260001")     # a student's access token (JWT)
        await provider.rotate()                       # new keys; the old ones are gone

Accounts by login name (server.mjs): `s-<student number>` a student (student_number, email
<number>@students.example.edu, groups ["students"]), `<name>@<domain>` a student known by
e-mail, `staff-*` groups ["registrar-staff"], `advisor-*` groups ["advisors"]."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.servers import free_port

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc" / "provider"
AUDIENCE = "urn:coursereg:api"
CLIENT_ID = "coursereg-app"
DEFAULT_REDIRECT = "http://127.0.0.1:1/signed-in"  # never fetched: the code is read off it
ALGS = ("RS256", "ES256", "EdDSA")
START_TIMEOUT = 20.0


class OidcError(Exception):
    """The provider did not start, or a sign-in did not end with a code and a token."""


def private_jwk(alg: str, kid: str | None = None) -> dict[str, Any]:
    """A new private signing key as a JWK (with kid, alg, use) for the provider's key file."""
    kid = kid or f"{alg}-{uuid.uuid4().hex[:10]}"
    if alg == "RS256":
        jwk = RSAAlgorithm.to_jwk(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), as_dict=True
        )
    elif alg == "ES256":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    elif alg == "EdDSA":
        jwk = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)
    else:
        raise ValueError(f"no key for {alg}")
    # PyJWT writes key_ops ["sign"] into RSA keys; with it oidc-provider finds no key to
    # verify its own ID token by when it comes back as id_token_hint (sign-out).
    jwk.pop("key_ops", None)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def new_key_set(algs: Sequence[str] = ALGS) -> list[dict[str, Any]]:
    return [private_jwk(alg) for alg in algs]


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _form(page: str) -> tuple[str, dict[str, str]]:
    """The first form of a devInteractions page: its action and its hidden inputs."""
    found = re.search(r'<form[^>]*action="([^"]+)"', page)
    if found is None:
        raise OidcError(f"no form on the provider's page: {page[:300]!r}")
    hidden = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }
    return html.unescape(found.group(1)), hidden


class OidcProvider:
    """One provider process; `rotate` restarts it on the same port (same issuer) with new
    keys. Its state (sessions, grants) is in memory and does not survive a restart.

    The port, so the issuer, is chosen when the object is made: an app's settings can name
    the issuer before the provider starts, and the provider can be started (or restarted)
    once the app's URL is known and set in `redirect_uris` / `cors_origins`."""

    def __init__(
        self,
        alg: str = "RS256",
        audience: str = AUDIENCE,
        access_token_ttl: int = 600,
        redirect_uris: Sequence[str] = (DEFAULT_REDIRECT,),
        cors_origins: Sequence[str] = (),
        post_logout_redirect_uris: Sequence[str] = (),
        keys: list[dict[str, Any]] | None = None,
        port: int | None = None,
        issuer: str | None = None,
    ) -> None:
        self.alg = alg
        self.audience = audience
        self.access_token_ttl = access_token_ttl
        self.redirect_uris = list(redirect_uris)
        self.cors_origins = list(cors_origins)
        self.post_logout_redirect_uris = list(post_logout_redirect_uris)
        self.port = port or free_port()
        self.issuer = issuer or f"http://127.0.0.1:{self.port}"
        self.keys = keys if keys is not None else new_key_set()
        self._dir = Path(tempfile.mkdtemp(prefix="coursereg-oidc-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self._dir / "provider.log"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def public_jwks(self) -> dict[str, Any]:
        """The published key set (private parts dropped), as GET /jwks answers it."""
        private = {"d", "p", "q", "dp", "dq", "qi"}
        return {"keys": [{k: v for k, v in key.items() if k not in private} for key in self.keys]}

    def key_for(self, alg: str | None = None) -> dict[str, Any]:
        """The private JWK the provider signs `alg` (default: its access tokens' alg) with."""
        wanted = alg or self.alg
        return next(key for key in self.keys if key["alg"] == wanted)

    async def start(self) -> None:
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise OidcError(
                f"{PROVIDER_DIR}/node_modules is missing: run `make install` "
                "(or npm ci in tests/oidc/provider)"
            )
        key_file = self._dir / f"jwks-{uuid.uuid4().hex[:8]}.json"
        key_file.write_text(json.dumps({"keys": self.keys}))
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_ISSUER": self.issuer,
            "OIDC_JWKS_FILE": str(key_file),
            "OIDC_ACCESS_TOKEN_ALG": self.alg,
            "OIDC_AUDIENCE": self.audience,
            "OIDC_ACCESS_TOKEN_TTL": str(self.access_token_ttl),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_REDIRECT_URIS": ",".join(self.redirect_uris),
            "NODE_NO_WARNINGS": "1",
            "OIDC_EXIT_WITH_STDIN": "1",
        }
        if self.cors_origins:
            env["OIDC_CORS_ORIGINS"] = ",".join(self.cors_origins)
        if self.post_logout_redirect_uris:
            env["OIDC_POST_LOGOUT_REDIRECT_URIS"] = ",".join(self.post_logout_redirect_uris)
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                ["node", "server.mjs"],
                cwd=PROVIDER_DIR,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise OidcError(f"the provider exited: {self._log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"{self.issuer}/.well-known/openid-configuration")
                    if answer.status_code == 200 and answer.json()["issuer"] == self.issuer:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise OidcError(f"the provider did not start: {self._log.read_text()[-2000:]}")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 5)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def rotate(
        self, algs: Sequence[str] | None = None, keep_old: bool = False
    ) -> list[dict[str, Any]]:
        """Restart with new keys (for `algs`, default the same algs as now), the old ones
        kept after them when `keep_old` (a rotation with overlap), else gone. Returns the
        new keys; tokens are then signed with the new key of the access tokens' alg."""
        fresh = new_key_set(algs or [key["alg"] for key in self.keys])
        await self.stop()
        self.keys = fresh + (self.keys if keep_old else [])
        await self.start()
        return fresh

    async def jwks_fetches(self) -> int:
        """How often GET /jwks was answered since this process started."""
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{self.issuer}/_test/stats")
            return int(answer.json()["jwks_fetches"])

    async def login(self, login_name: str, scope: str = "openid profile email") -> str:
        """The access token of a sign-in as `login_name` (Authorization Code + PKCE)."""
        return (await self.sign_in(login_name, scope))["access_token"]

    async def sign_in(
        self, login_name: str, scope: str = "openid profile email", **extra: str
    ) -> dict[str, Any]:
        """The token endpoint's answer (access_token, id_token, expires_in, ...) of a sign-in
        through /auth, the development login form, consent when asked, and /token. `extra`
        goes into the authorization request (e.g. prompt="consent" with offline_access, for
        a refresh_token)."""
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(16)
        redirect_uri = self.redirect_uris[0]
        params = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
            **extra,
        }
        async with httpx.AsyncClient(base_url=self.issuer, timeout=10.0) as client:
            answer = await client.get("/auth", params=params)
            for _ in range(10):
                if answer.status_code in (302, 303):
                    location = urljoin(str(answer.url), answer.headers["location"])
                    if location.startswith(redirect_uri):
                        return await self._redeem(client, location, state, verifier, redirect_uri)
                    answer = await client.get(location)
                elif answer.status_code == 200 and "<form" in answer.text:
                    action, hidden = _form(answer.text)
                    fields = dict(hidden)
                    if fields.get("prompt") == "login":
                        fields.update(login=login_name, password="any")
                    answer = await client.post(urljoin(str(answer.url), action), data=fields)
                else:
                    raise OidcError(
                        f"sign-in stopped at {answer.url}: {answer.status_code} {answer.text[:500]}"
                    )
            raise OidcError("sign-in went round in circles")

    async def _redeem(
        self,
        client: httpx.AsyncClient,
        location: str,
        state: str,
        verifier: str,
        redirect_uri: str,
    ) -> dict[str, Any]:
        query = parse_qs(urlsplit(location).query)
        if "error" in query:
            raise OidcError(f"the provider refused: {query}")
        if query.get("state") != [state]:
            raise OidcError(f"state mismatch in {location}")
        answer = await client.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
            },
        )
        if answer.status_code != 200:
            raise OidcError(f"token endpoint: {answer.status_code} {answer.text}")
        body: dict[str, Any] = answer.json()
        return body

    def close_files(self) -> None:
        for path in self._dir.iterdir():
            path.unlink()
        self._dir.rmdir()


@contextlib.asynccontextmanager
async def oidc_provider(**options: Any) -> AsyncIterator[OidcProvider]:
    """A started provider (OidcProvider's options), stopped at the end."""
    provider = OidcProvider(**options)
    try:
        await provider.start()
        yield provider
    finally:
        await provider.stop()
        provider.close_files()
