"""Every chapter executes with the FULL budget on a CPU, capped to a few steps (``DLNOTES_SMOKE=1``).

No GPU reader should be the first to run a full-budget line: full configs, full-size models, the
CIFAR-10 path, ``report()`` calls and the asserts' code paths all run here, in a fresh kernel in an
empty folder, with a test fake of torchvision (``tests/smoke_torchvision``) supplying MNIST- and
CIFAR-10-shaped data. Claims that need a trained model are skipped by ``runtime.trained_claim`` with
a printed reason. A cell that raises or writes to stderr fails the test.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.ipynb"))
FAKE_TORCHVISION = Path(__file__).resolve().parent / "smoke_torchvision"


def _streams(nb, name: str) -> dict[int, str]:
    found = {}
    for i, cell in enumerate(nb.cells):
        text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == name)
        if text:
            found[i] = text
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_with_the_capped_full_budget(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, DLNOTES_BUDGET="full", DLNOTES_SMOKE="1", DLNOTES_DATA=str(tmp_path / "data"),
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAKE_TORCHVISION), env.get("PYTHONPATH")]))
    env.pop("DLNOTES_BOOK_BUILD", None)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}})
    client.widget_registry = {}  # no imitation of ipywidgets' Output widget (jupyter/nbclient#312)
    try:
        client.execute(env=env, cwd=str(tmp_path))
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed under the capped full budget:\n{error}", pytrace=False)
    stdout = "\n".join(_streams(nb, "stdout").values())
    assert "budget: full" in stdout and "smoke cap on" in stdout, "the set-up cell did not announce the cap"
    assert _streams(nb, "stderr") == {}, f"cells wrote to stderr: {_streams(nb, 'stderr')}"
