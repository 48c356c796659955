"""`make bench`: the rush measured against the framework ceiling and a naive baseline, all in
one run on one machine so the ratios are honest. Writes docs/benchmarks/results.{json,md,png}.

1. Framework ceiling: the register mutation answering a constant on the product's stack.
2. Naive baseline: register on Postgres alone (row lock), as a storage call and over HTTP.
3. The product: the domain's register in process (hot section, 200 sections) against the
   bare Lua script; over HTTP (hot section, 5 sections per request); the rush.
4. Worker drain: rows/s into Postgres, and how long Postgres trails the rush's last answer.
   The rush again with the worker's notifier e-mailing every notice (promotions) to an SMTP
   server (bench/notify.py), against the rush with it off: the hot path must not notice.
5. Subscriptions: bench/subscribers.py (another process; its own database).
6. Import: bench/imports.py, 5,000 sections and 50,000 students from CSV files into a
   database of its own, then the same files again (its own database).

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; this machine's by default) and wrk.
The bench makes and drops its own database and Redis key prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from bench import checks, http, imports, notify, report, storage
from bench.catalog import BenchCatalog, create_catalog, rush_sizes
from bench.drain import lag, measure_drain, stop_worker, wait_drained
from bench.measure import Result, tree_cpu_seconds
from bench.naive import RowLockRegistrar, make_pool, oversold
from bench.replica import Replica, bench_settings, drop_database, prepare_database
from infrastructure.cli.heap import tune_collector
from infrastructure.container import Container
from infrastructure.settings import Settings

STUDENTS = 60_000
HOT_SEATS = 100
SPREAD = 200
HTTP_STUDENTS = 2_000
RUSH_STUDENTS = 10_000
PER_STUDENT = 5
DROP_SHARE = 0.2
ZIPF_S = 1.0


@dataclass(frozen=True)
class RushKind:
    group: str  # the catalog's sections for it; results are keyed <group>_register / _drop
    first_student: int
    title: str
    notify: bool = False  # the worker's notifier on, e-mailing to bench/notify.py's server


RUSH_WITH_RULES = RushKind("rush", RUSH_STUDENTS, " (notifier off)")
RUSH_RULE_FREE = RushKind("rush_free", 2 * RUSH_STUDENTS, " (rules off)")
RUSH_NOTIFY = RushKind("rush_notify", 3 * RUSH_STUDENTS, " (notifier on, e-mail)", notify=True)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/benchmarks", help="where the results go")
    p.add_argument("--seconds", type=float, default=8.0, help="per throughput variant")
    p.add_argument("--connections", type=int, default=200, help="wrk connections (HTTP)")
    p.add_argument("--rush-connections", type=int, default=200, help="wrk connections (rush)")
    p.add_argument("--storage-ops", type=int, default=40_000, help="calls per storage variant")
    p.add_argument("--skip-subscribers", action="store_true", help="leave out item 5")
    p.add_argument("--subscribers", type=int, default=10_000, help="item 5: held on one process")
    p.add_argument("--skip-import", action="store_true", help="leave out item 6")
    return p.parse_args()


class Progress:
    def __init__(self, steps: int) -> None:
        self.steps, self.step, self.began = steps, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.step += 1
        elapsed = time.perf_counter() - self.began
        print(f"[{self.step:2d}/{self.steps} {elapsed:6.1f}s] {message}", flush=True)

    def show(self, result: Result) -> None:
        latency = (
            "" if result.p99_ms is None else f", p50 {result.p50_ms} ms, p99 {result.p99_ms} ms"
        )
        print(
            f"          {result.key}: {result.throughput:,.0f} {result.unit}{latency}, "
            f"errors {result.errors} {result.invariants or ''}",
            flush=True,
        )


def zipf_choices(rng: random.Random, sections: list[UUID], count: int) -> list[UUID]:
    """`count` distinct sections, the n-th most popular drawn with weight 1/n^s."""
    weights = [1 / (n + 1) ** ZIPF_S for n in range(len(sections))]
    chosen: list[UUID] = []
    while len(chosen) < count:
        pick = rng.choices(sections, weights)[0]
        if pick not in chosen:
            chosen.append(pick)
    return chosen


def groups() -> dict[str, list[int]]:
    rng = random.Random(11)
    return {
        "lua_hot": [HOT_SEATS],
        "domain_hot": [HOT_SEATS],
        "domain_spread": [150] * SPREAD,
        "baseline_storage": [HOT_SEATS],
        "baseline_http": [HOT_SEATS],
        "http_hot": [HOT_SEATS],
        "http_spread": [HOT_SEATS] * SPREAD,
        "rush": rush_sizes(SPREAD, rng),
        "rush_free": rush_sizes(SPREAD, rng),
        "rush_notify": rush_sizes(SPREAD, rng),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, settings: Settings, work: Path) -> None:
        self.args, self.settings, self.work = args, settings, work
        self.results: dict[str, Result] = {}
        # 15 steps, and 3 of the rush with the notifier on (catch-up, rush, its heading)
        self.progress = Progress(18 + (not args.skip_subscribers) + (not args.skip_import))

    def add(self, result: Result) -> None:
        self.results[result.key] = result
        self.progress.show(result)

    async def run(self) -> None:
        self.progress("catalog: 1 semester, 1,406 sections, 60,000 students (COPY)")
        catalog = await create_catalog(self.settings.postgres, groups(), STUDENTS)
        tune_collector()  # as `coursereg serve` does, for the in-process variants
        container = Container.build(self.settings)
        try:
            await container.state.ensure()
            await container.warm_students()
            await self.storage(container, catalog)
            worker = await self.drain(container)
            stop_worker(worker)
            await self.after_storage(container, catalog)
            await self.over_http(container, catalog)
        finally:
            await container.close()

    async def storage(self, container: Container, catalog: BenchCatalog) -> None:
        students, seconds, ops = catalog.students, self.args.seconds, self.args.storage_ops
        self.progress("bare register.lua, EVALSHA from 200 tasks, one hot section")
        hot = catalog.sections("lua_hot")[0]
        run, self.lua_answers = await storage.bare_script(container, hot, students[:ops], seconds)
        self.add(
            run.result(
                "lua_hot",
                "Bare Lua script ceiling (EVALSHA, 200 tasks, hot section)",
                "storage",
                "calls/s",
                invariants=await checks.redis_invariants(container, [hot]),
            )
        )
        self.progress("domain Registrar.register from 200 tasks, one hot section")
        hot = catalog.sections("domain_hot")[0]
        work = ((s, [hot]) for s in students[:ops])
        run, self.domain_answers = await storage.domain_register(container, work, seconds)
        self.add(
            run.result(
                "domain_hot",
                "Domain register (200 tasks, hot section)",
                "storage",
                "calls/s",
                invariants=await checks.redis_invariants(container, [hot]),
            )
        )
        self.progress("domain Registrar.register from 200 tasks, 200 sections")
        spread = catalog.sections("domain_spread")
        work = ((s, [spread[n % SPREAD]]) for n, s in enumerate(students[:ops]))
        run, answers = await storage.domain_register(container, work, seconds)
        self.domain_answers.last.update(answers.last)
        self.add(
            run.result(
                "domain_spread",
                "Domain register (200 tasks, 200 sections)",
                "storage",
                "calls/s",
                invariants=await checks.redis_invariants(container, spread),
            )
        )
        self.progress("naive Postgres register from 200 tasks (pool of 50), one hot section")
        pool = await make_pool(self.settings.postgres)
        try:
            section = catalog.sections("baseline_storage")[0]
            run = await storage.row_lock_register(
                RowLockRegistrar(pool), section, students, seconds
            )
            self.add(
                run.result(
                    "baseline_storage",
                    "Naive Postgres register (row lock, 200 tasks, pool 50, hot section)",
                    "storage",
                    "calls/s",
                    invariants=await oversold(pool, [section]),
                )
            )
        finally:
            await pool.close()

    async def drain(self, container: Container) -> Any:
        self.progress(f"worker drain: {await lag(container):,} changes waiting, one worker")
        result, worker = await measure_drain(container, self.settings, self.work / "worker.log")
        self.add(result)
        return worker

    async def after_storage(self, container: Container, catalog: BenchCatalog) -> None:
        """Now that Postgres has caught up: drift, oversold and lost per variant."""
        for key, group, answers in (
            ("lua_hot", "lua_hot", self.lua_answers.last),
            ("domain_hot", "domain_hot", None),
            ("domain_spread", "domain_spread", None),
        ):
            sections = catalog.sections(group)
            found = await checks.postgres_invariants(container, self.settings.postgres, sections)
            picked = answers or {
                k: v for k, v in self.domain_answers.last.items() if k[1] in set(sections)
            }
            found["lost"] = await checks.lost_answers(self.settings.postgres, picked)
            self.results[key].invariants.update(found)

    async def over_http(self, container: Container, catalog: BenchCatalog) -> None:
        tokens = container.tokens
        hot_students = catalog.students[:HTTP_STUDENTS]
        hot = self.work / "hot.tsv"
        section = catalog.sections("http_hot")[0]
        http.write_requests(
            hot, tokens, ((s, http.register_body(s, [section])) for s in hot_students)
        )
        spread = self.work / "spread.tsv"
        rng = random.Random(5)
        sections = catalog.sections("http_spread")
        http.write_requests(
            spread,
            tokens,
            (
                (s, http.register_body(s, rng.sample(sections, PER_STUDENT)))
                for s in catalog.students[:RUSH_STUDENTS]
            ),
        )
        baseline = self.work / "baseline.tsv"
        section_b = catalog.sections("baseline_http")[0]
        http.write_requests(
            baseline, tokens, ((s, http.register_body(s, [section_b])) for s in hot_students)
        )
        await self.ceiling(hot, spread)
        await self.baseline_http(baseline, section_b)
        await self.product_http(container, catalog, hot, spread)

    async def load(self, server: Replica, data: Path) -> tuple[dict[str, Any], float]:
        """wrk's figures and the server's CPU seconds, after a warm-up that is not counted."""
        await http.run_wrk(server.url, data, self.args.connections, 2)
        before = tree_cpu_seconds(server.process.pid)
        figures = await http.run_wrk(server.url, data, self.args.connections, self.args.seconds)
        return figures, tree_cpu_seconds(server.process.pid) - before

    async def ceiling(self, hot: Path, spread: Path) -> None:
        self.progress("framework ceiling over HTTP: register answering a constant (wrk)")
        server = await http.start_server(self.settings, "ceiling", self.work / "ceiling.log")
        try:
            for key, data, title in (
                ("ceiling_1", hot, "Framework ceiling, HTTP, 1 section per request"),
                ("ceiling_5", spread, "Framework ceiling, HTTP, 5 sections per request"),
            ):
                figures, cpu = await self.load(server, data)
                self.add(http.wrk_result(key, title, figures, cpu))
        finally:
            server.stop()

    async def baseline_http(self, data: Path, section: UUID) -> None:
        self.progress("naive Postgres register behind the same GraphQL stack (wrk)")
        server = await http.start_server(self.settings, "baseline", self.work / "baseline.log")
        try:
            figures, cpu = await self.load(server, data)
        finally:
            server.stop()
        pool = await make_pool(self.settings.postgres, 1)
        try:
            found = await oversold(pool, [section])
        finally:
            await pool.close()
        self.add(
            http.wrk_result(
                "baseline_http",
                "Naive Postgres register, HTTP, hot section (2,000 students)",
                figures,
                cpu,
                invariants=found,
            )
        )

    async def product_http(
        self, container: Container, catalog: BenchCatalog, hot: Path, spread: Path
    ) -> None:
        self.progress("product over HTTP: hot section (2,000 students), 5 of 200 sections (wrk)")
        server = await http.start_server(self.settings, "product", self.work / "product.log")
        try:
            section = catalog.sections("http_hot")[0]
            figures, cpu = await self.load(server, hot)
            self.add(
                http.wrk_result(
                    "http_hot",
                    "Product register, HTTP, hot section (2,000 students)",
                    figures,
                    cpu,
                    invariants=await checks.redis_invariants(container, [section]),
                )
            )
            sections = catalog.sections("http_spread")
            figures, cpu = await self.load(server, spread)
            self.add(
                http.wrk_result(
                    "http_spread",
                    "Product register, HTTP, 5 of 200 sections per request (10,000 students)",
                    figures,
                    cpu,
                    invariants=await checks.redis_invariants(container, sections),
                )
            )
            await self.rush(container, catalog, server, RUSH_WITH_RULES)
            self.progress("the same rush with the worker's notifier e-mailing each notice")
            await self.rush(container, catalog, server, RUSH_NOTIFY)
        finally:
            server.stop()
        self.progress("the same rush on a server with the rules off (COURSEREG_RULES=false)")
        rule_free = await http.start_server(
            self.settings, "product", self.work / "rule-free.log", {"COURSEREG_RULES": "false"}
        )
        try:
            await self.rush(container, catalog, rule_free, RUSH_RULE_FREE)
        finally:
            rule_free.stop()

    async def rush(
        self, container: Container, catalog: BenchCatalog, server: Replica, kind: RushKind
    ) -> None:
        from bench.drain import start_worker

        self.progress("workers catch up on the HTTP runs' changes, then the rush begins")
        with notify.smtp_server(kind.notify) as mail:
            env = mail.worker_env() if mail else {"COURSEREG_NOTIFY": "false"}
            worker = start_worker(self.settings, self.work / f"worker-{kind.group}.log", env)
            try:
                await wait_drained(container)
                await notify.wait_delivered(container)
                if mail:
                    mail.reset()
                await self._rush(container, catalog, server, kind)
                if mail:
                    found = await notify.delivered(container, mail, self.settings.postgres)
                    self.results[f"{kind.group}_drop"].invariants.update(found)
                    self.results[f"{kind.group}_drop"].notes += notify.note(found)
            finally:
                stop_worker(worker)

    async def _rush(
        self, container: Container, catalog: BenchCatalog, server: Replica, kind: RushKind
    ) -> None:
        rng = random.Random(2026)
        sections = catalog.sections(kind.group)
        students = catalog.students[kind.first_student : kind.first_student + RUSH_STUDENTS]
        plans = [(s, zipf_choices(rng, sections, PER_STUDENT)) for s in students]
        rng.shuffle(plans)
        registers = self.work / f"{kind.group}-register.tsv"
        http.write_requests(
            registers, container.tokens, ((s, http.register_body(s, p)) for s, p in plans)
        )
        pairs = [(s, sec) for s, p in plans for sec in p]
        drops = rng.sample(pairs, int(len(pairs) * DROP_SHARE))
        dropping = self.work / f"{kind.group}-drop.tsv"
        http.write_requests(
            dropping, container.tokens, ((s, http.drop_body(s, sec)) for s, sec in drops)
        )
        self.progress(
            f"rush: {len(plans):,} students x {PER_STUDENT} of {SPREAD} sections (Zipf), "
            f"then {len(drops):,} drops; one worker running"
        )
        answers: dict[tuple[UUID, UUID], str] = {}
        register_key, drop_key = f"{kind.group}_register", f"{kind.group}_drop"
        for key, data, sent, title in (
            (
                register_key,
                registers,
                len(plans),
                f"Rush{kind.title}: 10,000 students register, 5 sections each",
            ),
            (drop_key, dropping, len(drops), f"Rush{kind.title}: then 20% of the places dropped"),
        ):
            log = self.work / f"{key}.bodies"
            before = tree_cpu_seconds(server.process.pid)
            figures = await http.run_wrk(
                server.url, data, self.args.rush_connections, 300, once=True, log=log
            )
            cpu = tree_cpu_seconds(server.process.pid) - before
            answered = read_answers(log, answers)
            result = http.wrk_result(key, title, figures, cpu, layer="rush")
            result.invariants = {"sent": sent, "unanswered": sent - answered}
            self.add(result)
        catch_up = await wait_drained(container)
        found: dict[str, float] = dict(await checks.redis_invariants(container, sections))
        found.update(await checks.postgres_invariants(container, self.settings.postgres, sections))
        found["lost"] = await checks.lost_answers(self.settings.postgres, answers)
        found["postgres_caught_up_s"] = round(catch_up, 3)
        self.results[drop_key].invariants.update(found)
        self.results[register_key].invariants.update(
            {k: v for k, v in found.items() if k != "postgres_caught_up_s"}
        )
        self.results[drop_key].notes = (
            f"one `coursereg worker` ran during the rush; Postgres had caught up "
            f"{catch_up:.2f} s after the last answer"
        )


def read_answers(log: Path, answers: dict[tuple[UUID, UUID], str]) -> int:
    """The response bodies wrk logged: each answer per (student, section); the count."""
    count = 0
    for path in log.parent.glob(log.name + ".*"):
        for line in path.read_text().splitlines():
            count += 1
            data = json.loads(line).get("data") or {}
            if data.get("register"):
                student = UUID(data["register"]["studentId"])
                for r in data["register"]["results"]:
                    if r["outcome"] in ("ENROLLED", "WAITLISTED"):
                        answers[(student, UUID(r["sectionId"]))] = r["outcome"]
            elif data.get("drop"):
                d = data["drop"]
                if d["outcome"] in ("DROPPED", "LEFT_WAITLIST"):
                    answers[(UUID(d["studentId"]), UUID(d["sectionId"]))] = d["outcome"]
    return count


def subscribers(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Item 5: bench/subscribers.py, as `make bench-subscribers` runs it (10 s of changes
    instead of 20, to stay within the bench's 10 minutes)."""
    path = out / "subscribers.json"
    command = [
        sys.executable,
        "-m",
        "bench.subscribers",
        "--subscribers",
        str(args.subscribers),
        "--duration",
        "10",
        "--out",
        str(path),
    ]
    subprocess.run(command, check=True)
    return dict(json.loads(path.read_text()))


def main() -> None:
    args = parse()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    settings = bench_settings()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    data: dict[str, Any] = {
        "started": started,
        "command": "make bench",
        "machine": report.machine(),
        "versions": report.versions(),
    }
    asyncio.run(prepare_database(settings))
    with tempfile.TemporaryDirectory(prefix="coursereg-bench-") as tmp:
        bench = Bench(args, settings, Path(tmp))
        try:
            asyncio.run(bench.run())  # the event loop `coursereg serve` runs on
        finally:
            asyncio.run(drop_database(settings))
        if not args.skip_subscribers:
            bench.progress("subscriptions: bench/subscribers.py (own database and servers)")
            data["subscriptions"] = subscribers(args, Path(tmp))
        if not args.skip_import:
            bench.progress("import: 5,000 sections and 50,000 students from CSV (own database)")
            for result in asyncio.run(imports.measure_fresh(Path(tmp))):
                bench.add(result)
    results = list(bench.results.values())
    data["load_after"] = list(os.getloadavg())
    data["ratios"] = report.ratios(bench.results)
    out = Path(args.out)
    report.write(out, data, results)
    bench.progress(f"written: {out}/results.json, results.md, results.png")
    for row in data["ratios"]:
        print(f"  {'met' if row['met'] else 'NOT met'}: {row['target']}: {row['ratio']}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
