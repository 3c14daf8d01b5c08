"""Device, budget and seeding: the three choices every chapter makes first.

A *budget* is a named instance of a chapter's frozen config dataclass: ``quick`` runs
on a laptop CPU in about a minute, ``full`` is the experiment of the post on one GPU.
The budget follows the device (``cuda`` → ``full``, otherwise ``quick``) and the
environment variable ``DLNOTES_BUDGET=quick|full`` overrides it.

The *smoke cap* (``DLNOTES_SMOKE=1``) lets a CPU run every line of the full budget: each training
loop and evaluation is cut to a few steps and small subsets through :func:`cap`, and claims that
need a trained model are skipped, with a printed reason, through :func:`trained_claim`. CI runs
every chapter so; results from a capped run are never recorded.
"""
from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import NamedTuple, TypeVar

import numpy as np
import torch

BUDGET_NAMES = ("quick", "full")
#: Environment variable that turns the smoke cap on ("1") or off (unset, "0" or "").
SMOKE_ENV = "DLNOTES_SMOKE"
T = TypeVar("T")


def pick_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``; ``DLNOTES_DEVICE`` overrides."""
    wanted = os.environ.get("DLNOTES_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def budget_name(device: torch.device | None = None) -> str:
    """The budget in force: ``DLNOTES_BUDGET`` if set, else ``full`` on CUDA, ``quick`` otherwise."""
    wanted = os.environ.get("DLNOTES_BUDGET", "").strip().lower()
    if wanted:
        if wanted not in BUDGET_NAMES:
            raise ValueError(
                f"DLNOTES_BUDGET must be one of {BUDGET_NAMES}, got {wanted!r}"
            )
        return wanted
    device = pick_device() if device is None else device
    return "full" if device.type == "cuda" else "quick"


def choose(budgets: Mapping[str, T], device: torch.device | None = None) -> T:
    """Pick the config instance named by :func:`budget_name` from ``{"quick": ..., "full": ...}``."""
    missing = [name for name in BUDGET_NAMES if name not in budgets]
    if missing:
        raise ValueError(f"budgets must define {BUDGET_NAMES}, missing {missing}")
    return budgets[budget_name(device)]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch generator with that seed."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def smoke() -> bool:
    """True when ``DLNOTES_SMOKE`` caps every loop to a few steps (CI's run of the full budget)."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value not in ("", "0", "1", "false", "true"):
        raise ValueError(f"{SMOKE_ENV} must be 1/true or 0/false/unset, got {value!r}")
    return value in ("1", "true")


def cap(n: int, limit: int) -> int:
    """``n`` steps, samples or epochs, or ``min(n, limit)`` under the smoke cap."""
    for name, value in (("n", n), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return min(n, limit) if smoke() else n


def trained_claim(claim: str) -> bool:
    """Whether to check a claim that needs a trained model: False, with a printed note, under the smoke cap.

    Use as ``if runtime.trained_claim("capsules beat the CNN on pairs"): assert ...``.
    """
    if not claim or not isinstance(claim, str):
        raise ValueError(f"claim must be a non-empty description, got {claim!r}")
    if smoke():
        print(f"skipped under the smoke cap ({SMOKE_ENV}=1): {claim}")
        return False
    return True


def peak_memory_note(device: torch.device) -> str:
    """What one training step took at its peak, for readers choosing a GPU (call after the step).

    On CUDA: ``torch.cuda.max_memory_allocated`` since the last reset; on a CPU a note that it is not
    measured there.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return f"peak GPU memory of a training step: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    return "peak memory: measured on CUDA only (this run is on the CPU)"


class Runtime(NamedTuple):
    device: torch.device
    budget: str
    seed: int

    def describe(self) -> str:
        name = self.device.type
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        line = f"device: {name} | budget: {self.budget} | seed: {self.seed} | torch {torch.__version__}"
        if smoke():
            line += f"\nsmoke cap on ({SMOKE_ENV}=1): every loop cut to a few steps, trained claims skipped"
        return line


def setup(seed: int = 0) -> Runtime:
    """Pick device and budget and seed everything; chapters print ``setup().describe()``."""
    device = pick_device()
    seed_everything(seed)
    return Runtime(device=device, budget=budget_name(device), seed=seed)
