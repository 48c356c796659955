"""Settings: unset server URLs mean "use the embedded servers"; bad values name their
variable."""

from __future__ import annotations

import pytest

from infrastructure.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def no_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "COURSEREG_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_unset_or_empty_urls_ask_for_the_embedded_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert settings.database_url is None and settings.redis_url is None
    assert settings.needs_embedded and settings.data_dir == ".data"
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    partly = load_settings()
    assert partly.database_url is None and partly.needs_embedded
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        _ = partly.async_database_url


def test_embedded_urls_fill_only_what_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    filled = load_settings().with_urls(
        "postgresql://postgres@/coursereg?host=/data/postgres", "redis://127.0.0.1:5555/0"
    )
    assert filled.database_url == "postgresql://postgres@/coursereg?host=/data/postgres"
    assert filled.redis_url == "redis://cache:6379/1"
    assert not filled.needs_embedded
    assert filled.async_database_url.startswith("postgresql+asyncpg://postgres@/coursereg?host=")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "nonsense"),
        ("DATABASE_URL", "postgresql://localhost"),
        ("LOG_LEVEL", "chatty"),
        ("COURSEREG_WORKER_METRICS_PORT", "-1"),
        ("COURSEREG_OIDC_ISSUER", "ftp://login.example.edu"),
        ("COURSEREG_OIDC_LEEWAY_SECONDS", "-1"),
        ("COURSEREG_OIDC_STUDENT_COLUMN", "last_name"),
        ("COURSEREG_DEV_TOKENS", "maybe"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(f"invalid settings: {variable}: ")


def test_oidc_settings_default_and_split(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = load_settings()
    assert plain.oidc_issuer is None and plain.accepts_dev_tokens
    monkeypatch.setenv("COURSEREG_OIDC_ISSUER", "https://login.example.edu/realms/uni")
    monkeypatch.setenv("COURSEREG_OIDC_AUDIENCE", "https://registration.example.edu")
    monkeypatch.setenv("COURSEREG_OIDC_STAFF_VALUES", "registrar, registrar-admins ,")
    monkeypatch.setenv("COURSEREG_OIDC_STUDENT_CLAIM", "email")
    oidc = load_settings()
    assert not oidc.accepts_dev_tokens
    assert oidc.oidc_staff_values == ("registrar", "registrar-admins")
    assert oidc.oidc_student_match == "email"
    monkeypatch.setenv("COURSEREG_DEV_TOKENS", "true")
    assert load_settings().accepts_dev_tokens


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"COURSEREG_OIDC_ISSUER": "https://login.example.edu"}, "COURSEREG_OIDC_AUDIENCE"),
        ({"COURSEREG_DEV_TOKENS": "false"}, "COURSEREG_DEV_TOKENS"),
        (
            {
                "COURSEREG_OIDC_ISSUER": "https://login.example.edu",
                "COURSEREG_OIDC_AUDIENCE": "api",
                "COURSEREG_DEMO_LOGIN": "true",
            },
            "COURSEREG_DEMO_LOGIN",
        ),
    ],
)
def test_oidc_settings_that_do_not_fit_together_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(f"invalid settings: {named}: ")


def test_smtp_settings_empty_mean_unset_and_email_needs_a_host() -> None:
    from infrastructure.settings import load_settings

    plain = load_settings(smtp_host="", smtp_user="", smtp_password="")
    assert (plain.smtp_host, plain.smtp_user, plain.smtp_password) == (None, None, None)
    assert not plain.email_enabled
    assert load_settings(smtp_host="mail.uni.edu").email_enabled
    assert not load_settings(smtp_host="mail.uni.edu", notify=False).email_enabled
