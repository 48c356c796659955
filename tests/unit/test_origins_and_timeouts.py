"""COURSEREG_CORS_ORIGINS reads as the exact origins a browser sends; the keep-alive setting
outlasts the proxy's idle timeout in the shipped configuration (deploy/nginx.conf,
docker-compose.yml), so only the proxy closes an idle connection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infrastructure.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_no_origin_is_allowed_by_default() -> None:
    assert load_settings().cors_origins == ()


def test_origins_are_read_as_a_browser_sends_them(monkeypatch: pytest.MonkeyPatch) -> None:
    given = " https://App.Example.edu:443, http://localhost:5173 ,,http://[::1]:8080/ "
    monkeypatch.setenv("COURSEREG_CORS_ORIGINS", given)
    assert load_settings().cors_origins == (
        "https://app.example.edu",
        "http://localhost:5173",
        "http://[::1]:8080",
    )


@pytest.mark.parametrize(
    "value",
    ["*", "app.example.edu", "https://app.example.edu/path", "ftp://x.edu", "https://x.edu:99999"],
)
def test_anything_but_an_exact_origin_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("COURSEREG_CORS_ORIGINS", f"https://ok.edu,{value}")
    with pytest.raises(SettingsError, match="COURSEREG_CORS_ORIGINS"):
        load_settings()


def nginx_upstream_idle_seconds() -> int:
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.search(r"upstream api \{(.*?)\}", config, re.DOTALL)
    assert upstream is not None
    found = re.search(r"^\s*keepalive_timeout\s+(\d+)s;", upstream[1], re.MULTILINE)
    assert found is not None, "nginx's upstream keepalive_timeout is not set"
    return int(found[1])


def test_the_api_keeps_idle_connections_longer_than_nginx() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api = int(compose["services"]["api"]["environment"]["COURSEREG_KEEP_ALIVE_SECONDS"])
    default = Settings.model_fields["keep_alive_seconds"].default
    assert nginx_upstream_idle_seconds() < api and nginx_upstream_idle_seconds() < default
