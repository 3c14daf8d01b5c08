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


def _load_script(name: str):
    """Import ``benchmarks/<name>.py`` as a module (the folder is not a package)."""
    import importlib.util

    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chapter_times_follow_the_toc_and_read_a_build_cache(tmp_path):
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    tc = _load_script("time_chapters")
    notebooks = tc.toc_notebooks()
    assert notebooks and all(p.suffix == ".ipynb" and p.exists() for p in notebooks)
    cache = get_cache(tmp_path / ".jupyter_cache")
    first = notebooks[0]
    nb = nbformat.read(first, as_version=4)
    cache.cache_notebook_bundle(CacheBundleIn(nb, str(first), data={"execution_seconds": 12.5}),
                                check_validity=False)
    if len(notebooks) > 1:  # a build that did not execute every chapter is refused
        done = subprocess.run([sys.executable, str(SCRIPT.parent / "time_chapters.py"), "--from-build",
                               str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and "executed no" in done.stderr
    for path in notebooks[1:]:
        bundle = CacheBundleIn(nbformat.read(path, as_version=4), str(path), data={"execution_seconds": 1.0})
        cache.cache_notebook_bundle(bundle, check_validity=False)
    times = tc.times_from_build(tmp_path)
    assert list(times) == [p.stem for p in notebooks] and times[first.stem] == 12.5


def test_suite_time_reads_pytest_summary():
    ts = _load_script("time_suite")
    line = "=========== 903 passed, 2 skipped, 1 warning in 3112.40s (0:51:52) ============"
    assert ts.SUMMARY.match(line)["summary"] == "903 passed, 2 skipped, 1 warning"
    assert ts.summary_counts("903 passed, 2 skipped") == {"passed": 903, "skipped": 2}
    assert not ts.SUMMARY.match("=========== 1 failed in 3.00s ===========")


def test_suite_time_records_a_passing_run_only(tmp_path):
    script = str(SCRIPT.parent / "time_suite.py")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    failing = subprocess.run([sys.executable, script, "--write", "--out", str(tmp_path), "--",
                              "tests/test_layout.py", "-k", "no_test_has_this_name"],
                             capture_output=True, text=True, timeout=300, env=env, cwd=SCRIPT.parents[1])
    assert failing.returncode != 0 and "nothing recorded" in failing.stdout
    assert not list(tmp_path.glob("*.json"))
    passing = subprocess.run([sys.executable, script, "--write", "--out", str(tmp_path), "--",
                              "tests/test_layout.py"],
                             capture_output=True, text=True, timeout=300, env=env, cwd=SCRIPT.parents[1])
    assert passing.returncode == 0, passing.stdout[-3000:]
    (record,) = tmp_path.glob("test-suite-*.json")
    metrics = json.loads(record.read_text())["metrics"]
    assert metrics["passed"] >= 1 and metrics["seconds"] >= 0
