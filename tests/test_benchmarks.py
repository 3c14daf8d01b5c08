"""Every benchmark script still runs: ``--quick`` measures ours against the reference, prints a
ratio, and leaves the recorded results (written only by full runs or ``--write``) untouched."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))


def _recorded() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (BENCHMARKS / "results").glob("*.json")}


def test_there_are_benchmarks():
    assert SCRIPTS, "benchmarks/ holds no bench_*.py script"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_quick_run_prints_a_ratio_and_writes_nothing(script):
    before = _recorded()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True,
                          env=env, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"ratio|ours ?/ ?\w+", done.stdout, re.I), done.stdout[-2000:]
    assert _recorded() == before
