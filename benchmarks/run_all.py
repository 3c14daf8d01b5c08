"""Run every benchmark script of this folder in turn: ``python benchmarks/run_all.py [--quick]``.

Each ``bench_*.py`` times dlnotes against its reference in the same run, prints the ratios
and writes ``benchmarks/results/<topic>-<device>.json``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print("no benchmark scripts found")
        return 1
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    failed = []
    for script in scripts:
        print(f"=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script), *argv], env=env).returncode != 0:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
