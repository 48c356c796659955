"""How the explorer runs, from the environment (make explore sets them): the fixed seeds of
`make test`, a seed to replay, how long to run fresh seeds and to shrink a failure, and
the kinds of violation to look past while their fix has not landed (none by default)."""

from __future__ import annotations

import os

# Seeds that found a race (each fixed since, docs/holdings.md), then three more.
FOUND: tuple[int, ...] = (
    192418350,
    795431107,
    401327052,
    351351329,
    445716551,
    122172537,
    181284475,
)
FOUND += (303065140, 75792956, 967597940, 646818132, 383435086, 222172943, 930942334)
FIXED_SEEDS = (*FOUND, *range(1, 4))
SEED = int(os.environ["EXPLORE_SEED"]) if os.environ.get("EXPLORE_SEED") else None
SECONDS = float(os.environ.get("EXPLORE_SECONDS") or 0)
SHRINK_SECONDS = float(os.environ.get("EXPLORE_SHRINK_SECONDS") or 60)
TOLERATE = frozenset(k for k in os.environ.get("EXPLORE_TOLERATE", "").split(",") if k)
