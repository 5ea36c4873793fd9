#!/usr/bin/env bash
# `hftnet replay` against itch-book (PyPI `itch-book`, C++23 core) on the
# same generated ITCH 5.0 day, as whole processes, interleaved: each round
# runs itch-book, then hftnet (then a baseline hftnet binary, if given).
# hftnet runs as it does by default (two threads where two CPUs may be
# used) and, as "hftnet-1thread", with --threads 1.
# Prints every run (wall time, CPU time = user + sys, the program's own
# timer) and the medians, and the median ratios: itch-book's time over
# hftnet's = hftnet's throughput in multiples of itch-book's (the goal is
# >= 3x on whole-process wall time).
#
# The day is made if missing (`hftnet exchange --write`), itch-book is
# installed in a venv beside it. Both live outside the repository.
#
# Usage: scripts/bench-replay.sh [RUNS]            (default 3)
# Env:   REPLAY_DIR   where the day and the venv go (default /tmp/hftnet-bench-replay)
#        MESSAGES     messages of the day (default 5000000), SYMBOLS (default 500)
#        HFTNET       the hftnet binary (default: built here, target/release/hftnet)
#        HFTNET_BASE  another hftnet binary to time alongside (e.g. main's), optional
#        REPLAY_ARGS  extra arguments for hftnet replay (e.g. "--check=full")
#        BLAS_THREADS OPENBLAS_NUM_THREADS for itch-book's process (default 1:
#                     the replay does no linear algebra, and numpy's idle BLAS
#                     threads otherwise spin beside it on a small machine;
#                     "default" leaves numpy's own choice)
set -euo pipefail

RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DIR=${REPLAY_DIR:-/tmp/hftnet-bench-replay}
MESSAGES=${MESSAGES:-5000000}
SYMBOLS=${SYMBOLS:-500}
DAY="$DIR/day-$MESSAGES-$SYMBOLS.itch"
VENV="$DIR/venv"
mkdir -p "$DIR"

if [[ -z "${HFTNET:-}" ]]; then
  (cd "$HERE" && cargo build --release -q -p hftnet)
  HFTNET="$HERE/target/release/hftnet"
fi

if [[ ! -s "$DAY" ]]; then
  echo "# making $DAY ($MESSAGES messages, $SYMBOLS symbols)" >&2
  "$HFTNET" exchange --write "$DAY.part" --messages "$MESSAGES" --symbols "$SYMBOLS" >/dev/null
  mv "$DAY.part" "$DAY"
fi

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import itch_book' 2>/dev/null; then
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      apt-get install -y -q python3-venv >/dev/null
      python3 -m venv "$VENV"
    else
      echo "bench-replay: python3 -m venv failed; install python3-venv" >&2
      exit 2
    fi
  fi
  "$VENV/bin/pip" install -q itch-book
fi

python3 - "$RUNS" "$DAY" "$HFTNET" "${HFTNET_BASE:-}" "$VENV/bin/python" \
  "$HERE/scripts/itch_book_replay.py" "${REPLAY_ARGS:-}" "${BLAS_THREADS:-1}" <<'PY'
import json, os, platform, resource, shlex, statistics, subprocess, sys, time

runs, day, hftnet, base, py, ib_script, extra, blas = sys.argv[1:9]
runs = int(runs)
ib_env = dict(os.environ)
if blas != "default":
    ib_env["OPENBLAS_NUM_THREADS"] = blas

def timed(cmd, env=None):
    """Wall and CPU (user + sys) time of one whole process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        sys.exit(f"bench-replay: {cmd[0]} exited {p.returncode}: {p.stderr.strip()}")
    return wall, cpu, json.loads(p.stdout.strip().splitlines()[-1])

contenders = [("itch-book", [py, ib_script, day])]
contenders.append(("hftnet", [hftnet, "replay", day, "--json", *shlex.split(extra)]))
# The same binary on one thread: what the second thread brings, side by side.
if "--threads" not in extra:
    contenders.append(("hftnet-1thread", [hftnet, "replay", day, "--json", "--threads", "1",
                                          *shlex.split(extra)]))
if base:
    contenders.append(("hftnet-base", [base, "replay", day, "--json"]))

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

versions = subprocess.run(
    [py, "-c", "import importlib.metadata as m, platform\n"
     "def v(p):\n"
     "    try:\n"
     "        return m.version(p)\n"
     "    except m.PackageNotFoundError:\n"
     "        return 'missing'\n"
     "print('itch-book', v('itch-book'), 'numpy', v('numpy'), 'python', platform.python_version())"],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout.strip() or "unknown"
print(f"# file: {day} ({os.path.getsize(day)} bytes)")
print(f"# host: {cpu_model()}, {os.cpu_count()} cpus, kernel {platform.release()}")
print(f"# itch-book side: {versions}; OPENBLAS_NUM_THREADS="
      f"{ib_env.get('OPENBLAS_NUM_THREADS', '(numpy default)')}")
print(f"# hftnet: {hftnet} replay {extra}".rstrip())
if base:
    print(f"# hftnet-base: {base}")
print(f"# load average at start: {os.getloadavg()}")
print(f"# {runs} rounds, interleaved: " + ", ".join(n for n, _ in contenders))
# The file into the page cache first: a cold first round would charge its
# disk reads to whichever contender runs first.
with open(day, "rb") as f:
    while f.read(1 << 22):
        pass
res = {n: [] for n, _ in contenders}
messages = {}
for r in range(runs):
    for name, cmd in contenders:
        wall, cpu, out = timed(cmd, ib_env if name == "itch-book" else None)
        own = out["seconds"]
        messages[name] = out["messages"]
        res[name].append((wall, cpu, own))
        print(f"round {r + 1} {name:14} wall {wall:7.3f} s  cpu {cpu:7.3f} s  own timer {own:7.3f} s  "
              f"({out['messages']} messages)")
if len(set(messages.values())) != 1:
    sys.exit(f"bench-replay: the contenders counted different messages: {messages}")
print(f"# load average at end: {os.getloadavg()}")
med = {n: [statistics.median(x[i] for x in v) for i in range(3)] for n, v in res.items()}
for n, (w, c, o) in med.items():
    n_msgs = messages[n]
    print(f"median {n:14} wall {w:7.3f} s  cpu {c:7.3f} s  own timer {o:7.3f} s  "
          f"= {n_msgs / w / 1e6:6.2f} M msg/s whole process")
ib = med["itch-book"]
for n in med:
    if n == "itch-book":
        continue
    h = med[n]
    # Each round's own ratio (its contenders ran back to back): the spread.
    per_round = [i[0] / x[0] for i, x in zip(res["itch-book"], res[n])]
    print(f"ratio {n} vs itch-book (itch-book time / {n} time): wall {ib[0] / h[0]:.2f}x  "
          f"cpu {ib[1] / h[1]:.2f}x  own timers {ib[2] / h[2]:.2f}x  "
          f"(wall, round by round: {min(per_round):.2f}x to {max(per_round):.2f}x)")
w = ib[0] / med["hftnet"][0]
print(f"goal: hftnet whole-process wall >= 3x itch-book's: {w:.2f}x, "
      + ("met" if w >= 3 else "NOT met"))
PY
