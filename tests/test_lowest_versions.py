"""Every chapter runs at the lowest versions that ``pyproject.toml`` declares (torch as pinned).

Readers' runtimes (Colab above all) keep their own packages, so the lower bounds are promises. A second
environment is built once with each runtime dependency at its lower bound, read from the file, and kept
in the user's cache (``~/.cache/dlnotes/venv-lowest-<hash of the bounds>``; ``DLNOTES_LOWEST_VENV`` moves it)
until the bounds change, so fresh clones reuse it. It holds the dependencies only: the checkout's own
``src/`` is put on the kernel's path. Every chapter then executes there in the quick budget, with nothing
allowed on stderr, as in the main run. The tools that execute notebooks (ipykernel, nbclient, nbformat)
are test tools, pinned as in CI.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from _tasks import load_tasks
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
tasks = load_tasks()
TOOLS = ("ipykernel", "nbclient", "nbformat")
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
RUNNER = Path(__file__).resolve().parent / "_run_notebook.py"
PROBE = "DLNOTES_VERSIONS"


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.strip().lower()] = version.strip()
    return pins


def lowest_pins() -> dict[str, str]:
    """Each runtime dependency at its declared lower bound (``name>=X`` → X); torch at its pin."""
    pins = {}
    for req in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        found = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)\s*", req)
        if not found:
            raise ValueError(f"dependency {req!r} is not of the form name>=version")
        pins[found.group(1).lower()] = found.group(2)
    pins["torch"] = _constraints()["torch"]
    return pins


def _wanted() -> tuple[dict[str, str], str]:
    """What the environment must hold (the lower bounds and the tools' pins) and its hash."""
    pins = {**lowest_pins(), **{name: _constraints()[name] for name in TOOLS}}
    return pins, hashlib.sha256(json.dumps([pins, sys.version_info[:2]]).encode()).hexdigest()


LOWEST = Path(os.environ.get("DLNOTES_LOWEST_VENV") or
              Path.home() / ".cache" / "dlnotes" / f"venv-lowest-{_wanted()[1][:16]}")


def _same(found: str | None, wanted: str) -> bool:
    """``found`` is release ``wanted`` (1.24.0 is 1.24; a local label such as +cpu is ignored)."""
    return found is not None and Version(found.split("+")[0]) == Version(wanted)


def _python() -> Path:
    return LOWEST / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME",
                                                             "DLNOTES_BOOK_BUILD", "DLNOTES_SMOKE")}
    env["PATH"] = os.pathsep.join([str(_python().parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(ROOT / "src")  # this checkout's dlnotes, not an installed one
    env.update(DLNOTES_BUDGET="quick", OMP_WAIT_POLICY="PASSIVE", PYTHONNOUSERSITE="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _installed(py: Path) -> dict[str, str]:
    listed = subprocess.run([py, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            env=_clean_env(), check=True)
    return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(listed.stdout)}


def test_every_runtime_dependency_has_a_lower_bound():
    pins = lowest_pins()
    assert {"numpy", "plotly", "ipywidgets", "tqdm", "scikit-learn", "mlxtend"} <= set(pins)


@pytest.fixture(scope="session")
def lowest_env() -> Path:
    everything, wanted = _wanted()
    pins = lowest_pins()
    stamp = LOWEST / ".dlnotes-lowest"
    py = _python()
    if not (stamp.exists() and stamp.read_text() == wanted and py.exists()):
        if LOWEST.exists():
            import shutil

            shutil.rmtree(LOWEST)
        venv.EnvBuilder(with_pip=True).create(LOWEST)
        tasks._install_torch(py)  # the pinned torch, from the same source as the main environment's
        requirements = [f"{n}=={v}" for n, v in everything.items()]
        done = subprocess.run([py, "-m", "pip", "install", "--quiet", *requirements],
                              capture_output=True, text=True, env=_clean_env())
        assert done.returncode == 0, f"the lowest declared versions do not install together:\n{done.stderr[-3000:]}"
        stamp.write_text(wanted)
    installed = _installed(py)
    wrong = {n: (v, installed.get(n)) for n, v in pins.items() if not _same(installed.get(n), v)}
    assert wrong == {}, f"installed versions differ from the lower bounds (wanted, got): {wrong}"
    return py


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_at_the_lowest_declared_versions(path, lowest_env, tmp_path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import importlib.metadata as _m, json as _j, dlnotes as _d\n"
        f"print({PROBE!r}, _j.dumps({{**{{n: _m.version(n) for n in {sorted(lowest_pins())!r}}}, "
        "'dlnotes': _d.__file__}))"))
    probe_nb, out = tmp_path / path.name, tmp_path / "run.json"
    nbformat.write(nb, probe_nb)
    done = subprocess.run([lowest_env, RUNNER, probe_nb, out], capture_output=True, text=True, env=_clean_env(),
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["failure"] is None, f"{path.name} failed at the lowest versions:\n{result['failure'][-4000:]}"
    stderr = {i: c["stderr"] for i, c in enumerate(result["cells"]) if c["stderr"]}
    assert stderr == {}, f"cells wrote to stderr at the lowest versions: {stderr}"
    seen = json.loads(result["cells"][-1]["stdout"].split(PROBE, 1)[1])
    assert Path(seen.pop("dlnotes")).is_relative_to(ROOT / "src"), "the kernel imported another dlnotes"
    other = {n: (v, seen.get(n)) for n, v in lowest_pins().items() if not _same(seen.get(n), v)}
    assert other == {}, f"the kernel ran other versions (wanted, got): {other}"
