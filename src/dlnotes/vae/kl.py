"""The Gaussian KL divergence of the VAE and the reparameterised sample (equations E5–E8, E10).

Notation: the encoder gives ``mu`` and ``logvar`` (log σ²) of a diagonal Gaussian q(z | x); the prior
is N(prior_mu, I) with ``prior_mu = 0`` for the plain VAE and a learned class mean for Su's
conditional VAE.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["KLParts", "gaussian_kl", "gaussian_kl_parts", "reparameterize", "check_gaussian"]


class KLParts(NamedTuple):
    """KL(N(μ, σ²) ‖ N(m, I)) split as in E6; each (B,), both ≥ 0, ``mean + variance`` is the KL."""

    mean: Tensor  # ½ Σ (μ − m)²
    variance: Tensor  # ½ Σ (σ² − log σ² − 1), zero iff σ = 1


def check_gaussian(mu: Tensor, logvar: Tensor, prior_mu: Tensor | None = None) -> None:
    """Raise ValueError unless ``mu`` and ``logvar`` (and ``prior_mu``) are float tensors of one shape."""
    if not isinstance(mu, Tensor) or not mu.is_floating_point():
        raise ValueError(f"mu must be a floating-point tensor, got {type(mu).__name__}")
    if not isinstance(logvar, Tensor) or logvar.shape != mu.shape:
        shape = tuple(logvar.shape) if isinstance(logvar, Tensor) else type(logvar).__name__
        raise ValueError(f"logvar must have the shape of mu {tuple(mu.shape)}, got {shape}")
    if mu.dim() < 1:
        raise ValueError("mu must have at least one axis (the latent axis last)")
    if prior_mu is not None:
        if not isinstance(prior_mu, Tensor):
            raise ValueError(f"prior_mu must be a tensor or None, got {type(prior_mu).__name__}")
        try:
            torch.broadcast_shapes(prior_mu.shape, mu.shape)
        except RuntimeError:
            raise ValueError(f"prior_mu of shape {tuple(prior_mu.shape)} does not broadcast to mu "
                             f"{tuple(mu.shape)}") from None


def gaussian_kl_parts(mu: Tensor, logvar: Tensor, prior_mu: Tensor | None = None) -> KLParts:
    """The mean and variance parts of KL(N(mu, diag e^logvar) ‖ N(prior_mu, I)) (E6), each summed
    over the last axis.

    mu, logvar: (..., d); prior_mu: None (zero) or broadcastable to mu. Returns two (...,) tensors.
    """
    check_gaussian(mu, logvar, prior_mu)
    diff = mu if prior_mu is None else mu - prior_mu
    mean = 0.5 * diff.pow(2).sum(-1)
    variance = 0.5 * (logvar.exp() - logvar - 1).sum(-1)
    return KLParts(mean=mean, variance=variance)


def gaussian_kl(mu: Tensor, logvar: Tensor, prior_mu: Tensor | None = None) -> Tensor:
    """Closed-form KL(N(mu, diag e^logvar) ‖ N(prior_mu or 0, I)) summed over the last axis (E5, E10).

    mu, logvar: (B, d) (any leading axes); prior_mu: None or broadcastable to mu. Returns (B,) nats.
    """
    parts = gaussian_kl_parts(mu, logvar, prior_mu)
    return parts.mean + parts.variance


def reparameterize(mu: Tensor, logvar: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """One sample z = μ + σ ⊙ ε, ε ~ N(0, I), differentiable in μ and log σ² (E8).

    mu, logvar: (..., d); returns (..., d). ``generator`` makes the noise reproducible.
    """
    check_gaussian(mu, logvar)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps
