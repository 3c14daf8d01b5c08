"""What every benchmark script shares: its command line and where its results file goes.

``--quick`` is a smoke test that writes nothing unless ``--write`` is given; a full run writes
``benchmarks/results/<topic>-<device type>.json`` through :func:`dlnotes.results.write_results`.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))  # runnable from a checkout without installing dlnotes

import torch  # noqa: E402

from dlnotes.results import write_results  # noqa: E402
from dlnotes.runtime import pick_device  # noqa: E402


def parse_args(description: str, quick_help: str, argv: list[str] | None = None) -> tuple[argparse.Namespace, torch.device]:
    """Parse ``--quick``, ``--write`` and ``--device`` (default: :func:`dlnotes.runtime.pick_device`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--write", action="store_true", help="write the results file even with --quick")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    args = parser.parse_args(argv)
    return args, torch.device(args.device) if args.device else pick_device()


def record(args: argparse.Namespace, device: torch.device, topic: str, title: str, metrics: dict[str, Any], *,
           config: dict[str, Any], notes: str) -> Path | None:
    """Write the results file of a full run (or of ``--quick --write``); return its path, or None."""
    if args.quick and not args.write:
        return None
    name = f"{topic}-quick" if args.quick else topic
    path = write_results(RESULTS / f"{name}-{device.type}.json", title, metrics, device=device,
                         config={**config, "budget": "quick" if args.quick else "default"}, notes=notes)
    print(f"  wrote {path.relative_to(ROOT)}")
    return path


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(fns: dict[str, Callable[[], object]], *, warmup: int, repeats: int, device: torch.device,
                     inner: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` readings each.

    The functions take turns within every repeat, so slow drifts of the machine hit all alike;
    each reading averages ``inner`` back-to-back calls.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - start) / inner)
    return times
