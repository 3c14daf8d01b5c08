"""The chapter's experiment: sorting 16 tokens with a deep encoder, per residual form and schedule.

Fresh random batches each step (no dataset); per-position cross-entropy, chance = ln 16 ≈ 2.77.
Adam(β = 0.9, 0.98, ε = 1e-8), no weight decay, an optional linear warm-up and Su's fixed-step ramp.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch.nn import functional as F

from dlnotes.init_norm.blocks import TransformerStack
from dlnotes.init_norm.propagation import sorting_batch

__all__ = ["SortConfig", "QUICK", "FULL", "RunResult", "train_sorting", "swap_test"]


@dataclasses.dataclass(frozen=True)
class SortConfig:
    """One budget of the sorting experiment.

    The main comparison (every residual form at ``n_layers``, ``d_model``, ``lr``, ``steps``) is the same in
    both budgets, so its thresholds, calibrated on a CPU, hold for both; the full budget adds ``seeds`` and
    the grid (``grid_*``: depth × learning rate × warm-up × residual form at ``grid_d_model``).
    """

    n_layers: int = 8           # the shallowest depth where Post-LN fails at lr 3e-3 (at 6 it trains)
    d_model: int = 32
    n_heads: int = 2
    seq_len: int = 16
    vocab: int = 16
    batch: int = 32
    lr: float = 3e-3
    steps: int = 150            # the warm-up rescue needs ~150 steps to show (at 120 it has not started)
    warmup: int = 30            # warm-up steps of the "rescue" run
    ramp_steps: int = 75        # Su's ramp: r goes 0 → 1 in this many updates, then stays at 1
    tail: int = 20              # final loss = mean of the last ``tail`` steps
    eval_size: int = 512
    seeds: tuple[int, ...] = (0,)
    grid_d_model: int = 0       # 0: no grid
    grid_heads: int = 4
    grid_steps: int = 0
    grid_layers: tuple[int, ...] = ()
    grid_lrs: tuple[float, ...] = ()
    grid_warmups: tuple[int, ...] = ()
    grid_norms: tuple[str, ...] = ()


QUICK = SortConfig()
FULL = SortConfig(seeds=(0, 1, 2), grid_d_model=256, grid_steps=2000, grid_layers=(6, 12, 24, 48, 96),
                  grid_lrs=(3e-4, 1e-3, 3e-3), grid_warmups=(0, 100, 1000),
                  grid_norms=("post", "pre", "deepnorm", "rezero", "pre-ramp"))


@dataclasses.dataclass
class RunResult:
    """Loss per step, final loss (mean of the tail), accuracy on fresh sequences, and the model."""

    losses: list[float]
    final_loss: float
    accuracy: float
    model: TransformerStack


def train_sorting(cfg: SortConfig, norm: str, *, seed: int = 0, n_layers: int | None = None,
                  lr: float | None = None, warmup: int = 0, steps: int | None = None,
                  d_model: int | None = None, n_heads: int | None = None,
                  device: torch.device | str = "cpu", progress=None) -> RunResult:
    """Train a ``TransformerStack`` of residual form ``norm`` on sorting; ramps advance 1/ramp_steps per step.

    Keyword arguments override the config's depth, learning rate, steps, width and heads; ``warmup`` is a
    linear warm-up length in steps (0: none).

    ``progress``: an optional callable (e.g. a tqdm's ``update``) called once per step.
    """
    n_layers = cfg.n_layers if n_layers is None else n_layers
    lr = cfg.lr if lr is None else lr
    steps = cfg.steps if steps is None else steps
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup!r}")
    torch.manual_seed(seed)
    d_model = cfg.d_model if d_model is None else d_model
    n_heads = cfg.n_heads if n_heads is None else n_heads
    model = TransformerStack(cfg.vocab, cfg.seq_len, d_model, n_heads, n_layers, norm=norm).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    gen = torch.Generator().manual_seed(10_000 + seed)
    losses = []
    for _ in range(steps):
        x, y = sorting_batch(cfg.batch, cfg.seq_len, cfg.vocab, generator=gen, device=device)
        loss = F.cross_entropy(model(x).reshape(-1, cfg.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if norm in ("ramp", "pre-ramp"):
            model.advance_ramp(1.0 / cfg.ramp_steps)
        value = loss.item()
        losses.append(value if math.isfinite(value) else float("nan"))
        if progress is not None:
            progress()
    tail = [v for v in losses[-cfg.tail:]]
    final = sum(tail) / len(tail)
    return RunResult(losses, final if math.isfinite(final) else float("inf"),
                     accuracy(model, cfg, seed=seed, device=device), model)


@torch.no_grad()
def accuracy(model: TransformerStack, cfg: SortConfig, *, seed: int = 0, device: torch.device | str = "cpu") -> float:
    """Fraction of positions sorted correctly on ``cfg.eval_size`` fresh sequences."""
    gen = torch.Generator().manual_seed(20_000 + seed)
    x, y = sorting_batch(cfg.eval_size, cfg.seq_len, cfg.vocab, generator=gen, device=device)
    return (model(x).argmax(-1) == y).float().mean().item()


@torch.no_grad()
def swap_test(model: TransformerStack, cfg: SortConfig, *, seed: int = 0,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """Loss increase when block t+1 is fed block t's input instead of its own (t = 0 … L−2).

    The "depth is partly width" probe: for a Pre-Norm stack with x_{t+1} ≈ x_t the swap barely matters.
    Returns (L − 1,) loss differences on ``cfg.eval_size`` fresh sequences.
    """
    gen = torch.Generator().manual_seed(30_000 + seed)
    x, y = sorting_batch(cfg.eval_size, cfg.seq_len, cfg.vocab, generator=gen, device=device)

    def loss_with(swap: int | None) -> float:
        h = model.tok(x) + model.pos[: x.shape[1]]
        prev = h
        for i, block in enumerate(model.blocks):
            inp = prev if swap is not None and i == swap + 1 else h
            prev = h
            h = block(inp)
        logits = model.head(model.final_norm(h))
        return F.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1)).item()

    base = loss_with(None)
    return torch.tensor([loss_with(t) - base for t in range(len(model.blocks) - 1)], dtype=torch.float64)
