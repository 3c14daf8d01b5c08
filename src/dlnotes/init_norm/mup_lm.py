"""μP versus the standard parameterisation for a small Transformer language model (Tensor Programs V).

``TransformerLM``: token + learned position embeddings (N(0, 1)), Pre-Norm ``TransformerBlock`` s with a
causal mask, a final LN and a bias-free readout. ``n_heads`` is fixed, so the head width grows with
``d_model``. With width multiplier r = d_model / base_width:

- ``param="sp"``: hidden matrices LeCun-normal, readout LeCun-normal, attention logits / √d_head, one Adam
  learning rate for every tensor;
- ``param="mup"`` (Adam, in-eq-mup): hidden matrices LeCun-normal with learning rate η / r; embeddings,
  biases, LN gains and the readout keep η; the readout starts at zero and its input is multiplied by 1/r
  (mup's ``MuReadout``); attention logits × √(base d_head) / d_head, i.e. 1/d_head scaling that equals
  1/√d_head at the base width (mup's README uses 8/d for the same reason).

``lm_lr_sweep`` trains one model per (width, learning rate) on fresh batches of a ``MarkovLanguage`` and
returns the final training loss, for the "the optimum learning rate drifts with width in SP and stays put
in μP" figure.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlnotes.init_norm.blocks import TransformerBlock
from dlnotes.init_norm.coord_check import mup_param_groups
from dlnotes.init_norm.markov import MarkovLanguage

__all__ = ["TransformerLM", "train_lm", "lm_batches", "lm_lr_sweep"]


class TransformerLM(nn.Module):
    """Causal Pre-Norm Transformer LM; tokens (B, n) int → next-token logits (B, n, vocab)."""

    def __init__(self, vocab: int, seq_len: int, d_model: int, *, n_heads: int = 4, n_layers: int = 2,
                 param: str = "mup", base_width: int = 128) -> None:
        super().__init__()
        if param not in ("sp", "mup"):
            raise ValueError(f"param must be 'sp' or 'mup', got {param!r}")
        for name, value in (("vocab", vocab), ("seq_len", seq_len), ("d_model", d_model),
                            ("n_layers", n_layers), ("base_width", base_width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if base_width % n_heads:
            raise ValueError(f"n_heads must divide base_width={base_width}, got {n_heads!r}")
        self.param, self.width_mult = param, d_model / base_width
        d_head, base_head = d_model // n_heads, base_width // n_heads
        scale = math.sqrt(base_head) / d_head if param == "mup" else None  # None: 1/√d_head
        self.tok = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.tok.weight)
        self.pos = nn.Parameter(torch.randn(seq_len, d_model))
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, norm="pre", attn_scale=scale)
                                    for _ in range(n_layers))  # checks d_model % n_heads
        self.final_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        with torch.no_grad():
            if param == "mup":
                self.head.weight.zero_()
            else:
                self.head.weight.normal_(0.0, d_model ** -0.5)
        self.register_buffer("causal", torch.ones(seq_len, seq_len, dtype=torch.bool).tril(), persistent=False)

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The weights whose two dimensions both grow with width (μP's "matrix-like" parameters)."""
        return [lin.weight for b in self.blocks for lin in (b.qkv, b.out, b.ff1, b.ff2)]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.tok(tokens) + self.pos[:n]
        mask = self.causal[:n, :n]
        for block in self.blocks:
            x = block(x, mask)
        h = self.final_norm(x)
        return self.head(h / self.width_mult if self.param == "mup" else h)


def train_lm(language: MarkovLanguage, d_model: int, lr: float, *, param: str = "mup", steps: int = 100,
             batch: int = 32, seq_len: int = 32, n_heads: int = 4, n_layers: int = 2, base_width: int = 128,
             tail: int = 10, seed: int = 0, tokens: torch.Tensor | None = None,
             device: torch.device | str = "cpu", progress=None) -> float:
    """Final training loss (mean of the last ``tail`` steps, nats) of one model; ``inf`` if it diverged.

    The loss counts the targets with two tokens of context (positions 2 … n−1), whose best value is
    ``language.entropy_rate()``. ``tokens``: (steps, batch, seq_len), the batches to train on (default: drawn
    from the language with a generator seeded by ``seed``, one fresh batch per step).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if tokens is None:
        tokens = lm_batches(language, steps, batch, seq_len, seed=seed)
    if tokens.ndim != 3 or tokens.shape[0] < steps:
        raise ValueError(f"tokens must be (>= steps={steps}, batch, seq_len), got {tuple(tokens.shape)}")
    torch.manual_seed(seed)
    model = TransformerLM(language.vocab, tokens.shape[2], d_model, n_heads=n_heads, n_layers=n_layers,
                          param=param, base_width=base_width).to(device)
    opt = torch.optim.Adam(mup_param_groups(model, lr), betas=(0.9, 0.98), eps=1e-8)
    losses = []
    for step in range(steps):
        x = tokens[step].to(device)
        logits = model(x[:, :-1])[:, 1:]  # predict x_t from x_0 … x_{t-1}, for t >= 2
        loss = F.cross_entropy(logits.reshape(-1, language.vocab), x[:, 2:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if progress is not None:
            progress()
        if not math.isfinite(losses[-1]):  # diverged: count the skipped steps as done
            for _ in range(steps - len(losses) if progress is not None else 0):
                progress()
            return math.inf
    final = sum(losses[-tail:]) / len(losses[-tail:])
    return final if math.isfinite(final) else math.inf


def lm_batches(language: MarkovLanguage, steps: int, batch: int, seq_len: int, *, seed: int = 0) -> torch.Tensor:
    """``steps`` fresh batches drawn at once (sampling is sequential in position, vectorised over sequences)."""
    gen = torch.Generator().manual_seed(40_000 + seed)
    return language.sample(steps * batch, seq_len, generator=gen).view(steps, batch, seq_len)


def lm_lr_sweep(language: MarkovLanguage, widths: tuple[int, ...], lrs: tuple[float, ...], *,
                param: str = "mup", seeds: tuple[int, ...] = (0,), steps: int = 100, batch: int = 32,
                seq_len: int = 32, progress=None, **train_kw) -> torch.Tensor:
    """Final training loss per (width, learning rate): (len(widths), len(lrs)), averaged over ``seeds``.

    Every run of one seed trains on the same batches (like with like); a diverged run counts as ``inf``
    (so its average is ``inf``); ``train_kw`` goes to ``train_lm``.
    """
    if not lrs or min(lrs) <= 0:
        raise ValueError(f"lrs must be positive learning rates, got {lrs!r}")
    if not widths or not seeds:
        raise ValueError(f"widths and seeds must be non-empty, got {widths!r}, {seeds!r}")
    out = torch.zeros(len(widths), len(lrs), dtype=torch.float64)
    for seed in seeds:
        tokens = lm_batches(language, steps, batch, seq_len, seed=seed)
        for i, width in enumerate(widths):
            for j, lr in enumerate(lrs):
                out[i, j] += train_lm(language, width, lr, param=param, seed=seed, steps=steps, tokens=tokens,
                                      progress=progress, **train_kw)
    return out / len(seeds)
