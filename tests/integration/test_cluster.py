"""The same code on a real Redis Cluster of three primaries (tests/redis_cluster.py, started
once per session): REDIS_URL names one node and nothing else changes. The `settings` override
below puts every conftest fixture (api, catalog, worker, server, and the `coursereg`
subprocesses they start) on the cluster. The suite's core concurrency, subscription, worker
and rules tests run again here unchanged; then what only a cluster shows: no script call or
MULTI crosses a slot, and a rush whose sections are served by all three nodes at once."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from infrastructure.container import Container
from infrastructure.redis.scripts import Scripts
from infrastructure.settings import Settings
from infrastructure.state.reconcile import Reconciler
from tests.client import CAPACITY, REGISTER, registered
from tests.conftest import Api, Catalog, Servers, Worker
from tests.integration import (
    test_race,
    test_randomized,
    test_read_your_writes,
    test_replicas,
    test_rules,
    test_subscriptions,
    test_workers,
)
from tests.integration.test_rules import rules
from tests.invariants import check_postgres, check_redis
from tests.redis_cluster import RedisClusterNodes
from tests.waiting import wait_until


@pytest.fixture
def settings(settings: Settings, cluster: RedisClusterNodes) -> Settings:
    """The suite's settings with REDIS_URL at one node of the cluster: the only change."""
    return settings.model_copy(update={"redis_url": cluster.url})


# The suite's own tests, unchanged, on the cluster (the `settings` above is all they see).
test_race_300_for_30 = test_race.test_300_students_race_for_30_seats
test_race_drops_promote_in_order = test_race.test_dropping_ten_promotes_the_first_ten_in_order
test_random_mix = test_randomized.test_random_mix_keeps_every_invariant
test_seat_updates = (
    test_subscriptions.test_seat_updates_sends_one_snapshot_per_section_then_every_change
)
test_versions_never_backwards = (
    test_subscriptions.test_a_subscriber_never_sees_a_version_go_backwards_under_a_rush
)
test_waitlist_position = (
    test_subscriptions.test_waitlist_position_follows_every_rank_change_and_completes_when_enrolled
)
test_two_replicas_push_to_each_others_subscribers = (
    test_replicas.test_a_change_through_one_replica_reaches_a_subscriber_of_the_other
)
test_worker_sigkills_exactly_once = (
    test_workers.test_workers_killed_mid_batch_lose_and_repeat_nothing
)
test_workers_rebalance = test_workers.test_workers_share_the_shards_and_take_over_a_stopped_one
test_read_a_register_at_once = (
    test_read_your_writes.test_a_register_shows_at_once_and_the_same_once_persisted
)
test_read_your_writes_in_a_rush = (
    test_read_your_writes.test_under_a_rush_every_read_right_after_an_answer_shows_it
)


async def test_each_process_picks_its_client_from_the_server_it_is_pointed_at(
    api: Api, settings: Settings, servers: Servers
) -> None:
    assert isinstance(api.container.redis, RedisCluster)
    single = await Container.open(settings.model_copy(update={"redis_url": servers.redis_url}))
    try:
        assert isinstance(single.redis, Redis)
    finally:
        await single.close()


# What the hot-path tour below runs, each a test of the suite on these same fixtures.
TOUR: list[Callable[..., Awaitable[None]]] = [
    test_rules.test_offers_are_claimed_declined_or_expire,
    test_rules.test_a_swap_into_a_full_section_waits_and_its_promotion_drops_the_old_one,
    test_rules.test_a_pending_swap_survives_a_rebuild_of_the_live_state,
    test_race.test_dropping_ten_promotes_the_first_ten_in_order,
    # Last: it shortens the container's reservation deadlines for the rest of its life.
    test_rules.test_a_request_that_dies_between_the_steps_leaks_no_reservation,
]


@pytest.fixture
def script_slots(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], int]]:
    """(sha, KEYS, slot) of every EVALSHA the cluster client routes, direct or pipelined. It
    is the client's own slot check, which raises on KEYS of several slots; recorded here
    (wrapping it, not replacing it) to see that the tour reached every script."""
    seen: list[tuple[str, list[str], int]] = []
    check = RedisCluster._determine_slot

    async def recorded(self: RedisCluster, command: str, *args: Any) -> int:
        slot = await check(self, command, *args)
        if command.upper() == "EVALSHA":
            seen.append((str(args[0]), [str(k) for k in args[2 : 2 + int(args[1])]], slot))
        return slot

    monkeypatch.setattr(RedisCluster, "_determine_slot", recorded)
    return seen


async def _drained(*_: Any) -> bool:
    return True


async def _node_stats(cluster: RedisClusterNodes) -> dict[int, dict[str, Any]]:
    stats = {}
    for port in cluster.ports:
        async with Redis(port=port, decode_responses=True) as node:
            stats[port] = {
                **await node.info("commandstats"),
                **await node.info("errorstats"),
            }
    return stats


async def test_no_script_call_or_multi_crosses_a_slot_on_the_hot_path(
    api: Api,
    catalog: Catalog,
    worker: Worker,
    settings: Settings,
    cluster: RedisClusterNodes,
    script_slots: list[tuple[str, list[str], int]],
) -> None:
    """Invariant: every key a script or a MULTI touches shares one slot. The cluster client
    refuses a script call across slots and a MULTI across slots (and the server, a key of
    another node), so the whole hot path passing here is the proof: register, drop with
    promotion, capacity, swap, offers claimed, declined and expired by the sweep, a request
    dying mid-saga swept, idempotent replays, worker leases, rebuilds and the reconciler."""
    for port in cluster.ports:
        async with Redis(port=port) as node:
            await node.config_resetstat()
    fixtures = {"api": api, "catalog": catalog, "worker": worker, "settings": settings}
    for scenario in TOUR:
        wanted = inspect.signature(scenario).parameters
        await scenario(**{name: fixtures[name] for name in wanted})

    section = await catalog.section(seats=3)
    student = await catalog.student()
    ask = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
    ask["idempotencyKey"] = uuid.uuid4().hex
    token = api.student_token(student.id)
    first = await api.gql(REGISTER, token, i=ask)
    assert await api.gql(REGISTER, token, i=ask) == first, "a replay answers the same"
    mine = await api.gql(test_read_your_writes.ME, token)  # pending.lua, on every shard
    assert test_read_your_writes.statuses(mine["data"]["me"]) == {str(section.id): "ENROLLED"}
    assert "errors" not in await api.gql(CAPACITY, api.token(), s=str(section.id), n=5)
    # A rule change reaches the holders' slots (refresh.lua, one per student).
    meeting = {"days": ["MON"], "startTime": "09:00", "endTime": "09:50"}
    await rules(api, section, meetings=[meeting])
    await worker.drain()
    # The operator's commands: rebuild-cache (markers of every shard dropped and set again)
    # and reconcile --repair of a section made to drift.
    assert await api.container.state.rebuild(_drained) is not None
    assert not await api.container.state.missing_shards()
    await api.container.redis.set(api.container.keys.section(section.id).seats, 0)
    reconciler = Reconciler(
        api.container.redis, api.container.keys, api.container.snapshot, api.container.state
    )
    drift = await reconciler.run(only={section.id})
    assert not drift.ok
    assert await api.container.state.rebuild(_drained, shards=reconciler.shards_of(drift))
    assert (await reconciler.run(only={section.id})).ok

    names = {getattr(api.container.scripts, n).sha: n for n in Scripts.NAMES}

    def ran() -> set[str]:
        return {names[sha] for sha, _, _ in script_slots}

    # The lease renewal script runs on the worker's next renewal round.
    await wait_until(lambda: ran() == set(Scripts.NAMES), 10, "every script run on the cluster")
    for sha, keys, slot in script_slots:
        assert {key_slot(k.encode()) for k in keys} == {slot}, (names[sha], keys)
    stats = await _node_stats(cluster)
    for port, stat in stats.items():
        assert stat["cmdstat_evalsha"]["calls"] > 0, f"node {port} ran no script"
        # The only scripts that failed met NOSCRIPT (a node's first call of one; reloaded).
        noscript = stat.get("errorstat_NOSCRIPT", {}).get("count", 0)
        assert stat["cmdstat_evalsha"]["failed_calls"] == noscript, stat["cmdstat_evalsha"]
        assert not [k for k in stat if "CROSSSLOT" in k or "MOVED" in k], stat
    assert sum(n.get("cmdstat_exec", {}).get("calls", 0) for n in stats.values()) > 0
    print(
        f"\nscripts on the cluster: {len(ran())} of {len(Scripts.NAMES)} run, "
        f"{len(script_slots)} slot checks; "
        + ", ".join(
            f"node {p}: {n['cmdstat_evalsha']['calls']} EVALSHA, "
            f"{n.get('cmdstat_exec', {}).get('calls', 0)} EXEC"
            for p, n in stats.items()
        )
    )


async def _one_section_per_node(
    api: Api, catalog: Catalog, cluster: RedisClusterNodes, seats: int
) -> dict[int, Any]:
    """Sections made until each primary serves one, by CLUSTER KEYSLOT and CLUSTER NODES."""
    semester = await catalog.semester()
    by_node: dict[int, Any] = {}
    for _ in range(60):
        section = await catalog.section(seats, semester)
        keys = api.container.keys.section(section.id)
        node = cluster.node_of(keys.seats)
        assert cluster.node_of(keys.stream) == node, "a section and its shard's stream together"
        by_node.setdefault(node.port, section)
        if len(by_node) == len(cluster.ports):
            return by_node
    raise AssertionError(f"sections landed on {sorted(by_node)} only")


async def test_300_for_30_with_sections_served_by_all_three_nodes(
    api: Api, catalog: Catalog, worker: Worker, settings: Settings, cluster: RedisClusterNodes
) -> None:
    """Invariants on every node at once: no oversell, FIFO positions, Postgres equal after
    draining. 300 students each ask for three sections of 10 seats (30 in all), one served by
    each primary, in one request: its section scripts go to three nodes in one round trip."""
    by_node = await _one_section_per_node(api, catalog, cluster, seats=10)
    assert sorted(by_node) == sorted(cluster.ports)
    sections = [by_node[port] for port in sorted(by_node)]
    students = await catalog.students(300)
    answers = await asyncio.gather(*(registered(api, s, *sections) for s in students))
    for n, section in enumerate(sections):
        results = [a[n] for a in answers]
        assert all(r["sectionId"] == str(section.id) for r in results)
        enrolled = [r for r in results if r["outcome"] == "ENROLLED"]
        waiting = sorted(r["waitlistPosition"] for r in results if r["outcome"] == "WAITLISTED")
        assert len(enrolled) == 10 and waiting == list(range(1, 291)), section.id
    await check_redis(api.container, [s.id for s in sections])
    await worker.drain()
    counts = await check_postgres(api.container, settings.postgres, [s.id for s in sections])
    print(
        f"\n300-for-30 over three nodes ({', '.join(map(str, sorted(by_node)))}): "
        f"10 enrolled and 290 waiting per section, Postgres equal {counts}"
    )
