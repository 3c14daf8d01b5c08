r"""Bits per dimension for a decoder trained with squared error: a discretised Gaussian likelihood.

A squared-error decoder predicts a mean image $\hat x$ and defines no probability. Pairing it with a
Gaussian of one scale $\sigma$ and integrating that Gaussian over the bin of each grey level (the two end
bins reach to $\pm\infty$) turns it into a proper distribution $p(x \mid z)$ over the $L$ levels of every
pixel. With a deterministic encoder the evidence lower bound is then
$\log p(x) \ge \log p(x \mid z(x)) + \log p(z(x))$, so

$$ \text{bits}(x) = -\log_2 p(x \mid z(x)) - \log_2 p(z(x)) \ge -\log_2 p(x), $$

and dividing by the number of values $C \cdot H \cdot W$ gives bits per dimension, the unit of the VQ-VAE
paper's CIFAR-10 table. Everything here works on images scaled to $[0, 1]$, levels at $k / (L - 1)$.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["discretized_gaussian_nll", "fit_scale", "bits_per_dim"]

_GRID_TOLERANCE = 1e-3  # in units of one grey-level step: float32 storage of k / 255 is well inside


def _check_levels(levels: int) -> None:
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 2:
        raise ValueError(f"levels must be an int >= 2 (grey levels per value), got {levels!r}")


def _check_grid(x: Tensor, levels: int) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must lie in [0, 1], got values from {x.min().item():.4g} to {x.max().item():.4g}")
    steps = x.double() * (levels - 1)
    off = (steps - steps.round()).abs().max().item() if x.numel() else 0.0
    if off > _GRID_TOLERANCE:
        raise ValueError(f"x must lie on the grid k / (levels - 1) for levels = {levels}; "
                         f"a value is {off:.3g} of a step away")


def _log_bin_mass(lo: Tensor, hi: Tensor) -> Tensor:
    """log(Φ(hi) − Φ(lo)) for standardised bin edges lo < hi, accurate in both tails."""
    upper = lo >= 0  # both edges in the upper tail: use Φ(−lo) − Φ(−hi) instead
    a = torch.where(upper, -hi, lo)
    b = torch.where(upper, -lo, hi)
    log_b = torch.special.log_ndtr(b)
    return log_b + torch.log(-torch.expm1(torch.special.log_ndtr(a) - log_b))


def discretized_gaussian_nll(x: Tensor, mean: Tensor, scale: float | Tensor, levels: int = 256) -> Tensor:
    r"""$-\ln p(x \mid \hat x)$ in nats, element by element.

    x: (...) values on the grid k / (levels − 1) in [0, 1]; mean: broadcastable to x, any real value;
    scale: σ > 0, a float or a tensor broadcastable to x. Each level k owns the bin
    [(k − ½)/(L − 1), (k + ½)/(L − 1)], the first and last bins extended to ∓∞, so the L probabilities
    of one value sum to 1. Computed in float64.
    """
    _check_levels(levels)
    _check_grid(x, levels)
    scale_t = torch.as_tensor(scale, dtype=torch.float64, device=x.device)
    if not bool(torch.isfinite(scale_t).all()) or bool((scale_t <= 0).any()):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    x64, mean64 = x.double(), torch.as_tensor(mean, device=x.device).double()
    half = 0.5 / (levels - 1)
    k = (x64 * (levels - 1)).round()
    lo = torch.where(k == 0, -math.inf, (x64 - half - mean64) / scale_t)
    hi = torch.where(k == levels - 1, math.inf, (x64 + half - mean64) / scale_t)
    return -_log_bin_mass(lo, hi)


def fit_scale(x: Tensor, mean: Tensor, levels: int = 256, candidates: Iterable[float] | None = None) -> float:
    r"""The σ among ``candidates`` with the smallest mean NLL of x given mean (fit it on training data).

    x, mean: (...) as in :func:`discretized_gaussian_nll`. Candidates default to 121 values spaced
    evenly in log from 1e-4 to 1.
    """
    grid = list(candidates) if candidates is not None else torch.logspace(-4, 0, 121).tolist()
    if not grid:
        raise ValueError("candidates must hold at least one scale")
    costs = [discretized_gaussian_nll(x, mean, s, levels).mean().item() for s in grid]
    return float(grid[min(range(len(grid)), key=costs.__getitem__)])


def bits_per_dim(recon_nats: Tensor | float, code_bits: Tensor | float, dims: int) -> float:
    r"""Mean over images of $(-\log_2 p(x \mid z) - \log_2 p(z)) / \text{dims}$.

    recon_nats: (N,) or a float, $-\ln p(x \mid z)$ of each whole image in nats; code_bits: (N,) or a
    float, $-\log_2 p(z)$ of each image's code map (a uniform prior: $m^2 \log_2 K$); dims: C·H·W.
    """
    if not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be an int >= 1, got {dims!r}")
    total = torch.as_tensor(recon_nats, dtype=torch.float64) / math.log(2) + torch.as_tensor(code_bits,
                                                                                              dtype=torch.float64)
    return total.mean().item() / dims
