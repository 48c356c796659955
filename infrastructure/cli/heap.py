"""The garbage collector's settings for an API process.

An API process holding 10,000 subscriptions tracks about 3.5 million objects (some 350 per
websocket: its tasks, coroutines and GraphQL execution state). With CPython's default
thresholds (700, 10, 10) the short-lived objects of each push burst outlive a young
collection, reach the old generation and soon trigger a full collection: on the bench
(bench/subscribers.py) one every 10-20 s, each stalling every push and request for ~2 s.
A young generation of 50,000 lets them die young instead; full collections become rare.
"""

from __future__ import annotations

import gc

YOUNG, MIDDLE, OLD = 50_000, 20, 100


def tune_collector() -> None:
    """Call once, before serving: what startup made lives as long as the process."""
    gc.freeze()  # keep the modules, schema and pools out of every later collection
    gc.set_threshold(YOUNG, MIDDLE, OLD)
