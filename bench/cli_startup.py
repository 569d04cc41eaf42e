"""Start-up time of `warroom --help` against `python -c pass` measured in the same run.

.venv/bin/python bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(cmd: list[str], runs: int) -> list[float]:
    times = []
    subprocess.run(cmd, capture_output=True, check=True)  # warm the page cache
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    warroom = str(Path(sys.executable).parent / "warroom")
    base = measure([sys.executable, "-c", "pass"], args.runs)
    cli = measure([warroom, "--help"], args.runs)
    sub = measure([warroom, "runbook", "--help"], args.runs)
    b = statistics.median(base)
    for name, times in (
        ("python -c pass", base),
        ("warroom --help", cli),
        ("warroom runbook --help", sub),
    ):
        med = statistics.median(times)
        print(
            f"{name:24s} median {med * 1000:7.1f} ms  min {min(times) * 1000:7.1f} ms  "
            f"x{med / b:5.1f} baseline"
        )


if __name__ == "__main__":
    main()
