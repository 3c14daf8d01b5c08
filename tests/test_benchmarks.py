"""Every benchmark script still runs: ``--quick`` measures ours against the reference, prints a
ratio, and leaves the recorded results (written only by full runs or ``--write``) untouched; the README's
table of the recorded ratios (benchmarks/summary.py) agrees with the results files."""
import json
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


def _summary():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import summary
    finally:
        sys.path.remove(str(BENCHMARKS))
    return summary


def test_readme_holds_the_current_summary_of_the_records():
    summary = _summary()
    readme = (BENCHMARKS.parent / "README.md").read_text()
    assert summary.readme_block(readme) == summary.table("cpu"), \
        "README's benchmark table is stale: run python benchmarks/summary.py --readme"
    # every headline names a ratio its CPU record holds (a renamed metric fails here, not silently)
    assert len(summary.rows("cpu")) == len(summary.HEADLINES)


def test_summary_judges_each_goal_in_its_direction(tmp_path):
    summary = _summary()

    def write(topic, metrics):
        (tmp_path / f"{topic}-cpu.json").write_text(json.dumps({"commit": "abc1234", "metrics": metrics}))

    write("vae", {"ratio_ours_over_floor": 1.4, "goal_ours_over_floor": 1.3,
                  "settings": [{"ratio_pythae_over_ours": 2.6}], "goal_pythae_over_ours": 2.5})
    write("vqvae", {"ratio_ours_over_theirs": 1.9, "goal_cpu_ratio": 2.0})
    write("nvae", {"runs": {"quick": {"ratio_over_eager_fp32": {"compile": 0.8}}}, "goal_gpu": 1.5})
    write("capsules", {"full": {"ratio_ours_over_reference": 0.5}})
    verdicts = [row[3] for row in summary.rows("cpu", tmp_path)]  # in HEADLINES' order, files present only
    assert verdicts == ["**missed**", "met", "**missed**", "not judged on a CPU", "met"], verdicts
    with pytest.raises(ValueError, match="markers"):
        summary.readme_block("no table here")
