"""Time every chapter with the quick budget: ``python benchmarks/time_chapters.py --write``.

Each chapter of ``book/_toc.yml`` executes in a fresh kernel in an empty folder, one after the other,
as ``benchmarks/run_chapter.py`` runs it; or, with ``--from-build [FOLDER]``, the times are read from the
execution cache of a finished book build (``book/_build`` by default), which executed every chapter
the same way. The script prints seconds per chapter and, with ``--write``, records them in
``benchmarks/results/chapter-times-<budget>-<device type>.json``, so the times the README quotes are
measured, not guessed. (The book's execution page shows the times of the build it belongs to.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from _cli import RESULTS, ROOT
from run_chapter import run

from dlnotes import runtime  # noqa: E402
from dlnotes.results import write_results  # noqa: E402

BOOK = ROOT / "book"


def toc_notebooks() -> list[Path]:
    """The notebooks of ``_toc.yml``, in reading order."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    names = [entry["file"] for part in toc.get("parts", []) for entry in part["chapters"]]
    return [BOOK / f"{name}.ipynb" for name in names if (BOOK / f"{name}.ipynb").exists()]


def times_from_build(build: Path) -> dict[str, float]:
    """Seconds each notebook of ``_toc.yml`` took in the book build at ``build`` (its jupyter-cache)."""
    from jupyter_cache import get_cache

    records = {}
    for record in get_cache(build / ".jupyter_cache").list_cache_records():
        stem = Path(record.uri).stem
        if stem not in records or record.created > records[stem].created:
            records[stem] = record
    wanted = [path.stem for path in toc_notebooks()]
    missing = [name for name in wanted if name not in records]
    if missing:
        raise SystemExit(f"the build at {build} executed no {missing}: build the book first")
    return {name: float(records[name].data["execution_seconds"]) for name in wanted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=runtime.BUDGET_NAMES, default="quick")
    parser.add_argument("--write", action="store_true", help="record the times in benchmarks/results")
    parser.add_argument("--from-build", nargs="?", const=BOOK / "_build", type=Path, default=None,
                        help="read the times of a finished quick-budget book build (default folder: book/_build)")
    args = parser.parse_args(argv)
    if args.write and runtime.smoke():
        raise SystemExit(f"refusing to record times of a capped run: unset {runtime.SMOKE_ENV}")
    device = runtime.pick_device()
    if args.from_build:
        seconds = times_from_build(args.from_build)
        source = f"the execution cache of the book build in {args.from_build}"
    else:
        seconds = {}
        for path in toc_notebooks():
            _, seconds[path.stem] = run(path, args.budget, timeout=None)
            print(f"{path.stem}: {seconds[path.stem]:.0f} s", flush=True)
        source = "fresh kernels, one chapter after the other"
    for name, s in seconds.items():
        print(f"{name}: {s:.0f} s")
    print(f"all chapters: {sum(seconds.values()):.0f} s ({source})")
    if args.write:
        out = write_results(RESULTS / f"chapter-times-{args.budget}-{device.type}.json",
                            f"chapter execution times, {args.budget} budget",
                            {name: round(s, 1) for name, s in seconds.items()}, device=device,
                            config={"budget": args.budget, "source": source},
                            notes="written by benchmarks/time_chapters.py")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
