"""The bench's output under docs/benchmarks/: results.json (every figure, the machine, the
ratios against the targets), results.md (the tables) and results.png (throughput and
latency percentiles per variant)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.measure import Result

# (name, numerator key, denominator key, at least): throughput ratios from the same run.
RATIO_TARGETS = (
    ("storage, hot section: domain / row-lock baseline", "domain_hot", "baseline_storage", 10.0),
    ("storage, hot section: domain / bare Lua script", "domain_hot", "lua_hot", 0.6),
    ("HTTP, 1 section: product / framework ceiling", "http_hot", "ceiling_1", 0.8),
    ("HTTP, 5 sections: product / framework ceiling", "http_spread", "ceiling_5", 0.8),
    ("HTTP, hot section: product / row-lock baseline", "http_hot", "baseline_http", 3.0),
    # Issue #9: the registration rules cost under 25% of the rush's throughput.
    (
        "rush: every rule on / rules off (COURSEREG_RULES=false)",
        "rush_register",
        "rush_free_register",
        0.75,
    ),
    # Issue #16: notifications cost the hot path nothing (the worker's notifier e-mails).
    (
        "rush: notifier on, e-mailing / notifier off",
        "rush_notify_register",
        "rush_register",
        0.9,
    ),
)
RUSH_P99_MS = 1000.0
OVERLOAD_P99_MS = 1000.0  # issue 17: the admitted requests' p99 under 3x overload
REFUSAL_MS = 50.0  # ... and every refusal answered within this
DRAIN_ROWS = 10_000.0


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = 0
    try:
        with open("/proc/meminfo") as info:
            memory = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }


def versions() -> dict[str, str]:
    found = {}
    for name, command in (
        ("redis", ["redis-server", "--version"]),
        ("postgres", ["psql", "--version"]),
        ("wrk", ["wrk", "--version"]),
    ):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=5)
            found[name] = (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            found[name] = "unknown"
    return found


def ratios(results: dict[str, Result]) -> list[dict[str, Any]]:
    rows = []
    for name, top, bottom, target in RATIO_TARGETS:
        if top in results and bottom in results and results[bottom].throughput:
            value = results[top].throughput / results[bottom].throughput
            row = {
                "target": name,
                "ratio": round(value, 2),
                "at_least": target,
                "met": value >= target,
            }
            cpu_top, cpu_bottom = results[top].cpu_ms_per_op, results[bottom].cpu_ms_per_op
            if cpu_top and cpu_bottom:  # the same ratio from CPU cost per operation
                row["cpu_ratio"] = round(cpu_bottom / cpu_top, 2)
            rows.append(row)
    rush = [r for k, r in results.items() if k.startswith("rush")]
    if rush:
        worst = max(r.p99_ms or 0.0 for r in rush)
        answered = all(r.invariants.get("unanswered", 1) == 0 for r in rush)
        clean = all(r.errors == 0 for r in rush)
        oversold = sum(int(r.invariants.get("oversold", 0)) for r in rush)
        rows.append(
            {
                "target": "rush: p99 < 1 s, every request answered, nothing oversold",
                "ratio": worst,
                "at_most": RUSH_P99_MS,
                "met": worst < RUSH_P99_MS and answered and clean and oversold == 0,
            }
        )
    overload = results.get("overload")
    if overload is not None:
        found = overload.invariants
        p99 = overload.p99_ms or 0.0
        rows.append(
            {
                "target": "overload at 3x capacity, open loop: admitted p99 < 1 s, every "
                "refusal < 50 ms, no time-outs, 0 lost, 0 oversold, no refusal changed state",
                "ratio": p99,
                "at_most": OVERLOAD_P99_MS,
                "met": p99 < OVERLOAD_P99_MS
                and found.get("refusal_max_ms", 0) < REFUSAL_MS
                and found.get("timeouts", 1) == 0
                and found.get("lost", 1) == 0
                and found.get("oversold", 1) == 0
                and found.get("oversold_postgres", 1) == 0
                and found.get("refused_changed", 1) == 0,
            }
        )
    if "drain" in results:
        value = results["drain"].throughput
        rows.append(
            {
                "target": "drain >= 10,000 rows/s (batched, one transaction per batch)",
                "ratio": value,
                "at_least": DRAIN_ROWS,
                "met": value >= DRAIN_ROWS,
            }
        )
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _invariants(result: Result) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.invariants.items()) or "-"


def markdown(data: dict[str, Any], results: list[Result]) -> str:
    m = data["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {data['started']} with `{data['command']}` on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB, Linux {m['kernel']}, Python {m['python']}; "
        f"{data['versions']['redis']}; {data['versions']['postgres']}; {data['versions']['wrk']}.",
        f"Load average before the run: {', '.join(f'{x:.2f}' for x in m['load_average'])} "
        f"(after: {', '.join(f'{x:.2f}' for x in data['load_after'])}). The machine is shared: "
        "other work may have run at the same time.",
        "",
        "| variant | throughput | p50 ms | p95 ms | p99 ms | CPU ms/op | errors | outcomes "
        "| invariants |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())) or "-"
        cpu = "-" if r.cpu_ms_per_op is None else f"{r.cpu_ms_per_op:.3f}"
        lines.append(
            f"| {r.title} | {r.throughput:,.0f} {r.unit} | {_ms(r.p50_ms)} | {_ms(r.p95_ms)} | "
            f"{_ms(r.p99_ms)} | {cpu} | {r.errors} | {outcomes} | {_invariants(r)} |"
        )
    lines += [
        "",
        "## Targets",
        "",
        "Throughput ratios decide; the CPU column gives the same ratio from CPU time per "
        "operation (the denominator's over the numerator's), which other load on the machine "
        "disturbs less.",
        "",
        "| target | measured | by CPU per op | target | met |",
        "|---|---:|---:|---:|---|",
    ]
    for row in data["ratios"]:
        bound = f">= {row['at_least']:g}" if "at_least" in row else f"< {row['at_most']:g} ms"
        cpu = f"{row['cpu_ratio']:.2f}" if "cpu_ratio" in row else "-"
        met = "yes" if row["met"] else "no"
        lines.append(f"| {row['target']} | {row['ratio']:,.2f} | {cpu} | {bound} | {met} |")
    lines += ["", "## Notes", ""]
    lines += [f"- **{r.title}**: {r.notes}" for r in results if r.notes]
    if data.get("subscriptions"):
        lines += ["", "## Subscriptions (bench/subscribers.py)", "", "```json"]
        lines += [json.dumps(data["subscriptions"], indent=2), "```"]
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.p50_ms is not None]
    names = [r.key for r in shown]
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 0.45 * len(names) + 2))
    left.barh(names, [r.throughput for r in shown], color="#4c72b0")
    left.set_xlabel("throughput (operations or requests per second)")
    left.invert_yaxis()
    for y, r in enumerate(shown):
        left.text(r.throughput, y, f" {r.throughput:,.0f}", va="center", fontsize=8)
    height = 0.27
    for n, (label, attr) in enumerate((("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))):
        right.barh(
            [y + (n - 1) * height for y in range(len(shown))],
            [getattr(r, attr) or 0 for r in shown],
            height=height,
            label=label,
        )
    right.set_yticks(range(len(shown)), names)
    right.invert_yaxis()
    right.set_xscale("log")
    right.set_xlabel("latency, ms (log scale)")
    right.legend()
    figure.suptitle("coursereg make bench: throughput and latency per variant")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(out: Path, data: dict[str, Any], results: list[Result]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {**data, "results": [r.as_dict() for r in results]}
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "results.md").write_text(markdown(data, results))
    plot(results, out / "results.png")
