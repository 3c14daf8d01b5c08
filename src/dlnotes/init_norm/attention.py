"""Scaled dot-product attention written out for teaching, and what the scale does to the softmax.

``attention`` equals ``torch.nn.functional.scaled_dot_product_attention`` (in-eq-attention); the
statistics functions measure how peaked the softmax rows are for random unit-variance q and k;
``retrieval_losses`` trains a single attention layer with and without the scale on a key-retrieval task.
"""
from __future__ import annotations

import math

import torch

__all__ = ["attention", "softmax_jacobian_norm", "attention_row_stats", "SCALE_MODES", "logit_scale",
           "retrieval_losses"]

SCALE_MODES = ("unscaled", "sqrt", "t5", "mup", "logn")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float | None = None,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask) v; q: (..., n, d), k: (..., m, d), v: (..., m, d_v) → (..., n, d_v).

    ``scale`` defaults to 1/√d. ``mask`` is boolean (True = may attend) or additive float, broadcast to
    (..., n, m), with the semantics of ``scaled_dot_product_attention``'s ``attn_mask``.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension, got {q.shape[-1]} and {k.shape[-1]}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        if mask.dtype == torch.bool:
            logits = logits.masked_fill(~mask, float("-inf"))
        else:
            logits = logits + mask
    return torch.softmax(logits, dim=-1) @ v


def softmax_jacobian_norm(p: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of diag(p) − p pᵀ for each row p of (..., n): √(Σp² − 2Σp³ + (Σp²)²)."""
    s2 = (p * p).sum(-1)
    return (s2 - 2 * (p ** 3).sum(-1) + s2 ** 2).clamp_min(0).sqrt()


def logit_scale(mode: str, d: int, n: int) -> float:
    """Factor on q·k for a scaling ``mode``: unscaled 1, sqrt 1/√d, mup 1/d, logn log₅₁₂(n)/√d.

    ``t5`` returns 1 for the logits: T5 moves 1/√d into the init of W_q (see ``attention_row_stats``).
    """
    if mode not in SCALE_MODES:
        raise ValueError(f"mode must be one of {SCALE_MODES}, got {mode!r}")
    return {"unscaled": 1.0, "t5": 1.0, "sqrt": 1 / math.sqrt(d), "mup": 1 / d,
            "logn": math.log(n) / math.log(512) / math.sqrt(d)}[mode]


@torch.no_grad()
def attention_row_stats(d: int, n: int, mode: str = "sqrt", *, rows: int = 512,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Softmax rows of random attention: q, k with iid N(0, 1) entries (T5: q from an init ÷√d).

    Returns per-row ``max_prob``, ``entropy`` and ``jacobian`` (Frobenius norm of the softmax Jacobian),
    each of shape (rows,).
    """
    for name, value in (("d", d), ("n", n), ("rows", rows)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    q = torch.randn(rows, 1, d, generator=generator)
    k = torch.randn(rows, n, d, generator=generator)
    if mode == "t5":
        q = q / math.sqrt(d)
    logits = (q @ k.transpose(-2, -1)).squeeze(1) * logit_scale(mode, d, n)
    p = torch.softmax(logits, dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    return {"max_prob": p.max(-1).values, "entropy": entropy, "jacobian": softmax_jacobian_norm(p)}


def retrieval_losses(d: int = 64, mode: str = "sqrt", *, seed: int = 0, steps: int = 300, n_keys: int = 32,
                     labels: int = 16, batch: int = 64, noise: float = 0.5, lr: float = 1e-3) -> torch.Tensor:
    """Training losses of one attention layer on key retrieval, with ``mode`` "sqrt" (1/√d) or "unscaled".

    Every step draws ``batch`` fresh sets of ``n_keys`` keys in R^d (iid N(0, 1)), each with one of ``labels``
    labels, and a query = one of the keys + ``noise`` · N(0, I). The layer scores the keys with
    (q W_q) · (k W_k) × scale, W_q and W_k (d × d) LeCun-normal and trained by Adam at ``lr``; the loss is
    −log of the attention mass on the keys that carry the queried key's label. Returns the ``steps``
    losses (float64). Draws the weights from ``torch.manual_seed(seed)`` and the data from a generator
    seeded by ``seed``.
    """
    if mode not in ("sqrt", "unscaled"):
        raise ValueError(f"mode must be 'sqrt' or 'unscaled', got {mode!r}")
    for name, value in (("d", d), ("steps", steps), ("n_keys", n_keys), ("labels", labels), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    w_q = torch.nn.Parameter(torch.randn(d, d) / math.sqrt(d))
    w_k = torch.nn.Parameter(torch.randn(d, d) / math.sqrt(d))
    opt = torch.optim.Adam([w_q, w_k], lr=lr)
    scale = logit_scale(mode, d, n_keys)
    rows = torch.arange(batch)
    losses = []
    for _ in range(steps):
        keys = torch.randn(batch, n_keys, d, generator=gen)
        lab = torch.randint(0, labels, (batch, n_keys), generator=gen)
        pick = torch.randint(0, n_keys, (batch,), generator=gen)
        q = keys[rows, pick] + noise * torch.randn(batch, d, generator=gen)
        logits = ((q @ w_q)[:, None, :] * (keys @ w_k)).sum(-1) * scale
        right = lab == lab[rows, pick][:, None]
        logp = torch.log_softmax(logits, -1).masked_fill(~right, float("-inf"))
        loss = -torch.logsumexp(logp, -1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float64)
