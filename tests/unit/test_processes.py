"""How many API processes `coursereg serve` runs: `--processes`, else WEB_CONCURRENCY, else
one per core this process may run on (its affinity)."""

from __future__ import annotations

import os

import pytest

from infrastructure.cli.serve import available_cores, process_count
from infrastructure.settings import SettingsError, load_settings

URLS = {"database_url": "postgresql://u@h/d", "redis_url": "redis://h:1/0"}


def test_processes_given_win_then_web_concurrency_then_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    settings = load_settings(**URLS)
    assert process_count(5, settings) == 5
    assert process_count(None, settings) == 3
    monkeypatch.setenv("WEB_CONCURRENCY", "")  # docker-compose's unset variable
    assert process_count(None, load_settings(**URLS)) == available_cores()
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert process_count(None, load_settings(**URLS)) == available_cores()
    assert available_cores() == len(os.sched_getaffinity(0))


def test_a_count_below_one_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="--processes"):
        process_count(0, load_settings(**URLS))
    monkeypatch.setenv("WEB_CONCURRENCY", "0")
    with pytest.raises(SettingsError, match="WEB_CONCURRENCY"):
        load_settings(**URLS)
