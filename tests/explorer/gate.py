"""The gating proxy: wraps any object so that each of its coroutine methods, called by a
scheduled action, is one step that waits for the scheduler's turn. It knows no method by
name, so it keeps working as the ports grow steps and states.

`gate_services` puts proxies in front of every Redis adapter (any object of a class in
`infrastructure.redis`) that the services reach, following their dataclass fields: the
Registrar's and Promoter's seats, rules, answers, sections and students, the catalog
service's seats and promoter. The services themselves, and the product code, stay as built.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

from tests.explorer.scheduler import Scheduler

REDIS_ADAPTERS = "infrastructure.redis."


class Gated:
    __slots__ = ("_name", "_scheduler", "_target")

    def __init__(self, target: object, name: str, scheduler: Scheduler) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_scheduler", scheduler)

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not inspect.iscoroutinefunction(value):
            return value
        label, scheduler = f"{self._name}.{attr}", self._scheduler

        @functools.wraps(value)
        async def gated(*args: Any, **kwargs: Any) -> Any:
            return await scheduler.step(label, functools.partial(value, *args, **kwargs))

        return gated

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._target, attr, value)


def _is_adapter(value: object) -> bool:
    return type(value).__module__.startswith(REDIS_ADAPTERS)


def _is_service(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def gate_services(scheduler: Scheduler, *services: object) -> dict[str, Gated]:
    """Replace, in these services and the services they hold, each Redis adapter by its
    gated proxy (one proxy per adapter, named for the field). Returns the proxies."""
    proxies: dict[int, Gated] = {}
    named: dict[str, Gated] = {}
    seen: set[int] = set()

    def visit(service: object) -> None:
        if id(service) in seen:
            return
        seen.add(id(service))
        for field in dataclasses.fields(service):  # type: ignore[arg-type]
            value = getattr(service, field.name)
            if isinstance(value, Gated):
                continue
            if _is_adapter(value):
                proxy = proxies.get(id(value))
                if proxy is None:
                    proxy = proxies[id(value)] = Gated(value, field.name, scheduler)
                    named[field.name] = proxy
                setattr(service, field.name, proxy)
            elif _is_service(value):
                visit(value)

    for service in services:
        visit(service)
    return named
