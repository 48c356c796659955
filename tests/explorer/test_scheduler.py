"""The explorer's own mechanics, without Redis: a gated call runs only when granted, a
killed action's later calls never run (not even the clean-up in its `finally` when it is
cancelled), and the proxy passes anything but coroutine methods through."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.explorer.gate import Gated, gate_services
from tests.explorer.scheduler import Scheduler
from tests.explorer.trace import Trace


@dataclass
class Store:
    calls: list[str] = field(default_factory=list)
    limit: int = 3

    async def write(self, what: str) -> str:
        self.calls.append(what)
        return what


@dataclass
class Service:
    store: Store

    async def work(self) -> str:
        try:
            await self.store.write("first")
            return await self.store.write("second")
        finally:
            await self.store.write("clean-up")


async def test_a_gated_call_runs_only_when_granted_and_a_dead_action_runs_nothing() -> None:
    store = Store()
    scheduler = Scheduler(Trace({}))
    proxy = Gated(store, "store", scheduler)
    service = Service(proxy)  # type: ignore[arg-type]
    one = scheduler.start(1, "one", service.work)
    two = scheduler.start(2, "two", service.work)
    await scheduler.settled()
    assert store.calls == [] and one.parked == two.parked == "store.write"
    await scheduler.grant(one)
    assert store.calls == ["first"]
    scheduler.kill(two)
    await scheduler.grant(one)
    await scheduler.grant(one)
    assert one.answer == "second" and store.calls == ["first", "second", "clean-up"]
    await scheduler.bury()
    assert two.answer == "(died)" and store.calls == ["first", "second", "clean-up"]


def test_the_proxy_wraps_coroutine_methods_only_and_gates_adapters_in_services() -> None:
    scheduler = Scheduler(Trace({}))
    proxy = Gated(Store(), "store", scheduler)
    assert proxy.limit == 3
    proxy.limit = 4
    assert proxy.limit == 4
    service = Service(Store())
    assert gate_services(scheduler, service) == {}, "only adapters of infrastructure.redis"
