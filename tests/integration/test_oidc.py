"""Sign-in through a real OpenID provider (issue 15, points 1 and 2): panva's oidc-provider
started by tests/oidc.py, tokens obtained by Authorization Code + PKCE through its login
page, the API configured with COURSEREG_OIDC_ISSUER. Students act for themselves only,
staff and advisors come from the groups claim; tokens of another issuer or audience, expired
ones, ones of a rotated-out key, HS256 ones (unless COURSEREG_DEV_TOKENS) and unsigned ones
are UNAUTHENTICATED; a rotation is picked up without a restart; a flood of made-up kids
costs the provider one key fetch per interval; the same over websockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from domain.model import Actor, Role
from infrastructure.settings import Settings
from tests.client import CAPACITY, REGISTER, register_input
from tests.conftest import STAFF, Api, Catalog, _truncate, forget_keys, running_app
from tests.footprint import error_code
from tests.oidc import OidcProvider, oidc_provider, private_jwk
from tests.servers import serve, ws_url
from tests.wsclient import WAITLIST_POSITION, Closed, GqlSocket

pytestmark = pytest.mark.timeout(120)

STUDENT = """query($id: UUID!) { student(id: $id) { id studentNumber } }"""
ME = """{ me { id studentNumber } }"""


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[OidcProvider]:
    """One provider (RS256 access tokens) for the tests that neither rotate nor restart it."""
    async with oidc_provider() as started:
        yield started


@contextlib.asynccontextmanager
async def oidc_app(
    settings: Settings, provider: OidcProvider, **overrides: Any
) -> AsyncIterator[Api]:
    """The app with COURSEREG_OIDC_ISSUER pointing at `provider` (and these settings)."""
    await _truncate(settings.postgres)
    configured = settings.model_copy(
        update={
            "oidc_issuer": provider.issuer,
            "oidc_audience": provider.audience,
            "oidc_jwks_refetch_seconds": 0.2,
            **overrides,
        }
    )
    async with running_app(configured) as api:
        yield api
        await forget_keys(api.container)


async def new_student(api: Api, email: str | None = None) -> tuple[Any, str]:
    """A student and the login name that signs them in (s-<student number>)."""
    number = str(20_000_000 + uuid.uuid4().int % 10_000_000)
    student = await api.container.catalog.create_student(
        STAFF, number, "Ada", "Lovelace", email or f"{number}@students.example.edu"
    )
    return student, f"s-{number}"


def gql_code(body: dict[str, Any]) -> str:
    return error_code(body)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_parts(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())


def provider_claims(provider: OidcProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": provider.audience,
        "sub": "staff-forger",
        "iat": now,
        "exp": now + 300,
        "groups": ["registrar-staff"],
    }
    return {**claims, **changes}


def signed_by_provider_key(
    provider: OidcProvider, claims: dict[str, Any], alg: str = "RS256"
) -> str:
    """A token signed with the provider's own private key: claims the provider would not
    issue (nbf in the future) but a valid signature."""
    key = provider.key_for(alg)
    return jwt.encode(claims, jwt.PyJWK(key).key, algorithm=alg, headers={"kid": key["kid"]})


async def test_a_student_token_works_for_that_student_only(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_app(settings, provider) as api:
        catalog = Catalog(api.container)
        section = await catalog.section(seats=5)
        me, login = await new_student(api)
        other, _ = await new_student(api)
        token = await provider.login(login)

        mine = await api.gql(STUDENT, token, id=str(me.id))
        assert mine["data"]["student"]["id"] == str(me.id), mine
        assert (await api.gql(ME, token))["data"]["me"]["id"] == str(me.id)
        enrolled = await api.gql(REGISTER, token, i=register_input(me.id, [section.id]))
        assert enrolled["data"]["register"]["results"][0]["outcome"] == "ENROLLED", enrolled

        assert gql_code(await api.gql(STUDENT, token, id=str(other.id))) == "FORBIDDEN"
        theirs = await api.gql(REGISTER, token, i=register_input(other.id, [section.id]))
        assert gql_code(theirs) == "FORBIDDEN"
        assert gql_code(await api.gql(CAPACITY, token, s=str(section.id), n=9)) == "FORBIDDEN"

        answer = await api.client.get(
            f"/api/v1/students/{me.id}/registrations", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        answer = await api.client.get(
            f"/api/v1/students/{other.id}/registrations",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 403, answer.text


async def test_staff_come_from_the_group_claim_and_advisors_read_but_change_nothing(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_app(settings, provider) as api:
        section = await Catalog(api.container).section(seats=5)
        student, _ = await new_student(api)
        staff = await provider.login("staff-grace")
        advisor = await provider.login("advisor-alan")

        changed = await api.gql(CAPACITY, staff, s=str(section.id), n=9)
        assert changed["data"]["setSectionCapacity"]["totalSeats"] == 9, changed

        read = await api.gql(STUDENT, advisor, id=str(student.id))
        assert read["data"]["student"]["id"] == str(student.id), read
        assert gql_code(await api.gql(CAPACITY, advisor, s=str(section.id), n=3)) == "FORBIDDEN"
        registered = await api.gql(REGISTER, advisor, i=register_input(student.id, [section.id]))
        assert gql_code(registered) == "FORBIDDEN"

        nobody = await provider.login("visitor-1")  # signed in, but in no group of ours
        assert gql_code(await api.gql(STUDENT, nobody, id=str(student.id))) == "FORBIDDEN"


async def test_a_token_of_another_issuer_or_for_another_audience_is_unauthenticated(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_provider() as other:
        async with oidc_app(settings, provider) as api:
            student, login = await new_student(api)
            foreign = await other.login(login)  # same client, audience and claims
            body = await api.gql(STUDENT, foreign, id=str(student.id))
            assert gql_code(body) == "UNAUTHENTICATED"
            assert "another issuer" in body["errors"][0]["message"]
            assert api.container.auth.oidc is not None
            assert api.container.auth.oidc.keys.fetches == 0  # refused before any key fetch

        async with oidc_app(settings, provider, oidc_audience="urn:another:api") as api:
            student, login = await new_student(api)
            body = await api.gql(STUDENT, await provider.login(login), id=str(student.id))
            assert gql_code(body) == "UNAUTHENTICATED"
            assert "aud" in body["errors"][0]["message"]


async def test_an_expired_token_is_unauthenticated_and_its_subscription_ends(
    settings: Settings,
) -> None:
    async with (
        oidc_provider(access_token_ttl=3) as short,
        oidc_app(settings, short, oidc_leeway_seconds=0) as api,
    ):
        section = await Catalog(api.container).section(seats=1)
        holder, _ = await new_student(api)
        me, login = await new_student(api)
        await api.container.registrar.register(STAFF, holder.id, [section.id])
        await api.container.registrar.register(STAFF, me.id, [section.id])
        token = await short.login(login)
        expires = jwt.decode(token, options={"verify_signature": False})["exp"]
        assert (await api.gql(ME, token))["data"]["me"]["id"] == str(me.id)
        async with serve(api.app) as url, GqlSocket.open(ws_url(url), token=token) as ws:
            op = await ws.subscribe(WAITLIST_POSITION, student=str(me.id), section=str(section.id))
            assert (await ws.data(op))["position"] == 1
            ended = await ws.receive(op, timeout=8.0)
            assert time.time() >= expires
            assert ended["type"] == "next" and ended["payload"]["data"] is None, ended
            codes = [e["extensions"]["code"] for e in ended["payload"]["errors"]]
            assert codes == ["UNAUTHENTICATED"], ended
            # The connection outlives its token: a new subscription on it is refused.
            again = await ws.subscribe(
                WAITLIST_POSITION, student=str(me.id), section=str(section.id)
            )
            refused = await ws.receive(again)
            assert refused["type"] == "error", refused
            assert [e["extensions"]["code"] for e in refused["payload"]] == ["UNAUTHENTICATED"]
        body = await api.gql(ME, token)
        assert gql_code(body) == "UNAUTHENTICATED"
        assert "expired" in body["errors"][0]["message"]


async def test_a_key_rotation_is_picked_up_and_a_rotated_out_key_stops_verifying(
    settings: Settings,
) -> None:
    async with oidc_provider() as rotating, oidc_app(settings, rotating) as api:
        staff_query = """{ semesters { id } }"""
        student, login = await new_student(api)
        used_before = await rotating.login(login)
        kept_before = await rotating.login(login)  # issued before the rotation, first used after
        assert "errors" not in await api.gql(STUDENT, used_before, id=str(student.id))

        await rotating.rotate()
        await asyncio.sleep(0.3)  # past COURSEREG_OIDC_JWKS_REFETCH_SECONDS (0.2 here)
        fresh = await rotating.login(login)
        assert (
            jwt.get_unverified_header(fresh)["kid"] != jwt.get_unverified_header(used_before)["kid"]
        )
        body = await api.gql(STUDENT, fresh, id=str(student.id))
        assert body["data"]["student"]["id"] == str(student.id), body  # no restart of the API

        for old in (kept_before, used_before):  # a verified one is forgotten with its key
            body = await api.gql(STUDENT, old, id=str(student.id))
            assert gql_code(body) == "UNAUTHENTICATED", body
            assert "signing key" in body["errors"][0]["message"]
        assert "errors" not in await api.gql(staff_query)


async def test_a_flood_of_unknown_kids_fetches_the_keys_at_most_once_per_interval(
    settings: Settings, provider: OidcProvider
) -> None:
    interval = 1.0
    stranger = jwt.PyJWK(private_jwk("ES256")).key

    def made_up() -> str:
        claims = provider_claims(provider)
        return jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": uuid.uuid4().hex})

    floods = [[made_up() for _ in range(20)] for _ in range(3)]
    async with oidc_app(settings, provider, oidc_jwks_refetch_seconds=interval) as api:
        student, login = await new_student(api)
        token = await provider.login(login)
        before = await provider.jwks_fetches()
        began = time.monotonic()
        assert "errors" not in await api.gql(STUDENT, token, id=str(student.id))
        assert await provider.jwks_fetches() == before + 1  # the API's first fetch
        for flood in floods:  # 60 made-up kids over more than one interval
            bodies = await asyncio.gather(*(api.gql(ME, made) for made in flood))
            assert {gql_code(body) for body in bodies} == {"UNAUTHENTICATED"}
            await asyncio.sleep(interval * 0.6)
        elapsed = time.monotonic() - began
        fetched = await provider.jwks_fetches() - before - 1
        # Fetches at least an interval apart: after the first, at most one per whole interval
        # that passed (one here, however slow the machine: elapsed grows with it), and at least
        # one, since the last flood came more than an interval after the first fetch.
        assert 1 <= fetched <= int(elapsed / interval), (fetched, elapsed)
        assert api.container.auth.oidc is not None
        assert api.container.auth.oidc.keys.fetches == fetched + 1


async def test_a_provider_that_cannot_be_reached_is_unavailable_until_it_is_back(
    settings: Settings,
) -> None:
    async with oidc_provider() as flaky, oidc_app(settings, flaky) as api:
        student, login = await new_student(api)
        token = await flaky.login(login)
        await flaky.stop()
        body = await api.gql(STUDENT, token, id=str(student.id))
        assert gql_code(body) == "UNAVAILABLE", body  # not the token's fault
        await flaky.start()  # the same keys
        await asyncio.sleep(0.3)  # past COURSEREG_OIDC_JWKS_REFETCH_SECONDS (0.2 here)
        body = await api.gql(STUDENT, token, id=str(student.id))
        assert body["data"]["student"]["id"] == str(student.id), body


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_each_algorithm_of_the_provider_is_verified(settings: Settings, alg: str) -> None:
    async with oidc_provider(alg=alg) as signing, oidc_app(settings, signing) as api:
        student, login = await new_student(api)
        token = await signing.login(login)
        assert jwt.get_unverified_header(token)["alg"] == alg
        body = await api.gql(STUDENT, token, id=str(student.id))
        assert body["data"]["student"]["id"] == str(student.id), body


async def test_development_tokens_are_refused_with_oidc_unless_kept(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_app(settings, provider) as api:
        student, login = await new_student(api)
        body = await api.gql(STUDENT, api.token(), id=str(student.id))
        assert gql_code(body) == "UNAUTHENTICATED"
        assert "HS256" in body["errors"][0]["message"]
    async with oidc_app(settings, provider, dev_tokens=True) as api:
        student, login = await new_student(api)
        assert "errors" not in await api.gql(STUDENT, api.token(), id=str(student.id))
        assert "errors" not in await api.gql(
            STUDENT, await provider.login(login), id=str(student.id)
        )


@pytest.mark.parametrize("dev_tokens", [False, True])
async def test_an_hs256_token_made_with_the_public_key_and_an_unsigned_one_are_refused(
    settings: Settings, provider: OidcProvider, dev_tokens: bool
) -> None:
    async with oidc_app(settings, provider, dev_tokens=dev_tokens) as api:
        student, login = await new_student(api)
        assert "errors" not in await api.gql(
            STUDENT, await provider.login(login), id=str(student.id)
        )
        rsa = provider.key_for("RS256")
        public = jwt.PyJWK({k: v for k, v in rsa.items() if k in ("kty", "n", "e")}).key
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        claims = provider_claims(provider, role="staff")
        for secret in (pem, json.dumps(provider.public_jwks).encode()):
            signing_input = unsigned_parts(
                {"alg": "HS256", "typ": "JWT", "kid": rsa["kid"]}, claims
            )
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            forged = f"{signing_input}.{b64(mac)}"
            body = await api.gql(CAPACITY, forged, s=str(uuid.uuid4()), n=3)
            assert gql_code(body) == "UNAUTHENTICATED", body
        for alg in ("none", "None", "NONE"):
            unsigned = unsigned_parts({"alg": alg, "kid": rsa["kid"]}, claims) + "."
            body = await api.gql(CAPACITY, unsigned, s=str(uuid.uuid4()), n=3)
            assert gql_code(body) == "UNAUTHENTICATED", body


async def test_nbf_and_iat_allow_the_clock_skew_and_no_more(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_app(settings, provider, oidc_leeway_seconds=30) as api:
        now = int(time.time())
        within = signed_by_provider_key(provider, provider_claims(provider, nbf=now + 20))
        assert "errors" not in await api.gql(ME, within)
        beyond = signed_by_provider_key(provider, provider_claims(provider, nbf=now + 60))
        body = await api.gql(ME, beyond)
        assert (
            gql_code(body) == "UNAUTHENTICATED" and "not valid yet" in body["errors"][0]["message"]
        )
        late = signed_by_provider_key(provider, provider_claims(provider, exp=now - 20))
        assert "errors" not in await api.gql(ME, late)
        later = signed_by_provider_key(provider, provider_claims(provider, exp=now - 60))
        assert gql_code(await api.gql(ME, later)) == "UNAUTHENTICATED"


async def test_a_token_without_kid_takes_the_one_key_of_its_alg_and_a_kid_must_fit_the_alg(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_app(settings, provider) as api:
        rsa, ec = provider.key_for("RS256"), provider.key_for("ES256")
        claims = provider_claims(provider)
        no_kid = jwt.encode(claims, jwt.PyJWK(rsa).key, algorithm="RS256")
        assert "errors" not in await api.gql(ME, no_kid)  # the provider has one RS256 key
        # An RS256 signature presented under the ES256 key's kid: that key is not RS256.
        mismatched = jwt.encode(
            claims, jwt.PyJWK(rsa).key, algorithm="RS256", headers={"kid": ec["kid"]}
        )
        body = await api.gql(ME, mismatched)
        assert gql_code(body) == "UNAUTHENTICATED" and "not an RS256 key" in str(body), body


async def test_the_student_claim_maps_to_an_id_by_student_number_or_e_mail(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_app(settings, provider) as api:
        body = await api.gql(ME, await provider.login("s-99999999"))  # no such student
        assert gql_code(body) == "UNAUTHENTICATED"
        assert "99999999" in body["errors"][0]["message"], body
    async with oidc_app(settings, provider, oidc_student_claim="email") as api:
        student, _ = await new_student(api, email="Ada.Lovelace@Uni.example.edu")
        token = await provider.login("ada.lovelace@uni.example.edu")
        assert (await api.gql(ME, token))["data"]["me"]["id"] == str(student.id)


async def test_websocket_connection_init_takes_a_good_oidc_token_and_closes_on_a_bad_one(
    settings: Settings, provider: OidcProvider
) -> None:
    async with oidc_app(settings, provider) as api, serve(api.app) as url:
        section = await Catalog(api.container).section(seats=1)
        holder, _ = await new_student(api)
        me, login = await new_student(api)
        await api.container.registrar.register(STAFF, holder.id, [section.id])
        await api.container.registrar.register(Actor(str(me.id), Role.STUDENT), me.id, [section.id])
        token = await provider.login(login)
        async with GqlSocket.open(ws_url(url), token=token) as ws:
            op = await ws.subscribe(WAITLIST_POSITION, student=str(me.id), section=str(section.id))
            assert (await ws.data(op))["position"] == 1

        forged = signed_by_provider_key(provider, provider_claims(provider, aud="urn:x:api"))
        for bad in (forged, api.token(), token[:-4] + "AAAA"):
            with pytest.raises(Closed) as closed:
                async with GqlSocket.open(ws_url(url), token=bad):
                    pass
            assert closed.value.code == 4403
