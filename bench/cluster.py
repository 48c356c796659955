"""`make bench-cluster`: the rush of `make bench` (10,000 students register for 5 of 200
sections each, Zipf, rules on) on one Redis server and on a Redis Cluster of three primaries,
each private to the run, with one and with two `coursereg serve` processes. Each run reports
throughput and latency (wrk) and the CPU the API processes and the Redis servers used, to
show what bounds the throughput. Writes docs/benchmarks/cluster.{json,md}.

Needs PostgreSQL (DATABASE_URL, this machine's by default), redis-server, redis-cli and wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from bench import checks, http, report
from bench.catalog import create_catalog, rush_sizes
from bench.drain import start_worker, stop_worker, wait_drained
from bench.measure import tree_cpu_seconds
from bench.replica import bench_settings, drop_database, prepare_database
from bench.run import PER_STUDENT, RUSH_STUDENTS, SPREAD, read_answers, zipf_choices
from infrastructure.container import Container
from infrastructure.settings import Settings
from tests.redis_cluster import RedisClusterNodes, redis_cluster, redis_single

API_COUNTS = (1, 2)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.cluster", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/benchmarks", help="where the results go")
    p.add_argument("--connections", type=int, default=200, help="wrk connections in all")
    return p.parse_args()


@contextmanager
def redis_of(target: str) -> Iterator[RedisClusterNodes]:
    with redis_cluster(3) if target == "cluster" else redis_single() as nodes:
        yield nodes


async def redis_cpu(nodes: RedisClusterNodes) -> float:
    """CPU seconds (user + system) the servers have used, from INFO cpu."""
    total = 0.0
    for port in nodes.ports:
        async with Redis(port=port) as node:
            cpu = await node.info("cpu")
            total += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return total


def combine(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """wrk's figures of the replicas' runs (at the same time) as one: the sums, the longest
    run, and the slower replica's latency percentiles."""
    combined = dict(figures[0])
    for name in ("requests", "socket_errors", "timeouts"):
        combined[name] = sum(f[name] for f in figures)
    combined["seconds"] = max(f["seconds"] for f in figures)
    for name in ("p50_us", "p95_us", "p99_us", "max_us"):
        combined[name] = max(f[name] for f in figures)
    for name in ("errors", "outcomes"):
        merged: dict[str, int] = {}
        for f in figures:
            for key, value in f[name].items():
                merged[key] = merged.get(key, 0) + value
        combined[name] = merged
    return combined


async def rush(
    settings: Settings,
    container: Container,
    nodes: RedisClusterNodes,
    sections: list[UUID],
    students: list[UUID],
    apis: int,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    rng = random.Random(2026)
    plans = [(s, zipf_choices(rng, sections, PER_STUDENT)) for s in students]
    data = [work / f"rush-{apis}-{n}.tsv" for n in range(apis)]
    for n, path in enumerate(data):
        share = plans[n::apis]
        bodies = ((s, http.register_body(s, p)) for s, p in share)
        http.write_requests(path, container.tokens, bodies)
    servers = [
        await http.start_server(settings, "product", work / f"api-{apis}-{n}.log")
        for n in range(apis)
    ]
    try:
        api_before = sum(tree_cpu_seconds(s.process.pid) for s in servers)
        redis_before, started = await redis_cpu(nodes), time.perf_counter()
        logs = [work / f"rush-{apis}-{n}.bodies" for n in range(apis)]
        figures = await asyncio.gather(
            *(
                http.run_wrk(s.url, d, args.connections // apis, 300, once=True, log=log)
                for s, d, log in zip(servers, data, logs, strict=True)
            )
        )
        wall = time.perf_counter() - started
        api_cpu = sum(tree_cpu_seconds(s.process.pid) for s in servers) - api_before
        redis_used = await redis_cpu(nodes) - redis_before
    finally:
        for server in servers:
            server.stop()
    answers: dict[tuple[UUID, UUID], str] = {}
    answered = sum(read_answers(log, answers) for log in logs)
    found = await checks.redis_invariants(container, sections)
    await wait_drained(container)
    found.update(await checks.postgres_invariants(container, settings.postgres, sections))
    found["lost"] = await checks.lost_answers(settings.postgres, answers)
    found["unanswered"] = len(plans) - answered
    total = combine(list(figures))
    result = http.wrk_result(f"rush_{apis}", "", total, api_cpu, layer="rush").as_dict()
    result.update(
        api_processes=apis,
        api_cpu_cores=round(api_cpu / wall, 2),
        redis_cpu_cores=round(redis_used / wall, 3),
        redis_cpu_us_per_request=round(redis_used * 1e6 / total["requests"], 1),
        invariants=found,
    )
    return result


async def target_runs(target: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """The rush with each count of API processes, on a private Redis of this kind."""
    rng = random.Random(11)
    groups = {f"rush_{n}": rush_sizes(SPREAD, rng) for n in API_COUNTS}
    results = []
    with redis_of(target) as nodes:
        settings = bench_settings().model_copy(update={"redis_url": nodes.url})
        await prepare_database(settings)
        try:
            catalog = await create_catalog(
                settings.postgres, groups, RUSH_STUDENTS * len(API_COUNTS)
            )
            container = await Container.open(settings)
            worker = start_worker(settings, work / f"worker-{target}.log")
            try:
                await container.state.ensure()
                for n, apis in enumerate(API_COUNTS):
                    students = catalog.students[n * RUSH_STUDENTS : (n + 1) * RUSH_STUDENTS]
                    sections = catalog.sections(f"rush_{apis}")
                    run = await rush(
                        settings, container, nodes, sections, students, apis, args, work
                    )
                    run.update(redis=target, redis_nodes=len(nodes.ports))
                    print(line(run), flush=True)
                    results.append(run)
            finally:
                stop_worker(worker)
                await container.close()
        finally:
            await drop_database(settings)
    return results


def line(run: dict[str, Any]) -> str:
    return (
        f"{run['redis_nodes']} Redis node(s), {run['api_processes']} API process(es): "
        f"{run['throughput']:,.0f} req/s, p50 {run['p50_ms']:.0f} ms, p99 {run['p99_ms']:.0f} ms; "
        f"API CPU {run['api_cpu_cores']} cores, Redis CPU {run['redis_cpu_cores']} cores "
        f"({run['redis_cpu_us_per_request']} us/request); errors {run['errors']}, "
        f"unanswered {run['invariants']['unanswered']}, oversold {run['invariants']['oversold']}"
        f", lost {run['invariants']['lost']}"
    )


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    rows = [
        "# Redis Cluster vs one Redis server: the rush",
        "",
        f"Run {data['started']} with `make bench-cluster` on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB; {data['versions']['redis']}.",
        "Load average before the run: "
        + ", ".join(f"{x:.2f}" for x in data["load_before"])
        + f" (after: {', '.join(f'{x:.2f}' for x in data['load_after'])}).",
        "",
        "10,000 students register for 5 of 200 sections each (Zipf, rules on) through wrk "
        f"({data['connections']} connections in all, split over the API processes); one "
        "`coursereg worker` persists meanwhile. The Redis servers are private to the run.",
        "",
        "| Redis | API processes | req/s | p50 ms | p99 ms | API CPU (cores) | "
        "Redis CPU (cores) | Redis CPU per request | errors | unanswered | oversold | lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["runs"]:
        inv = r["invariants"]
        redis = "1 server" if r["redis"] == "single" else f"cluster of {r['redis_nodes']}"
        rows.append(
            f"| {redis} | {r['api_processes']} | {r['throughput']:,.0f} | {r['p50_ms']:.0f} | "
            f"{r['p99_ms']:.0f} | {r['api_cpu_cores']} | {r['redis_cpu_cores']} | "
            f"{r['redis_cpu_us_per_request']} us | {r['errors']} | {inv['unanswered']} | "
            f"{inv['oversold'] + inv['oversold_postgres']} | {inv['lost']} |"
        )
    return "\n".join(rows) + "\n"


async def main_async(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    runs = []
    for target in ("single", "cluster"):
        runs += await target_runs(target, args, work)
    return runs


def main() -> None:
    args = parse()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    data: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench-cluster",
        "machine": report.machine(),
        "versions": report.versions(),
        "connections": args.connections,
        "load_before": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory(prefix="coursereg-bench-cluster-") as tmp:
        data["runs"] = asyncio.run(main_async(args, Path(tmp)))
    data["load_after"] = list(os.getloadavg())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "cluster.md").write_text(markdown(data))
    print(f"written: {out}/cluster.json, cluster.md")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
