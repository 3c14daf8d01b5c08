"""benchmarks/run_chapter.py runs a chapter in a fresh kernel and records what its cells report."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run_chapter.py"


def _probe(tmp_path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def _run(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.pop("DLNOTES_BUDGET", None)
    env.pop("DLNOTES_SMOKE", None)
    env.update(extra_env)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_records_what_the_chapter_reports_with_budget_and_device(tmp_path):
    probe = _probe(tmp_path, "import os\nfrom dlnotes import results, runtime\n"
                             "results.report('probe', {'budget': runtime.budget_name(), 'cwd_empty': os.listdir('.') == []})")
    out = tmp_path / "results"
    done = _run(str(probe), "--budget", "full", "--write", "--out", str(out))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    record = json.loads((out / "probe-full-cpu.json").read_text())
    # the budget reached the kernel, which ran in an empty folder; the file names the device
    assert record["metrics"] == {"probe": {"budget": "full", "cwd_empty": True}}
    assert record["device"].startswith("cpu:") and record["config"]["budget"] == "full"


def test_a_failing_chapter_fails_and_writes_nothing(tmp_path):
    probe = _probe(tmp_path, "from dlnotes import results\nresults.report('probe', {'x': 1})\nassert 1 == 2")
    out = tmp_path / "results"
    done = _run(str(probe), "--write", "--out", str(out))
    assert done.returncode != 0 and "AssertionError" in done.stdout + done.stderr
    assert not out.exists()


def test_a_chapter_that_reports_nothing_is_an_error(tmp_path):
    done = _run(str(_probe(tmp_path, "x = 1")), "--write", "--out", str(tmp_path / "results"))
    assert done.returncode == 1 and "reported nothing" in done.stdout
    assert not (tmp_path / "results").exists()


def test_unknown_chapter_names_the_choices():
    done = _run("no-such-chapter")
    assert done.returncode != 0 and "vqvae" in done.stderr


def test_a_capped_run_is_never_recorded(tmp_path):
    probe = _probe(tmp_path, "from dlnotes import results\nresults.report('probe', {'x': 1})")
    out = tmp_path / "results"
    done = _run(str(probe), "--budget", "full", "--write", "--out", str(out), DLNOTES_SMOKE="1")
    assert done.returncode != 0 and "capped run" in done.stdout + done.stderr
    assert not out.exists()
