"""What every variant of `make bench` reports, and the closed-loop runner of the in-process
variants: `concurrency` tasks take work items from one iterator until it runs out or time
is up, timing each call."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict, TypeVar

T = TypeVar("T")


@dataclass
class Result:
    """One row of the results table."""

    key: str
    title: str
    layer: str  # "storage", "http", "rush", "drain"
    throughput: float  # operations (requests, script calls, rows) per second
    unit: str
    count: int
    seconds: float
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    # CPU time of the process(es) doing the work, per operation: robust to a shared machine
    # (throughput is not), so the table shows it too.
    cpu_ms_per_op: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    invariants: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


class Latency(TypedDict):
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def latency_fields(seconds: list[float]) -> Latency:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p95_ms": round(percentile(ordered, 0.95) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else float("nan"),
    }


@dataclass
class Run:
    """What a closed-loop run saw: per-call latencies, outcomes and errors."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return len(self.latencies)

    def result(self, key: str, title: str, layer: str, unit: str, **extra: Any) -> Result:
        return Result(
            key=key,
            title=title,
            layer=layer,
            throughput=round(self.count / self.seconds, 1) if self.seconds else 0.0,
            unit=unit,
            count=self.count,
            seconds=round(self.seconds, 3),
            errors=sum(self.errors.values()),
            cpu_ms_per_op=round(self.cpu_seconds * 1000 / self.count, 4) if self.count else None,
            outcomes=dict(self.outcomes),
            **latency_fields(self.latencies),
            **extra,
        )


async def closed_loop(
    call: Callable[[T], Awaitable[Iterable[str]]],
    items: Iterator[T],
    concurrency: int = 200,
    max_seconds: float = 10.0,
) -> Run:
    """`concurrency` tasks call `call(item)` back to back; each call returns the outcomes
    it saw (one per section). An exception counts as an error, named by its type."""
    run = Run()
    deadline = time.perf_counter() + max_seconds
    clock = time.perf_counter

    async def task() -> None:
        for item in items:
            started = clock()
            try:
                outcomes = await call(item)
            except Exception as exc:  # a variant's refusal or failure is a counted result
                run.errors[type(exc).__name__] += 1
                outcomes = ()
            finished = clock()
            run.latencies.append(finished - started)
            run.outcomes.update(outcomes)
            if finished > deadline:
                return

    began, cpu = clock(), time.process_time()
    await asyncio.gather(*(task() for _ in range(concurrency)))
    run.seconds = clock() - began
    run.cpu_seconds = time.process_time() - cpu
    return run
