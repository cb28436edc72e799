"""What idling costs the next piece of work on this machine: a fixed pure-Python workload (a JSON
round trip of 40 small records, ~50 µs) timed right after a pause, as a ratio to the same work
run back to back, in the same run.

    python bench/idle_penalty.py [--calls 400] [--pauses 0.5 1 2 4 8]

Each pause is taken twice: sleeping (the process idles, as a server waiting for its next
request) and spinning on the clock (the process keeps its CPU). A ratio well above 1 after a
pause, even a spinning one, means the work itself runs slower once a few milliseconds have
passed (caches, TLBs and branch predictors taken over by other work on the host), not that
waking up is slow. Every request a server answers comes after such a pause; a benchmark
that drives an application back to back in process does not see it (docs/benchmarks.md,
"Streaming, fifth pass"). Nothing of Lufy is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

_DATA = [{"id": str(uuid.uuid4()), "n": i, "tags": ["a", "b", str(i)]} for i in range(40)]


def _work() -> int:
    decoded = json.loads(json.dumps(_DATA))
    return sum(len(item["id"]) for item in decoded) + len({item["n"]: item for item in decoded})


def _median(calls: int, pause: float, spin: bool) -> float:
    times = []
    for _ in range(calls):
        if pause and spin:
            until = time.perf_counter() + pause
            while time.perf_counter() < until:
                pass
        elif pause:
            time.sleep(pause)
        started = time.perf_counter()
        _work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(calls: int, pauses: list[float]) -> None:
    print(f"load average {os.getloadavg()[0]:.2f}")
    _median(calls, 0.0, spin=False)  # warm-up
    for pause in pauses:
        # The baseline next to each measurement, so drift in the load falls on both.
        hot = _median(calls, 0.0, spin=False)
        slept = _median(calls, pause / 1000, spin=False)
        spun = _median(calls, pause / 1000, spin=True)
        print(
            f"after {pause:g} ms: slept {slept * 1e6:.1f} µs (ratio {slept / hot:.2f}), "
            f"spun {spun * 1e6:.1f} µs (ratio {spun / hot:.2f}); back to back {hot * 1e6:.1f} µs"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--pauses", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    args = parser.parse_args()
    main(args.calls, args.pauses)
