"""Decoder log-likelihoods log p(x | z) per example (E9) and dynamic binarisation.

Both sum over every axis but the first, so the reconstruction term and the KL are on one scale (nats
per example): the reduction sets the implicit KL weight. A Gaussian decoder with a fixed σ̃ is, up to
a constant, plain summed squared error times 1/(2σ̃²): relative to that, the KL weight is β = 2σ̃².
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bernoulli_log_likelihood", "gaussian_log_likelihood", "binarize", "check_binary"]


def _check_pair(name: str, out: Tensor, x: Tensor) -> None:
    if not isinstance(x, Tensor) or not isinstance(out, Tensor):
        raise ValueError(f"{name} and x must be tensors")
    if out.shape != x.shape:
        raise ValueError(f"{name} must have the shape of x {tuple(x.shape)}, got {tuple(out.shape)}")
    if x.dim() < 2:
        raise ValueError(f"x must be (B, ...) with at least one axis after the batch, got {tuple(x.shape)}")


def check_binary(x: Tensor) -> None:
    """Raise ValueError unless every entry of x is 0 or 1 (a Bernoulli likelihood needs binary data)."""
    bad = ~((x == 0) | (x == 1))
    if bool(bad.any()):
        found = x[bad].flatten()
        raise ValueError(f"x must be binary (0/1) for a Bernoulli likelihood, got {found.numel()} of {x.numel()} "
                         f"entries that are not, e.g. {found[0].item():.4g} (x ranges over [{x.min().item():.4g}, "
                         f"{x.max().item():.4g}]); binarize it first (dlnotes.vae.binarize), BCE on grey levels is "
                         "not a normalised likelihood")


def bernoulli_log_likelihood(logits: Tensor, x: Tensor, *, check: bool = True) -> Tensor:
    """Σ_pixels log Bernoulli(x; sigmoid(logits)) = −summed BCE. logits, x: (B, ...) -> (B,).

    ``check=False`` skips the binary-data check (for speed on data known to be binary).
    """
    _check_pair("logits", logits, x)
    if check:
        check_binary(x)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_likelihood(mean: Tensor, x: Tensor, sigma: float) -> Tensor:
    """Σ log N(x; mean, σ̃²) = −‖x − mean‖²/(2σ̃²) − (D/2) log(2πσ̃²). mean, x: (B, ...) -> (B,)."""
    _check_pair("mean", mean, x)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    D = x[0].numel()
    sq = (x - mean).pow(2).flatten(1).sum(1)
    return -sq / (2 * sigma**2) - 0.5 * D * math.log(2 * math.pi * sigma**2)


def binarize(x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Dynamic binarisation: each pixel ~ Bernoulli(intensity), drawn afresh at every call. x in [0, 1]."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError("x must be a floating-point tensor of intensities in [0, 1]")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must lie in [0, 1], got range [{x.min().item():.3g}, {x.max().item():.3g}]")
    return torch.bernoulli(x, generator=generator)
