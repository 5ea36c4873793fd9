#!/usr/bin/env python3
"""Replays an ITCH 5.0 file through itch-book (PyPI `itch-book`) the way its
README measures it: `ib.open(path, date=...)`, then every batch of
`feed.batches(tables=(), rows=10_000_000)`. Prints one JSON line with the
in-Python time (from before `ib.open` to the end of the iteration) and the
messages itch-book counted. Used by scripts/bench-replay.sh."""

import datetime as dt
import json
import sys
import time

t0 = time.perf_counter()
import itch_book as ib  # noqa: E402  (the import is part of the process, not of the timer)

if len(sys.argv) != 2:
    sys.exit("usage: itch_book_replay.py FILE")
path = sys.argv[1]
start = time.perf_counter()
feed = ib.open(path, date=dt.date(2024, 1, 2))
batches = 0
for _ in feed.batches(tables=(), rows=10_000_000):
    batches += 1
secs = time.perf_counter() - start
stats = feed.stats or {}
print(json.dumps({
    "seconds": secs,
    "import_seconds": start - t0,
    "batches": batches,
    "messages": stats.get("messages"),
    "stats": {k: v for k, v in stats.items() if isinstance(v, (int, float, str))},
}))
