"""Settings from the environment, validated once at start with messages naming the variable."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "coursereg-development-secret-change-me-in-production"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # Unset (or empty): `coursereg` starts embedded servers under data_dir (embedded.py).
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    data_dir: str = Field(".data", min_length=1, validation_alias="COURSEREG_DATA_DIR")
    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="PORT")
    jwt_secret: str = Field(DEV_JWT_SECRET, min_length=32, validation_alias="COURSEREG_JWT_SECRET")
    shards: int = Field(16, ge=1, le=1024, validation_alias="COURSEREG_SHARDS")
    key_prefix: str = Field("", max_length=64, validation_alias="COURSEREG_KEY_PREFIX")
    log_format: Literal["text", "json"] = Field("text", validation_alias="LOG_FORMAT")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    graphiql: bool = Field(True, validation_alias="COURSEREG_GRAPHIQL")
    introspection: bool = Field(True, validation_alias="COURSEREG_INTROSPECTION")
    # The student app's "sign in as" picker of demo students (`make demo`): it mints a
    # student token for anyone who asks, so never on in production.
    demo_login: bool = Field(False, validation_alias="COURSEREG_DEMO_LOGIN")
    db_pool_size: int = Field(20, ge=1, le=500, validation_alias="COURSEREG_DB_POOL")
    redis_pool_size: int = Field(256, ge=8, le=10_000, validation_alias="COURSEREG_REDIS_POOL")
    worker_batch: int = Field(1000, ge=1, le=20_000, validation_alias="COURSEREG_WORKER_BATCH")
    max_job_attempts: int = Field(5, ge=1, le=100, validation_alias="COURSEREG_MAX_JOB_ATTEMPTS")
    # Registration rules (contract/rules.graphql) checked on the hot path; off measures the
    # rule-free hot path (make bench) and turns swap and offers off.
    rules: bool = Field(True, validation_alias="COURSEREG_RULES")
    # How long a rules check holds a student's credits and meeting time for a request that
    # has not settled; a sweep releases reservations of requests that died.
    reservation_ms: int = Field(
        30_000, ge=100, le=600_000, validation_alias="COURSEREG_RESERVATION_MS"
    )
    # How long a dead worker's shards stay unowned before another worker takes them over.
    lease_ms: int = Field(10_000, ge=500, le=600_000, validation_alias="COURSEREG_LEASE_MS")
    # A worker's own Prometheus endpoint (0: none); the API serves /metrics on its port.
    worker_metrics_port: int = Field(
        0, ge=0, le=65535, validation_alias="COURSEREG_WORKER_METRICS_PORT"
    )
    # Proxies whose X-Forwarded-For uvicorn believes (comma-separated addresses or "*"):
    # the per-address rate limit needs the client's address, not the proxy's.
    forwarded_allow_ips: str = Field("127.0.0.1", validation_alias="FORWARDED_ALLOW_IPS")
    # Browser origins other than the API's own whose pages may call it and open its
    # websockets: exact origins, comma-separated (https://app.example.edu). None by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="COURSEREG_CORS_ORIGINS"
    )
    # How long an idle HTTP keep-alive connection stays open. Longer than any proxy's or
    # client's idle timeout in front of it (nginx: 60 s in deploy/nginx.conf), so the server
    # never closes a connection the instant the other side reuses it (a reset, not retried).
    keep_alive_seconds: int = Field(
        75, ge=1, le=3600, validation_alias="COURSEREG_KEEP_ALIVE_SECONDS"
    )
    # API processes of `coursereg serve` (uvicorn's name for it; `--processes` wins): unset,
    # one per core this process may run on.
    web_concurrency: int | None = Field(None, ge=1, le=256, validation_alias="WEB_CONCURRENCY")
    # Abuse limits (README "Limits"). The rates hold for the whole deployment (buckets in
    # Redis, shared by every process and replica). A rate of 0 turns that limit off.
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576, validation_alias="COURSEREG_MAX_BODY_BYTES"
    )
    max_query_depth: int = Field(10, ge=2, le=100, validation_alias="COURSEREG_MAX_QUERY_DEPTH")
    max_aliases: int = Field(20, ge=1, le=1000, validation_alias="COURSEREG_MAX_ALIASES")
    max_tokens: int = Field(2000, ge=100, le=100_000, validation_alias="COURSEREG_MAX_TOKENS")
    max_subscriptions: int = Field(
        100, ge=1, le=10_000, validation_alias="COURSEREG_MAX_SUBSCRIPTIONS"
    )
    connection_init_seconds: float = Field(
        10.0, gt=0, le=600, validation_alias="COURSEREG_CONNECTION_INIT_SECONDS"
    )
    # register and drop per second (sustained) and in a burst, per student and per address.
    rate_student: float = Field(10.0, ge=0, validation_alias="COURSEREG_RATE_STUDENT")
    rate_student_burst: int = Field(
        30, ge=1, le=100_000, validation_alias="COURSEREG_RATE_STUDENT_BURST"
    )
    rate_ip: float = Field(2000.0, ge=0, validation_alias="COURSEREG_RATE_IP")
    rate_ip_burst: int = Field(4000, ge=1, le=1_000_000, validation_alias="COURSEREG_RATE_IP_BURST")
    # Admission control (README "Overload"): requests to /graphql and /api/ in flight per
    # process (at most; the latency its gradient aims at and the floor it keeps), the queue
    # behind them and its deadline, the event-loop lag past which nobody queues, the staff
    # lane, and the Retry-After of a refusal. A limit of 0 turns admission control off.
    admission_limit: int = Field(
        256, ge=0, le=100_000, validation_alias="COURSEREG_ADMISSION_LIMIT"
    )
    admission_min_limit: int = Field(
        64, ge=1, le=100_000, validation_alias="COURSEREG_ADMISSION_MIN_LIMIT"
    )
    admission_latency_ms: float = Field(
        500.0, gt=0, le=600_000, validation_alias="COURSEREG_ADMISSION_LATENCY_MS"
    )
    admission_queue: int = Field(
        256, ge=0, le=100_000, validation_alias="COURSEREG_ADMISSION_QUEUE"
    )
    admission_wait_ms: float = Field(
        25.0, ge=0, le=60_000, validation_alias="COURSEREG_ADMISSION_WAIT_MS"
    )
    admission_lag_ms: float = Field(
        50.0, gt=0, le=60_000, validation_alias="COURSEREG_ADMISSION_LAG_MS"
    )
    admission_staff_limit: int = Field(
        8, ge=0, le=10_000, validation_alias="COURSEREG_ADMISSION_STAFF_LIMIT"
    )
    admission_retry_after: float = Field(
        1.0, gt=0, le=3600, validation_alias="COURSEREG_ADMISSION_RETRY_AFTER"
    )
    # Trusted documents (README "Trusted documents"): `students` lets students and anonymous
    # callers run only the student app's manifest; staff and advisors keep any document. Off
    # by default: the contract is a public GraphQL API other frontends (CORS) write their own
    # documents for.
    trusted_documents: Literal["off", "students"] = Field(
        "off", validation_alias="COURSEREG_TRUSTED_DOCUMENTS"
    )
    # The trusted documents' hot mutations run through plans prepared at start-up
    # (infrastructure/http/plans.py), whatever trusted_documents says; false: every
    # document through graphql-core, as the bench's comparison needs.
    plans: bool = Field(True, validation_alias="COURSEREG_PLANS")
    # Notifications (README "Notifications"). E-mail goes out when SMTP_HOST is set; webhooks
    # to the subscribers staff add (addWebhookSubscription). The notifier runs in each worker.
    notify: bool = Field(True, validation_alias="COURSEREG_NOTIFY")
    smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    smtp_port: int = Field(587, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_starttls: bool = Field(True, validation_alias="SMTP_STARTTLS")
    smtp_user: str | None = Field(None, validation_alias="SMTP_USER")
    smtp_password: str | None = Field(None, validation_alias="SMTP_PASSWORD")
    smtp_from: str = Field(
        "Registrar <registrar@localhost>", min_length=3, validation_alias="SMTP_FROM"
    )
    # One send's limit (SMTP or webhook); a claim lasts twice this plus a margin.
    notify_timeout_seconds: float = Field(
        10.0, gt=0, le=300, validation_alias="COURSEREG_NOTIFY_TIMEOUT_SECONDS"
    )
    # Retries: exponential from the first delay, capped, with jitter; dead after the
    # attempts (defaults: 30 s doubling to 1 h, 20 tries: about 14 h in all).
    notify_retry_first_seconds: float = Field(
        30.0, gt=0, le=86_400, validation_alias="COURSEREG_NOTIFY_RETRY_FIRST_SECONDS"
    )
    notify_retry_cap_seconds: float = Field(
        3600.0, gt=0, le=86_400, validation_alias="COURSEREG_NOTIFY_RETRY_CAP_SECONDS"
    )
    notify_max_attempts: int = Field(
        20, ge=1, le=1000, validation_alias="COURSEREG_NOTIFY_MAX_ATTEMPTS"
    )
    notify_poll_seconds: float = Field(
        0.5, gt=0, le=60, validation_alias="COURSEREG_NOTIFY_POLL_SECONDS"
    )
    notify_concurrency: int = Field(
        20, ge=1, le=500, validation_alias="COURSEREG_NOTIFY_CONCURRENCY"
    )

    @field_validator("smtp_host", "smtp_user", "smtp_password", "web_concurrency", mode="before")
    @classmethod
    def _compose_empty_is_unset(cls, value: object) -> object:
        # docker-compose passes an unset variable as empty: no server, no login, the default
        # count of API processes.
        return None if value == "" else value

    @property
    def email_enabled(self) -> bool:
        return self.notify and bool(self.smtp_host)

    # Sign-in through the university's OpenID provider (README "Sign-in (OIDC)"): the API
    # accepts its access tokens (JWTs, RS256/ES256/EdDSA) when an issuer is set.
    oidc_issuer: str | None = Field(None, validation_alias="COURSEREG_OIDC_ISSUER")
    oidc_audience: str | None = Field(None, validation_alias="COURSEREG_OIDC_AUDIENCE")
    # The student app's public client and the scopes it asks for: GET /app/config.json tells
    # the app these when the issuer is set (it signs in by Authorization Code with PKCE).
    oidc_client_id: str = Field(
        "coursereg-app", min_length=1, validation_alias="COURSEREG_OIDC_CLIENT_ID"
    )
    oidc_scopes: str = Field(
        "openid profile email", min_length=1, validation_alias="COURSEREG_OIDC_SCOPES"
    )
    # Which claim holds the roles or groups (a dotted path reaches into an object, e.g.
    # realm_access.roles), and which of its values mean staff, advisor, student.
    oidc_roles_claim: str = Field(
        "groups", min_length=1, validation_alias="COURSEREG_OIDC_ROLES_CLAIM"
    )
    oidc_staff_values: Annotated[tuple[str, ...], NoDecode] = Field(
        ("registrar-staff",), validation_alias="COURSEREG_OIDC_STAFF_VALUES"
    )
    oidc_advisor_values: Annotated[tuple[str, ...], NoDecode] = Field(
        ("advisors",), validation_alias="COURSEREG_OIDC_ADVISOR_VALUES"
    )
    oidc_student_values: Annotated[tuple[str, ...], NoDecode] = Field(
        ("students",), validation_alias="COURSEREG_OIDC_STUDENT_VALUES"
    )
    # The claim that identifies a student, and the students column it is matched against
    # (default: email for an "email" claim, else student_number).
    oidc_student_claim: str = Field(
        "student_number", min_length=1, validation_alias="COURSEREG_OIDC_STUDENT_CLAIM"
    )
    oidc_student_column: Literal["student_number", "email"] | None = Field(
        None, validation_alias="COURSEREG_OIDC_STUDENT_COLUMN"
    )
    # Clock skew allowed on exp, nbf and iat.
    oidc_leeway_seconds: int = Field(
        30, ge=0, le=300, validation_alias="COURSEREG_OIDC_LEEWAY_SECONDS"
    )
    # How long the provider's keys are used before they are fetched again, and the least
    # time between two fetches caused by a token with an unknown kid (a flood of made-up
    # kids then costs the provider one fetch per interval).
    oidc_jwks_ttl_seconds: int = Field(
        3600, ge=10, le=86_400, validation_alias="COURSEREG_OIDC_JWKS_TTL_SECONDS"
    )
    oidc_jwks_refetch_seconds: float = Field(
        30.0, ge=0.1, le=3600, validation_alias="COURSEREG_OIDC_JWKS_REFETCH_SECONDS"
    )
    # The HS256 development tokens (`coursereg token`, the demo sign-in): on without OIDC,
    # off with it unless set to true.
    dev_tokens: bool | None = Field(None, validation_alias="COURSEREG_DEV_TOKENS")

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    @field_validator("key_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        # A brace would become the hash tag of every key (keys.py) and put a section's
        # keys and its shard's stream in different Redis Cluster slots.
        if "{" in value or "}" in value:
            raise ValueError("must not contain { or } (Redis Cluster hash tags)")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip() for o in value.split(",") if o.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_origin(o) for o in value)

    @field_validator(
        "oidc_staff_values", "oidc_advisor_values", "oidc_student_values", mode="before"
    )
    @classmethod
    def _split_values(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("oidc_issuer", "oidc_audience", "dev_tokens", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be the provider's issuer URL, e.g. https://login.example.edu")
        if parts.query or parts.fragment:
            raise ValueError("an issuer URL has no query or fragment")
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer is not None and not self.oidc_audience:
            raise ValueError(
                "COURSEREG_OIDC_AUDIENCE: required with COURSEREG_OIDC_ISSUER (the aud of "
                "the access tokens the provider issues for this API)"
            )
        if not self.accepts_dev_tokens and self.oidc_issuer is None:
            raise ValueError(
                "COURSEREG_DEV_TOKENS: false needs COURSEREG_OIDC_ISSUER, or no token is accepted"
            )
        if self.demo_login and not self.accepts_dev_tokens:
            raise ValueError(
                "COURSEREG_DEMO_LOGIN: its tokens are HS256 development tokens, off with "
                "COURSEREG_OIDC_ISSUER unless COURSEREG_DEV_TOKENS=true"
            )
        return self

    @field_validator("database_url", "redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError("must be a postgresql:// URL")
        if not parts.path.strip("/"):
            raise ValueError("must name a database, e.g. postgresql://user@host:5432/coursereg")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("must name a host, e.g. redis://127.0.0.1:6379/0")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError as exc:
            raise ValueError(f"has a bad port ({exc})") from None
        return value

    @property
    def accepts_dev_tokens(self) -> bool:
        """HS256 development tokens: COURSEREG_DEV_TOKENS, by default on only without OIDC."""
        return self.dev_tokens if self.dev_tokens is not None else self.oidc_issuer is None

    @property
    def oidc_student_match(self) -> Literal["student_number", "email"]:
        """The students column COURSEREG_OIDC_STUDENT_CLAIM's value is matched against."""
        if self.oidc_student_column is not None:
            return self.oidc_student_column
        return "email" if self.oidc_student_claim == "email" else "student_number"

    @property
    def needs_embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    @property
    def async_database_url(self) -> str:
        """The URL with SQLAlchemy's asyncpg driver named."""
        scheme, rest = self.postgres.split("://", 1)
        return "postgresql+asyncpg://" + rest if scheme != "postgresql+asyncpg" else self.postgres

    @property
    def postgres(self) -> str:
        if self.database_url is None:
            raise SettingsError("DATABASE_URL: not set, and no embedded server was started")
        return self.database_url

    @property
    def redis(self) -> str:
        if self.redis_url is None:
            raise SettingsError("REDIS_URL: not set, and no embedded server was started")
        return self.redis_url

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        """These settings with the URLs filled in where they were unset."""
        return self.model_copy(
            update={
                "database_url": self.database_url or database_url,
                "redis_url": self.redis_url or redis_url,
            }
        )


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(text: str) -> str:
    """An origin as a browser sends it in Origin (lowercase, no default port), which is what
    CORS and the websocket check compare against, character for character."""
    if text == "*":
        raise ValueError("must list exact origins, not *")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r} is not an origin") from None
    extra = parts.path not in ("", "/") or parts.query or parts.fragment or parts.username
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname or extra:
        raise ValueError(f"{text!r} is not an origin like https://app.example.edu[:port]")
    scheme, host = parts.scheme.lower(), parts.hostname
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[scheme] else "")


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise SettingsError naming the bad variable, never a traceback.

    Overrides are given by field name. Settings only reads its fields' aliases (the variable
    names) and ignores other keywords, so an override is passed under its alias: passed by
    name, `key_prefix`, `shards` or `jwt_secret` would be dropped without a word."""
    fields = Settings.model_fields
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(unknown)}")
    by_alias = {
        alias if isinstance(alias := fields[name].validation_alias, str) else name: value
        for name, value in overrides.items()
    }
    try:
        return Settings(**by_alias)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [
            f"{error['loc'][0]}: {error['msg']}"
            if error["loc"]
            # A check across fields names its variables itself.
            else error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        ]
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None
