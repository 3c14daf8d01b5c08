"""Importance-weighted log-likelihood estimates log p̂ₖ(x) for any latent-variable model (E17).

A model exposes ``log_importance_weights(x, k) -> (k, B)``: the values log p(x, zᵢ) − log q(zᵢ | x)
for k independent zᵢ ~ q(z | x), running its encoder once per example. Then

    log p̂ₖ(x) = logsumexp_i wᵢ − log k,

a lower bound on log p(x) in expectation that rises with k (Burda et al.); k = 1 is the ELBO in
expectation, and with the exact posterior as q every weight equals log p(x), so the estimate is exact
for every k. :func:`importance_log_likelihood` streams over chunks of samples, so k = 5000 fits in
memory.
"""
from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

__all__ = ["ImportanceWeighted", "importance_log_likelihood", "gaussian_log_density"]


class ImportanceWeighted(Protocol):
    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        """x: (B, ...) -> (k, B): log p(x, zᵢ) − log q(zᵢ | x), zᵢ ~ q(z | x) independent."""
        ...


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag e^logvar) summed over the last axis; broadcasts; returns (...,)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@torch.no_grad()
def importance_log_likelihood(model: ImportanceWeighted, x: Tensor, *, k: int, chunk_size: int = 500) -> Tensor:
    """Importance-sampled log p̂ₖ(x) per example, in nats: (B,).

    x: (B, ...) a batch the model accepts; k: samples per example (≥ 1); chunk_size: samples drawn
    per call of ``model.log_importance_weights`` (≥ 1), so memory grows with chunk_size, not k.
    Chunks are merged with a running logsumexp, which equals the one-shot value up to rounding.
    """
    _check_positive_int("k", k)
    _check_positive_int("chunk_size", chunk_size)
    if not isinstance(x, Tensor) or x.dim() < 1 or len(x) == 0:
        raise ValueError(f"x must be a tensor with a non-empty batch axis, got {getattr(x, 'shape', x)!r}")
    if not callable(getattr(model, "log_importance_weights", None)):
        raise ValueError("model must have a log_importance_weights(x, k) method returning (k, B)")
    total: Tensor | None = None
    done = 0
    while done < k:
        n = min(chunk_size, k - done)
        w = model.log_importance_weights(x, n)
        if not isinstance(w, Tensor) or w.shape != (n, len(x)):
            shape = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
            raise ValueError(f"log_importance_weights(x, {n}) must return shape ({n}, {len(x)}), got {shape}")
        part = torch.logsumexp(w, dim=0)
        total = part if total is None else torch.logaddexp(total, part)
        done += n
    assert total is not None
    return total - math.log(k)
