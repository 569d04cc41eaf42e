"""Per-step overhead of the runbook executor: 100 trivial shell steps vs 100 plain subprocesses.

The executor's cost per step is what it adds around the process: rendering,
process-group handling, streaming through the redactor, and committing a
step record to the database (SQLite here, the embedded default).

    .venv/bin/python bench/runbook_overhead.py [--steps 100]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from warroom.bootstrap import build_runtime
from warroom.config.schema import Config
from warroom.runbooks.executor import BASH, execute
from warroom.runbooks.loader import load_file
from warroom.settings import Settings
from warroom.store.migrate import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    n = args.steps
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        body = "".join(f"```bash {{id=s{i}}}\necho step {i}\n```\n" for i in range(n))
        path = folder / "bench.md"
        path.write_text(f"---\nid: bench\ntitle: bench\n---\n## Investigate\n{body}")
        rb = load_file(path)
        settings = Settings(
            database_url=f"sqlite:///{folder / 'bench.db'}", config_path=folder / "none.yaml"
        )
        rt = build_runtime(settings, config=Config(), require_key=False)
        upgrade(rt.db)

        t0 = time.perf_counter()
        for i in range(n):
            subprocess.run(
                [BASH, "-euo", "pipefail", "-c", f"echo step {i}"], capture_output=True, check=True
            )
        plain = time.perf_counter() - t0

        t0 = time.perf_counter()
        run = execute(rt, rb, params={}, actor="bench")
        executor = time.perf_counter() - t0
        assert run.outcome == "succeeded"
        rt.db.dispose()

    per_plain = plain / n * 1000
    per_exec = executor / n * 1000
    print(f"{n} plain subprocesses (bash -c):  {plain:6.2f} s  {per_plain:6.2f} ms/step")
    print(f"{n} runbook shell steps:          {executor:6.2f} s  {per_exec:6.2f} ms/step")
    print(
        f"overhead per step: {per_exec - per_plain:+.2f} ms  (x{executor / plain:.2f} the baseline)"
    )


if __name__ == "__main__":
    main()
