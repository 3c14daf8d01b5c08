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

__all__ = ["SortConfig", "QUICK", "FULL", "RunResult", "ATTENTION_MODES", "build_stack", "train_sorting",
           "swap_test", "SWAP_MODES"]

ATTENTION_MODES = ("sqrt", "unscaled", "t5")


@dataclasses.dataclass(frozen=True)
class SortConfig:
    """One budget of the chapter's training experiments.

    The main comparison (every residual form at ``n_layers``, ``d_model``, ``lr``, ``steps``) runs in both
    budgets at the size of issue 14 and of the brief's calibration (12 blocks of width 64, 4 heads, lr 1e-3,
    batch 64, 200 steps, 50 warm-up and 100 ramp steps): the quick budget on seed 0, the full budget over
    ``seeds``; the chapter's thresholds come from seeds 0, 1, 2 on a CPU. The full budget adds the grid
    (``grid_*``: depth × learning rate × warm-up × residual form at ``grid_d_model``) and the attention-scale
    training runs (``attn_*``; 0 steps: not run).
    ``mup_*``: the learning-rate sweep of the μP transfer figure (MLP widths × log2 learning rates);
    ``lm_*``: the same on a small Transformer language model (``TransformerLM``, base width ``lm_widths[0]``).
    """

    n_layers: int = 12          # Post-LN fails here without warm-up at lr 1e-3 (at 6 blocks it trains)
    d_model: int = 64
    n_heads: int = 4
    seq_len: int = 16
    vocab: int = 16
    batch: int = 64
    lr: float = 1e-3
    steps: int = 200
    warmup: int = 50            # warm-up steps of the "rescue" run
    ramp_steps: int = 100       # Su's ramp: r goes 0 → 1 in this many updates, then stays at 1
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
    attn_layers: int = 6          # the brief's attention-scale demo: Pre-LN, one head of width 64
    attn_d_model: int = 64
    attn_lr: float = 1e-3
    attn_steps: int = 0           # 0: the training runs are full-budget only
    attn_batch: int = 64
    mup_widths: tuple[int, ...] = (32, 128, 512)
    mup_log2_lrs: tuple[int, ...] = (-12, -10, -8, -6, -4)
    mup_steps: int = 10
    mup_seeds: tuple[int, ...] = (0,)
    lm_widths: tuple[int, ...] = ()   # the μP transfer on a Transformer LM (full budget only; () = not run)
    lm_log2_lrs: tuple[int, ...] = ()
    lm_steps: int = 0
    lm_seeds: tuple[int, ...] = (0,)
    lm_vocab: int = 32                # MarkovLanguage(lm_vocab, seed=0): a synthetic second-order Markov language
    lm_batch: int = 32
    lm_seq_len: int = 64
    lm_layers: int = 2
    lm_heads: int = 4                 # fixed: the head width grows with d_model


QUICK = SortConfig()  # the size, seed 0: 10-13 s CPU per 200-step run on one thread
FULL = SortConfig(seeds=(0, 1, 2), grid_d_model=256, grid_steps=2000, grid_layers=(6, 12, 24, 48, 96),
                  grid_lrs=(3e-4, 1e-3, 3e-3), grid_warmups=(0, 100, 1000),
                  grid_norms=("post", "pre", "deepnorm", "rezero", "pre-ramp"), attn_steps=200,
                  mup_widths=(32, 128, 512, 2048), mup_log2_lrs=tuple(range(-13, -2)), mup_steps=20,
                  mup_seeds=(0, 1, 2), lm_widths=(128, 256, 512, 1024, 2048),
                  lm_log2_lrs=tuple(range(-14, -3)), lm_steps=500, lm_seeds=(0, 1, 2))


@dataclasses.dataclass
class RunResult:
    """Loss per step, final loss (mean of the tail), accuracy on fresh sequences, and the model."""

    losses: list[float]
    final_loss: float
    accuracy: float
    model: TransformerStack


def build_stack(cfg: SortConfig, norm: str, *, attention: str = "sqrt", n_layers: int | None = None,
                d_model: int | None = None, n_heads: int | None = None) -> TransformerStack:
    """The sorting model (LeCun init) with the attention scale ``attention``.

    ``sqrt``: logits q·k/√d_head; ``unscaled``: q·k; ``t5``: q·k with the query rows of W_q drawn √d_head
    times smaller (T5's init), the same logits as ``sqrt`` at init.
    """
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
    n_layers = cfg.n_layers if n_layers is None else n_layers
    d_model = cfg.d_model if d_model is None else d_model
    n_heads = cfg.n_heads if n_heads is None else n_heads
    model = TransformerStack(cfg.vocab, cfg.seq_len, d_model, n_heads, n_layers, norm=norm,
                             attn_scale=None if attention == "sqrt" else 1.0)
    if attention == "t5":
        with torch.no_grad():
            for block in model.blocks:
                block.qkv.weight[:d_model].div_(math.sqrt(block.d_head))
    return model


def train_sorting(cfg: SortConfig, norm: str, *, seed: int = 0, n_layers: int | None = None,
                  lr: float | None = None, warmup: int = 0, steps: int | None = None,
                  d_model: int | None = None, n_heads: int | None = None, batch: int | None = None,
                  attention: str = "sqrt", device: torch.device | str = "cpu", progress=None) -> RunResult:
    """Train a ``TransformerStack`` of residual form ``norm`` on sorting; ramps advance 1/ramp_steps per step.

    Keyword arguments override the config's depth, learning rate, steps, width, heads and batch size;
    ``warmup`` is a linear warm-up length in steps (0: none); ``attention`` as in ``build_stack``.

    ``progress``: an optional callable (e.g. a tqdm's ``update``) called once per step.
    """
    n_layers = cfg.n_layers if n_layers is None else n_layers
    lr = cfg.lr if lr is None else lr
    steps = cfg.steps if steps is None else steps
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup!r}")
    batch = cfg.batch if batch is None else batch
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    torch.manual_seed(seed)
    model = build_stack(cfg, norm, attention=attention, n_layers=n_layers, d_model=d_model,
                        n_heads=n_heads).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    gen = torch.Generator().manual_seed(10_000 + seed)
    losses = []
    for _ in range(steps):
        x, y = sorting_batch(batch, cfg.seq_len, cfg.vocab, generator=gen, device=device)
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


SWAP_MODES = ("branch", "delete")


@torch.no_grad()
def swap_test(model: TransformerStack, cfg: SortConfig, *, seed: int = 0, mode: str = "branch",
              device: torch.device | str = "cpu") -> torch.Tensor:
    """Loss increase when block t+1 works from block t's input x_t instead of its own x_{t+1} (t = 0 … L−2).

    The "depth is partly width" probe. ``mode="branch"`` (the probe of the argument) keeps the stream and
    swaps only what block t+1 reads: x_{t+2} is replaced by x_{t+1} + (block_{t+1}(x_t) − x_t), i.e. for
    Pre-Norm x_{t+1} + F_{t+1}(Norm x_t): block t+1 adds the update it would compute from x_t. For Post-Norm
    the same formula swaps the update the block makes to its input. ``mode="delete"`` feeds block t+1 the
    input x_t and drops the output of block t altogether, which is the same as deleting block t (a
    different, coarser probe). Returns (L − 1,) loss differences on ``cfg.eval_size`` fresh sequences drawn
    from a generator seeded by 30 000 + ``seed``.
    """
    if mode not in SWAP_MODES:
        raise ValueError(f"mode must be one of {SWAP_MODES}, got {mode!r}")
    gen = torch.Generator().manual_seed(30_000 + seed)
    x, y = sorting_batch(cfg.eval_size, cfg.seq_len, cfg.vocab, generator=gen, device=device)

    def loss_with(swap: int | None) -> float:
        h = model.tok(x) + model.pos[: x.shape[1]]
        prev = h
        for i, block in enumerate(model.blocks):
            if swap is not None and i == swap + 1:
                out = block(prev) if mode == "delete" else h + (block(prev) - prev)
            else:
                out = block(h)
            prev, h = h, out
        logits = model.head(model.final_norm(h))
        return F.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1)).item()

    base = loss_with(None)
    return torch.tensor([loss_with(t) - base for t in range(len(model.blocks) - 1)], dtype=torch.float64)
