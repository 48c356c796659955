"""Settings from the environment, validated once at start with messages naming the variable."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "coursereg-development-secret-change-me-in-production"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(
        "postgresql://root@127.0.0.1:5432/coursereg", validation_alias="DATABASE_URL"
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="PORT")
    jwt_secret: str = Field(DEV_JWT_SECRET, min_length=32, validation_alias="COURSEREG_JWT_SECRET")
    shards: int = Field(16, ge=1, le=1024, validation_alias="COURSEREG_SHARDS")
    key_prefix: str = Field("", max_length=64, validation_alias="COURSEREG_KEY_PREFIX")
    log_format: Literal["text", "json"] = Field("text", validation_alias="LOG_FORMAT")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    graphiql: bool = Field(True, validation_alias="COURSEREG_GRAPHIQL")
    introspection: bool = Field(True, validation_alias="COURSEREG_INTROSPECTION")
    db_pool_size: int = Field(20, ge=1, le=500, validation_alias="COURSEREG_DB_POOL")
    redis_pool_size: int = Field(256, ge=8, le=10_000, validation_alias="COURSEREG_REDIS_POOL")
    worker_batch: int = Field(1000, ge=1, le=20_000, validation_alias="COURSEREG_WORKER_BATCH")
    max_job_attempts: int = Field(5, ge=1, le=100, validation_alias="COURSEREG_MAX_JOB_ATTEMPTS")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError("must be a postgresql:// URL")
        if not parts.path.strip("/"):
            raise ValueError("must name a database, e.g. postgresql://user@host:5432/coursereg")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
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
    def async_database_url(self) -> str:
        """The URL with SQLAlchemy's asyncpg driver named."""
        scheme, rest = self.database_url.split("://", 1)
        return (
            "postgresql+asyncpg://" + rest if scheme != "postgresql+asyncpg" else self.database_url
        )


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
            f"{error['loc'][0] if error['loc'] else '?'}: {error['msg']}" for error in exc.errors()
        ]
        raise SettingsError("invalid settings: " + "; ".join(lines)) from None
