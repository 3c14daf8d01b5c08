"""A chapter run as on Colab: torch and the rest preinstalled, dlnotes not, the set-up cell installs it.

A fresh virtual environment stands in for the Colab runtime. A ``.pth`` file makes this
environment's site-packages importable from it, the way Colab's preinstalled packages are,
but ``.pth`` files of those folders are not processed, so this environment's editable dlnotes
stays invisible: ``import dlnotes`` fails there until the chapter's first cell installs it.
The chapter (a copy, in a temporary folder) then runs in a kernel of the new interpreter, with
``DLNOTES_INSTALL_SPEC`` pointing the set-up cell at a copy of the checkout instead of the
tagged release on GitHub, and pip installs dlnotes as a regular (non-editable) package.

Afterwards: every cell ran, the set-up cell says it installed dlnotes, nothing was written to
stderr, dlnotes is installed non-editable in the new environment, and nothing else (torch above
all) was installed there: the chapter leaves the runtime's packages alone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))
import setup_cell  # noqa: E402

# Chapters run in the simulated Colab runtime (each adds about half a minute plus its run time).
CHAPTERS = ["how_to_read.ipynb", "integrated_gradients.ipynb"]
KERNEL_NAME = "dlnotes-colab-sim"
SETUP_TAG = setup_cell.SETUP_TAG
PROBE = "DLNOTES_COLAB_PROBE"
# Copying the checkout keeps pip's in-tree build (build/, *.egg-info) out of the working tree.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "_build", "__pycache__", "*.egg-info", "build",
                                    "dist", ".pytest_cache", ".ipynb_checkpoints", "node_modules")
# What the new environment holds besides dlnotes after the install: pip itself.
TOOLING = {"pip"}


def _parent_site_packages() -> list[str]:
    """The folders that hold this environment's installed distributions."""
    found = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if Path(path).is_dir():
            found.append(path)
    return list(dict.fromkeys(found))


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def _copy_checkout(dest: Path) -> Path:
    def ignore(folder, names):
        skipped = set(NOT_COPIED(folder, names))
        # any virtual environment kept inside the checkout (DLNOTES_VENV may name one)
        skipped |= {n for n in names if (Path(folder) / n / "pyvenv.cfg").exists()}
        return skipped

    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


@pytest.fixture
def colab_env(tmp_path_factory):
    """A new virtual environment that sees this environment's packages, dlnotes excepted.

    One per chapter: each chapter must install dlnotes itself, as in a fresh Colab runtime."""
    base = tmp_path_factory.mktemp("colab")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     check=True).stdout.strip())
    clean = _clean_env(python)
    # ensurepip's old setuptools would shadow the runtime's own (torch requires a newer one, so
    # pip would "upgrade" it into the new environment): the runtime's packages are this one's.
    dropped = _run([python, "-m", "pip", "uninstall", "--yes", "setuptools", "wheel"], env=clean)
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    (site / "preinstalled.pth").write_text("\n".join(_parent_site_packages()) + "\n")

    before = _run([python, "-c", "import dlnotes"], env=clean)
    assert before.returncode != 0 and "ModuleNotFoundError" in before.stderr, (
        "dlnotes must not be importable in the simulated Colab runtime before the chapter runs:\n"
        + before.stdout + before.stderr)
    torch_spec = _run([python, "-c", "import importlib.util as u; print(u.find_spec('torch').origin)"],
                      env=clean)
    assert torch_spec.returncode == 0, f"torch is not importable in the new environment:\n{torch_spec.stderr}"
    assert not Path(torch_spec.stdout.strip()).is_relative_to(env_dir)

    kernels = base / "jupyter" / "kernels" / KERNEL_NAME
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (simulated Colab)",
        "language": "python",
    }))
    return {"dir": env_dir, "python": python, "site": site, "jupyter": base / "jupyter",
            "source": _copy_checkout(base / "dlnotes-src")}


def _clean_env(python: Path) -> dict:
    """The process environment of the simulated runtime: nothing of this one's venv, no book build."""
    env = dict(os.environ)
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "DLNOTES_BOOK_BUILD", "PYTHONSTARTUP"):
        env.pop(name, None)
    own_bin = str(Path(sys.prefix) / ("Scripts" if os.name == "nt" else "bin"))
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != own_bin]
    env["PATH"] = os.pathsep.join([str(python.parent), *path])
    env.update(DLNOTES_BUDGET="quick", OMP_WAIT_POLICY="PASSIVE", PYTHONNOUSERSITE="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _stream(outputs, name: str) -> str:
    return "".join("".join(o.get("text", "")) for o in outputs
                   if o.get("output_type") == "stream" and o.get("name") == name)


def _probe_cell(code: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(code, metadata={"tags": ["colab-probe"]})


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_colab(chapter, colab_env, tmp_path, monkeypatch):
    nb = nbformat.read(BOOK / chapter, as_version=4)
    setup_index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert SETUP_TAG in nb.cells[setup_index].metadata.get("tags", []), "the first code cell is not the set-up cell"
    # Probes around the chapter: which interpreter runs it, and where dlnotes and torch come from.
    nb.cells.insert(0, _probe_cell(
        "import importlib.util, json, sys\n"
        f"print({PROBE!r}, json.dumps({{'prefix': sys.prefix, "
        "'dlnotes': importlib.util.find_spec('dlnotes') is not None}))"))
    nb.cells.append(_probe_cell(
        "import json, sys, dlnotes, torch\n"
        f"print({PROBE!r}, json.dumps({{'prefix': sys.prefix, 'dlnotes': dlnotes.__file__, "
        "'torch': torch.__file__}))"))
    work = tmp_path / "colab-content"
    work.mkdir()
    nbformat.write(nb, work / chapter)  # the chapter reads nothing from the repository

    python = colab_env["python"]
    env = _clean_env(python)
    env["DLNOTES_INSTALL_SPEC"] = str(colab_env["source"])
    monkeypatch.setenv("JUPYTER_PATH", str(colab_env["jupyter"]))
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=600,
                            resources={"metadata": {"path": str(work)}})
    # nbclient mimics the front end of ipywidgets' Output widget by sending on the shell channel while
    # it waits on it, which can stall execution for minutes (jupyter/nbclient#312). Colab is a real
    # front end; the simulation needs none.
    client.widget_registry = {}
    try:
        client.execute(env=env, cwd=str(work))
    except CellExecutionError as error:
        pytest.fail(f"{chapter} failed in the simulated Colab runtime:\n{error}", pytrace=False)

    outputs = [c.get("outputs", []) for c in nb.cells if c.cell_type == "code"]
    first, last = (json.loads(_stream(o, "stdout").split(PROBE, 1)[1]) for o in (outputs[0], outputs[-1]))
    env_prefix = str(colab_env["dir"].resolve())
    assert str(Path(first["prefix"]).resolve()) == env_prefix, f"the kernel ran in {first['prefix']}"
    assert first["dlnotes"] is False, "dlnotes was importable before the set-up cell ran"

    setup_out = _stream(nb.cells[setup_index + 1].get("outputs", []), "stdout")
    assert f"installed {colab_env['source']}" in setup_out, f"the set-up cell did not install dlnotes:\n{setup_out}"
    stderr = {i: _stream(o, "stderr") for i, o in enumerate(outputs) if _stream(o, "stderr")}
    assert stderr == {}, f"cells wrote to stderr: {stderr}"
    errors = [o for cell in outputs for o in cell if o.get("output_type") == "error"]
    assert errors == [], f"error outputs: {errors}"

    site = colab_env["site"]
    assert Path(last["dlnotes"]).resolve().is_relative_to(site.resolve()), (
        f"dlnotes imported from {last['dlnotes']}, not from the new environment {site}")
    assert not Path(last["torch"]).resolve().is_relative_to(colab_env["dir"].resolve()), (
        f"torch came from the new environment ({last['torch']}): the install pulled its own torch")

    show = _run([python, "-m", "pip", "show", "dlnotes"], env=_clean_env(python))
    assert show.returncode == 0, show.stdout + show.stderr
    assert f"Location: {site}" in show.stdout, show.stdout
    assert "Editable project location" not in show.stdout, f"dlnotes was installed editable:\n{show.stdout}"

    listed = _run([python, "-m", "pip", "list", "--format", "json", "--path", site], env=_clean_env(python))
    assert listed.returncode == 0, listed.stderr
    installed = {d["name"].lower().replace("_", "-") for d in json.loads(listed.stdout)}
    assert "torch" not in installed, f"the install pulled another torch into the runtime: {sorted(installed)}"
    assert installed - TOOLING == {"dlnotes"}, (
        f"installing dlnotes changed the runtime's packages: {sorted(installed - TOOLING - {'dlnotes'})}")
