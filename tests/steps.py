"""A seam for driving an interleaving step by step: a port whose chosen calls stop at a hold
until the test lets them go (or makes them fail there), with no change to the product. The
registrar and promoter reach Redis only through their ports (domain/ports.py), so holding
one port call of one request is holding that request between two of its saga's steps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from domain.promotion import Promoter, Promotion
from domain.registration import Registrar
from domain.seating import CheckedSeating


@dataclass
class Hold:
    """Stops the calls of `method` that `match` (at most `times`): `arrived` is set when one
    stops, `go` lets it on; with `fail` it raises that instead of calling through (a step
    that failed, or a request that died there when `go` is never set)."""

    method: str
    match: Callable[..., bool] = lambda *args, **kwargs: True
    times: int = 1
    fail: BaseException | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def reached(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.arrived.wait(), timeout)


class Held:
    """`inner` with its calls stopped at the holds that match them."""

    def __init__(self, inner: Any, *holds: Hold) -> None:
        self._inner = inner
        self._holds = holds

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        holds = [h for h in self._holds if h.method == name]
        if not holds or not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            for hold in holds:
                if hold.times > 0 and hold.match(*args, **kwargs):
                    hold.times -= 1
                    hold.arrived.set()
                    await hold.go.wait()
                    if hold.fail is not None:
                        raise hold.fail
            return await attr(*args, **kwargs)

        return call


def of_student(student_id: UUID) -> Callable[..., bool]:
    """Matches the port calls made for one student (their id comes first)."""
    return lambda *args, **kwargs: bool(args) and args[0] == student_id


def registrar_with(registrar: Registrar, **ports: Any) -> Registrar:
    """The registrar with some ports of its saga replaced (e.g. rules=Held(...)); its
    promoter keeps the real ones, so only this registrar's own steps are held."""
    seating = registrar.seating
    assert isinstance(seating, CheckedSeating), "the steps held are the rules' saga's"
    promotion = ports.get("promoter", registrar.promotion)
    return replace(registrar, seating=replace(seating, **ports), promotion=promotion)


def promoter_with(promotion: Promotion, **ports: Any) -> Promoter:
    """The rules' promoter with some ports replaced (e.g. seats=Held(...))."""
    assert isinstance(promotion, Promoter), "the steps held are the rules' promoter's"
    return replace(promotion, **ports)
