"""`make bench-subscribers`: how many seatUpdates subscribers one API process holds, and
how long a change takes to reach them.

Starts two API processes (replicas A and B: `coursereg serve`, one database, one Redis key
space), holds N subscribers on A from a few client processes (and a few on B), then makes
changes through A's GraphQL API at a steady rate: a register or a drop of one student in
one section at a time. Change-to-push latency runs from just before the mutation is sent
until a subscriber receives the push with that change's version, so it includes the
mutation itself. Subscribers on B give the cross-replica latency.

Then the fan-out figure: every subscriber (on A and B) also watches one hot section that
the steady changes never touch; a few single changes there, seconds apart, each reach all
of A's subscribers at once: "time to last push" runs from just before that mutation is
sent until the last of A's subscribers receives it, and "CPU per push" is A's CPU over
that change divided by the pushes it made.

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL as for `coursereg`); the bench makes
and drops its own database and key prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from bench.holders import PROTOCOL, SEAT_UPDATES, Assignment, Push, hold
from bench.replica import (
    Replica,
    run_in_scratch_database,
)
from domain.model import Role
from infrastructure.auth import TokenService
from infrastructure.settings import Settings
from tests.client import DROP, REGISTER

WATCH_LIMIT = 500  # sections per seatUpdates subscription (the server's limit)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.subscribers", description=__doc__.split("\n")[0])
    p.add_argument("--subscribers", type=int, default=10_000, help="held on replica A")
    p.add_argument("--replica-subscribers", type=int, default=200, help="held on replica B")
    p.add_argument("--clients", type=int, default=4, help="client processes for A's subscribers")
    p.add_argument("--sections", type=int, default=100, help="subscriber i watches section i %% S")
    p.add_argument("--rate", type=float, default=10.0, help="changes per second through A")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of changes")
    p.add_argument(
        "--settle", type=float, default=10.0, help="idle seconds between holding and changes"
    )
    p.add_argument(
        "--fanout-changes", type=int, default=3, help="single changes of the hot section"
    )
    p.add_argument("--fanout-pause", type=float, default=4.0, help="seconds after each hot change")
    p.add_argument("--out", help="also write the figures to this JSON file")
    return p.parse_args()


class Staff:
    """GraphQL over HTTP with a staff token."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self.client = client
        self.token = TokenService(settings.jwt_secret).issue(Role.STAFF, "bench")

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = response.json()
        if "errors" in body:
            raise RuntimeError(body["errors"])
        return dict(body["data"])


async def make_catalog(staff: Staff, sections: int) -> tuple[list[str], list[str]]:
    """`sections` open sections of 10 seats, and one student per section (the caller may
    keep the last of each apart)."""
    now = datetime.now(UTC)
    semester = await staff(
        "mutation($i: CreateSemesterInput!) { createSemester(input: $i) { id } }",
        i={
            "name": f"Bench {uuid.uuid4().hex[:6]}",
            "startDate": "2030-09-01",
            "endDate": "2030-12-20",
            "registrationStart": (now - timedelta(days=1)).isoformat(),
            "registrationEnd": (now + timedelta(days=1)).isoformat(),
        },
    )
    course = await staff(
        "mutation($i: CreateCourseInput!) { createCourse(input: $i) { id } }",
        i={"code": f"B{uuid.uuid4().hex[:8]}", "name": "Benchmarking"},
    )
    section_ids, student_ids = [], []
    for n in range(sections):
        made = await staff(
            "mutation($i: CreateSectionInput!) { createSection(input: $i) { id } }",
            i={
                "courseId": course["createCourse"]["id"],
                "semesterId": semester["createSemester"]["id"],
                "sectionNumber": f"{n:04d}",
                "totalSeats": 10,
            },
        )
        section_ids.append(made["createSection"]["id"])
        tag = uuid.uuid4().hex[:10]
        student = await staff(
            "mutation($i: CreateStudentInput!) { createStudent(input: $i) { id } }",
            i={"studentNumber": tag, "firstName": "B", "lastName": "E", "email": f"{tag}@b.e"},
        )
        student_ids.append(student["createStudent"]["id"])
    return section_ids, student_ids


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http") + "/graphql"


def start_holders(
    jobs: list[Assignment],
) -> tuple[list[Any], Any, Any, Any]:
    context = multiprocessing.get_context("spawn")
    ready, results, stop = context.Queue(), context.Queue(), context.Event()
    processes = [context.Process(target=hold, args=(j, ready, stop, results)) for j in jobs]
    for process in processes:
        process.start()
    return processes, ready, results, stop


def assignments(
    args: argparse.Namespace, a: str, b: str, sections: list[str], hot: str
) -> list[Assignment]:
    jobs, first = [], 0
    per_client = -(-args.subscribers // args.clients)
    for n in range(args.clients):
        count = min(per_client, args.subscribers - first)
        jobs.append(Assignment(f"A{n}", ws_url(a), sections, first, count, hot))
        first += count
    if args.replica_subscribers:
        jobs.append(Assignment("B", ws_url(b), sections, 0, args.replica_subscribers, hot))
    return jobs


async def versions_now(a: str, sections: list[str]) -> dict[str, int]:
    """Each section's version, from seatUpdates snapshots."""
    found: dict[str, int] = {}
    async with websockets.connect(ws_url(a), subprotocols=[Subprotocol(PROTOCOL)]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await ws.recv()
        for start in range(0, len(sections), WATCH_LIMIT):
            ids = sections[start : start + WATCH_LIMIT]
            payload = {"query": SEAT_UPDATES, "variables": {"ids": ids}}
            await ws.send(json.dumps({"id": str(start), "type": "subscribe", "payload": payload}))
            for _ in ids:
                update = json.loads(await ws.recv())["payload"]["data"]["seatUpdates"]
                found[update["sectionId"]] = update["version"]
    return found


async def make_changes(
    staff: Staff, args: argparse.Namespace, sections: list[str], students: list[str]
) -> tuple[dict[tuple[str, int], float], list[float]]:
    """Register / drop round robin over the sections at `rate`; (section, n-th change) ->
    when its mutation was sent, and the mutations' round trips."""
    sent: dict[tuple[str, int], float] = {}
    round_trips: list[float] = []
    count: dict[str, int] = defaultdict(int)
    last: dict[str, asyncio.Task[None]] = {}

    async def change(section: str, student: str, n: int) -> None:
        ids = {"studentId": student}
        query, i = (
            (REGISTER, ids | {"sectionIds": [section]})
            if n % 2
            else (
                DROP,
                ids | {"sectionId": section},
            )
        )
        started = time.monotonic()
        sent[(section, n)] = started
        await staff(query, i=i)
        round_trips.append(time.monotonic() - started)

    interval, began = 1 / args.rate, time.monotonic()
    for k in range(int(args.duration * args.rate)):
        await asyncio.sleep(max(0.0, began + k * interval - time.monotonic()))
        section = sections[k % len(sections)]
        if section in last:
            await last[section]  # one change at a time per section keeps versions in order
        count[section] += 1
        student = students[k % len(students)]
        last[section] = asyncio.create_task(change(section, student, count[section]))
    await asyncio.gather(*last.values())
    return sent, round_trips


async def hot_changes(
    staff: Staff, args: argparse.Namespace, a: Replica, hot: str, student: str
) -> list[tuple[float, float]]:
    """One change of the hot section at a time, `fanout_pause` apart: (when its mutation
    was sent, A's CPU seconds from then until the pause ends) per change."""
    found = []
    for n in range(1, args.fanout_changes + 1):
        query, i = (REGISTER, {"sectionIds": [hot]}) if n % 2 else (DROP, {"sectionId": hot})
        cpu = a.cpu_seconds()
        started = time.monotonic()
        await staff(query, i={"studentId": student} | i)
        await asyncio.sleep(args.fanout_pause)
        found.append((started, a.cpu_seconds() - cpu))
    return found


def fanout(
    pushes: list[Push], hot: str, base: int, changes: list[tuple[float, float]], expected: int
) -> dict[str, Any]:
    """Per hot change: pushes on A, time to the last of them, A's CPU per push."""
    arrived: dict[int, list[float]] = defaultdict(list)
    for section, version, received in pushes:
        if section == hot:
            arrived[version - base].append(received)
    rows: list[dict[str, Any]] = []
    lasts: list[float] = []
    cpus: list[float] = []
    for n, (started, cpu) in enumerate(changes, 1):
        times = sorted(t - started for t in arrived.get(n, []))
        rows.append(
            {
                "pushes": len(times),
                "expected": expected,
                "time_to_first_push_ms": round(times[0] * 1000, 1) if times else None,
                "time_to_median_push_ms": round(times[len(times) // 2] * 1000, 1)
                if times
                else None,
                "time_to_last_push_ms": round(times[-1] * 1000, 1) if times else None,
                "api_a_cpu_ms_per_push": round(cpu * 1000 / max(len(times), 1), 4),
            }
        )
        if times:
            lasts.append(rows[-1]["time_to_last_push_ms"])
            cpus.append(rows[-1]["api_a_cpu_ms_per_push"])
    return {
        "subscribers_of_the_section_on_a": expected,
        "changes": rows,
        "time_to_last_push_ms_median": statistics.median(lasts) if lasts else None,
        "api_a_cpu_ms_per_push_median": statistics.median(cpus) if cpus else None,
    }


def latencies(
    pushes: list[Push], sent: dict[tuple[str, int], float], base: dict[str, int]
) -> list[float]:
    found = []
    for section, version, received in pushes:
        started = sent.get((section, version - base[section]))
        if started is not None:
            found.append(received - started)
    return found


def summary(values: list[float], expected: int) -> dict[str, Any]:
    if not values:
        return {"pushes": 0, "expected": expected}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {
        "pushes": len(values),
        "expected": expected,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with (
        Replica.pair(settings) as (a, b),
        httpx.AsyncClient(base_url=a.url, timeout=60) as http,
    ):
        staff = Staff(http, settings)
        sections, students = await make_catalog(staff, args.sections + 1)
        hot, hot_student = sections.pop(), students.pop()
        jobs = assignments(args, a.url, b.url, sections, hot)
        processes, ready, results, stop = start_holders(jobs)
        opened = time.monotonic()
        held = dict(await asyncio.to_thread(lambda: [ready.get(timeout=600) for _ in jobs]))
        print(f"holding {held} subscribers in {time.monotonic() - opened:.1f} s", flush=True)
        await asyncio.sleep(args.settle)
        rss_held = a.rss_mb()
        base = await versions_now(a.url, [*sections, hot])
        cpu_before = a.cpu_seconds()
        sent, round_trips = await make_changes(staff, args, sections, students)
        await asyncio.sleep(2)  # the last pushes
        cpu = a.cpu_seconds() - cpu_before
        changed_hot = await hot_changes(staff, args, a, hot, hot_student)
        stop.set()
        pushes = dict(await asyncio.to_thread(lambda: [results.get(timeout=120) for _ in jobs]))
        for process in processes:
            process.join(timeout=30)
        figures = report(args, jobs, pushes, sent, base, round_trips, rss_held, a.rss_mb())
        pushed = figures["change_to_push_same_replica"]["pushes"]
        figures["api_a_cpu_ms_per_push"] = round(cpu * 1000 / max(pushed, 1), 3)
        on_a = [p for job in jobs if job.tag.startswith("A") for p in pushes[job.tag]]
        figures["one_change_to_every_subscriber"] = fanout(
            on_a, hot, base[hot], changed_hot, args.subscribers
        )
        figures["load_average"] = os.getloadavg()
        return figures


def report(
    args: argparse.Namespace,
    jobs: list[Assignment],
    pushes: dict[str, list[Push]],
    sent: dict[tuple[str, int], float],
    base: dict[str, int],
    round_trips: list[float],
    rss_held: float,
    rss_after: float,
) -> dict[str, Any]:
    changes = len(sent)
    on_a = [p for job in jobs if job.tag.startswith("A") for p in pushes[job.tag]]
    per_section_a = args.subscribers / args.sections
    figures = {
        "subscribers_on_a": args.subscribers,
        "subscribers_on_b": args.replica_subscribers,
        "sections": args.sections,
        "changes": changes,
        "rate_per_s": args.rate,
        "api_a_rss_mb_holding": rss_held,
        "api_a_rss_mb_after": rss_after,
        "mutation_round_trip": summary(round_trips, changes),
        "change_to_push_same_replica": summary(
            latencies(on_a, sent, base), int(changes * per_section_a)
        ),
        "change_to_push_cross_replica": summary(
            latencies(pushes.get("B", []), sent, base),
            int(changes * args.replica_subscribers / args.sections),
        ),
    }
    return figures


def main() -> None:
    args = parse()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the API processes inherit it
    run_in_scratch_database(lambda settings: run(args, settings), args.out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
