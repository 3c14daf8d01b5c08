"""The book build fails loudly: a failing claim or any stderr output in a cell fails it."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _tasks import load_tasks

ROOT = Path(__file__).resolve().parents[1]


def _tasks():
    tasks = load_tasks("tasks_for_build")
    # use the environment the tests run in
    tasks.VENV = Path(sys.prefix)
    return tasks


def _notebook(cells: list[str]) -> dict:
    return {"cells": [{"id": "title", "cell_type": "markdown", "metadata": {}, "source": "# Probe"}]
            + [{"id": f"c{i}", "cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                "source": c} for i, c in enumerate(cells)],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _build_probe(tmp_path: Path, cells: list[str]) -> subprocess.CompletedProcess:
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy(ROOT / "book" / name, book / name)
    shutil.copytree(ROOT / "book" / "_ext", book / "_ext")
    (book / "_toc.yml").write_text("format: jb-book\nroot: probe\n")
    (book / "probe.ipynb").write_text(json.dumps(_notebook(cells)))
    cmd, env = _tasks().book_command(book)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("cell, message", [
    ("assert 0.5 > 0.9, 'the claim does not hold'", "the claim does not hold"),
    ("import sys; print('stray', file=sys.stderr)", "stderr was found in the cell outputs"),
    ("import warnings; warnings.warn('careful')", "stderr was found in the cell outputs"),
], ids=["failed-assert", "stderr", "warning"])
def test_build_fails_and_shows_why(tmp_path, cell, message):
    done = _build_probe(tmp_path, ["x = 1", cell])
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_clean_probe_builds_with_offline_assets(tmp_path):
    done = _build_probe(tmp_path, ["import dlnotes\nimport plotly.graph_objects as go\n"
                                   "go.Figure(go.Scatter(y=[1, 3, 2])).show()"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    html_dir = tmp_path / "book" / "_build" / "html"
    page = (html_dir / "probe.html").read_text()
    assert "_static/plotly.min.js" in page and "Plotly.newPlot" in page
    assert (html_dir / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert "cdn.jsdelivr" not in page and "cdn.plot.ly" not in page
