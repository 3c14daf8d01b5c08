"""Execute one notebook in a fresh kernel of *this* interpreter and write what it printed as JSON.

    python tests/_run_notebook.py CHAPTER.ipynb OUT.json

Run by the tests with another environment's interpreter (e.g. the lowest declared versions), so it
imports only nbclient and nbformat. The kernel is this interpreter's (a kernelspec made here, so no
user-installed ``python3`` spec can stand in). OUT.json holds, per code cell, stdout, stderr and error.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

KERNEL = "dlnotes-under-test"


def main(notebook: str, out: str) -> int:
    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory(prefix="dlnotes-run-") as work:
        spec = Path(work) / "jupyter" / "kernels" / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "dlnotes under test", "language": "python"}))
        os.environ["JUPYTER_PATH"] = str(Path(work) / "jupyter")
        run_dir = Path(work) / "run"
        run_dir.mkdir()
        client = NotebookClient(nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(run_dir)}})
        client.widget_registry = {}  # no imitation of ipywidgets' Output widget (jupyter/nbclient#312)
        failure = None
        try:
            client.execute(cwd=str(run_dir))
        except CellExecutionError as error:
            failure = str(error)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        stream = {name: "".join("".join(o.get("text", "")) for o in outputs
                                if o.get("output_type") == "stream" and o.get("name") == name)
                  for name in ("stdout", "stderr")}
        errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.get("output_type") == "error"]
        cells.append({**stream, "errors": errors})
    Path(out).write_text(json.dumps({"failure": failure, "cells": cells}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
