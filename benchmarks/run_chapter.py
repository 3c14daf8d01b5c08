"""Run a chapter top to bottom and record the numbers it reports: ``python benchmarks/run_chapter.py vqvae``.

The chapter executes in a fresh kernel in an empty folder (it reads no file of the repository),
with ``DLNOTES_BUDGET`` set to ``--budget`` (default: what the device gives, ``full`` on a GPU).
Cells that call :func:`dlnotes.results.report` hand over their key numbers; the script prints them
and, with ``--write``, records ``benchmarks/results/<chapter>-<budget>-<device type>.json`` naming
the device. A failing assert in the chapter fails the run, and nothing is written.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _cli import RESULTS, ROOT

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from dlnotes import runtime  # noqa: E402
from dlnotes.results import REPORT_ENV, write_results  # noqa: E402

BOOK = ROOT / "book"


def chapter_path(chapter: str) -> Path:
    """A chapter's notebook: a name in book/ (``vqvae``) or a path to a .ipynb file."""
    path = Path(chapter)
    if path.suffix != ".ipynb":
        path = BOOK / f"{chapter}.ipynb"
    if not path.is_file():
        names = sorted(p.stem for p in BOOK.glob("*.ipynb"))
        raise SystemExit(f"chapter must be one of {names} or a .ipynb path, got {chapter!r}")
    return path


def run(path: Path, budget: str, timeout: int | None) -> tuple[dict, float]:
    """Execute the notebook at ``path``; return what its cells reported and the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="dlnotes-chapter-") as work:
        report = Path(work) / "report.json"
        env = dict(os.environ, DLNOTES_BUDGET=budget, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
        env[REPORT_ENV] = str(report)
        env.pop("DLNOTES_BOOK_BUILD", None)
        client = NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": work}})
        client.widget_registry = {}  # no imitation of ipywidgets' Output widget (jupyter/nbclient#312)
        start = time.perf_counter()
        client.execute(env=env, cwd=work)
        seconds = time.perf_counter() - start
        reported = json.loads(report.read_text()) if report.exists() else {}
    return reported, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", help="a notebook name in book/ (e.g. vqvae) or a .ipynb path")
    parser.add_argument("--budget", choices=runtime.BUDGET_NAMES, default=None,
                        help="quick or full (default: full on a GPU, quick otherwise)")
    parser.add_argument("--write", action="store_true", help="record the reported numbers in benchmarks/results")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results file (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds one cell may run (default: no limit)")
    args = parser.parse_args(argv)
    path = chapter_path(args.chapter)
    if args.write and runtime.smoke():
        raise SystemExit(f"refusing to record results from a capped run: unset {runtime.SMOKE_ENV} to use --write")
    device = runtime.pick_device()
    budget = args.budget or runtime.budget_name(device)
    print(f"running {path.name} with the {budget} budget on {device.type} ...", flush=True)
    reported, seconds = run(path, budget, args.timeout)
    print(f"ran in {seconds:.0f} s; reported:")
    print(json.dumps(reported, indent=2, sort_keys=True))
    if not reported:
        print(f"{path.name} reported nothing (no dlnotes.results.report call ran)")
        return 1
    if args.write:
        out = write_results(args.out / f"{path.stem}-{budget}-{device.type}.json", f"{path.stem}, {budget} budget",
                            reported, device=device, config={"budget": budget, "chapter": path.name,
                                                             "seconds": round(seconds, 1)},
                            notes="written by benchmarks/run_chapter.py from the chapter's own report() calls")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
