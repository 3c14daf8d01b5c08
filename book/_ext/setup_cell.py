"""The set-up cell that opens every chapter, rendered from the book's single sources of truth.

The repository address comes from ``book/_config.yml`` (``repository.url``) and the version
from ``pyproject.toml``. ``python tasks.py sync`` rewrites each chapter's first code cell from
this template; a test fails when a chapter's cell differs from it. Standard library only.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1]
ROOT = BOOK.parent
SETUP_TAG = "dlnotes-setup"

TEMPLATE = '''\
# Set-up: install dlnotes when it is missing (e.g. on Colab), then pick device and budget.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("dlnotes") is None:
    spec = os.environ.get("DLNOTES_INSTALL_SPEC", "dlnotes @ git+{url}@v{version}")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", spec],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("installing dlnotes failed:\\n" + done.stdout + done.stderr)
    importlib.invalidate_caches()
    print("installed", spec)
from dlnotes import runtime
rt = runtime.setup(seed=0)
print(rt.describe())'''


def repository_url() -> str:
    text = (BOOK / "_config.yml").read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)+)", text, re.M)
    url = re.search(r"^\s+url:\s*(\S+)", block.group(1), re.M) if block else None
    if not url:
        raise ValueError("book/_config.yml has no repository.url")
    return url.group(1)


def version() -> str:
    found = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    if not found:
        raise ValueError("pyproject.toml has no version")
    return found.group(1)


def render() -> str:
    return TEMPLATE.format(url=repository_url(), version=version())


def first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb.get("cells", []) if c.get("cell_type") == "code"), None)


def sync_all(book: Path = BOOK) -> list[Path]:
    """Rewrite the set-up cell of every notebook under ``book`` that carries the set-up tag."""
    changed = []
    source = render()
    for path in sorted(book.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cell = first_code_cell(nb)
        if cell is None or SETUP_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        if "".join(cell["source"]) != source:
            cell["source"] = source.splitlines(keepends=True)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed
