"""Device, budget and seeding: the three choices every chapter makes first.

A *budget* is a named instance of a chapter's frozen config dataclass: ``quick`` runs
on a laptop CPU in about a minute, ``full`` is the experiment of the post on one GPU.
The budget follows the device (``cuda`` → ``full``, otherwise ``quick``) and the
environment variable ``DLNOTES_BUDGET=quick|full`` overrides it.
"""
from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import NamedTuple, TypeVar

import numpy as np
import torch

BUDGET_NAMES = ("quick", "full")
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


class Runtime(NamedTuple):
    device: torch.device
    budget: str
    seed: int

    def describe(self) -> str:
        name = self.device.type
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        return f"device: {name} | budget: {self.budget} | seed: {self.seed} | torch {torch.__version__}"


def setup(seed: int = 0) -> Runtime:
    """Pick device and budget and seed everything; chapters print ``setup().describe()``."""
    device = pick_device()
    seed_everything(seed)
    return Runtime(device=device, budget=budget_name(device), seed=seed)
