"""Result files for ``benchmarks/``: JSON written by scripts, never typed by hand.

Every file names the device it was measured on, the software versions, the budget and
the commit, so a number in the book can always be traced to the run that produced it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

FORMAT = "dlnotes-results/1"
REQUIRED_KEYS = ("format", "name", "device", "created", "metrics")
#: Set by ``benchmarks/run_chapter.py``: the JSON file that :func:`report` adds a chapter's numbers to.
REPORT_ENV = "DLNOTES_REPORT"


def device_description(device: torch.device | str | None = None) -> str:
    """A human-readable name of the machine a measurement ran on."""
    if device is None:
        from dlnotes.runtime import pick_device

        device = pick_device()
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    return f"cpu: {cpu}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _check_name_and_metrics(name: str, metrics: dict[str, Any]) -> None:
    if not name:
        raise ValueError("name must be a non-empty string")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(f"metrics must be a non-empty dict, got {metrics!r}")


def write_results(
    path: str | os.PathLike,
    name: str,
    metrics: dict[str, Any],
    *,
    device: torch.device | str | None = None,
    config: dict[str, Any] | None = None,
    notes: str = "",
) -> Path:
    """Write one result file atomically and return its path.

    ``metrics`` holds plain numbers/strings/lists (JSON-serialisable); ``config`` the
    settings that produced them (budget, sizes, steps).
    """
    _check_name_and_metrics(name, metrics)
    record = {
        "format": FORMAT,
        "name": name,
        "device": device_description(device),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "config": config or {},
        "metrics": metrics,
        "notes": notes,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one result file."""
    record = json.loads(Path(path).read_text())
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file (missing {missing})")
    return record


def report(name: str, metrics: dict[str, Any]) -> None:
    """Hand a chapter's key numbers to ``benchmarks/run_chapter.py``, which records them.

    They are stored under ``name`` in the JSON file named by ``$DLNOTES_REPORT``; where that variable
    is unset (a reader's run, the book build) nothing happens. metrics: JSON-serialisable values.
    """
    _check_name_and_metrics(name, metrics)
    try:
        json.dumps(metrics)
    except (TypeError, ValueError) as err:
        raise ValueError(f"metrics must be JSON-serialisable: {err}") from err
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    path = Path(target)
    collected = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
    collected[name] = metrics
    path.write_text(json.dumps(collected, indent=2, sort_keys=True) + "\n")


def glue(name: str, value: Any, fmt: str = "{}") -> str:
    """Give a measured number to the book's prose (MyST-NB ``{glue:text}`name```) and return it as text.

    ``fmt`` formats it once, here (``"{:.1%}"``, ``"{:.2f}"``): the prose shows exactly the printed text.

    In a book build the value is glued as the formatted string ``fmt.format(value)``; where MyST-NB is
    not installed (Colab, plain Jupyter) nothing is glued. Print the returned text in the same cell, so
    readers without the rendered prose see the number too.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    text = fmt.format(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return text
    _glue(name, _Text(text), display=False)
    return text


class _Text:
    """A glued value whose plain-text form is the formatted number itself (a str would show its quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text
