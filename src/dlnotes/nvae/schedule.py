r"""KL warm-up (N10), KL balancing (N11) and the paper's rule for groups per scale (``--ada_groups``).

Warm-up: $\beta_t = \max(\min((t - t_0) / (pT), 1), \beta_{\min})$ with $p = 0.3$, $t_0 = 10^{-4} T$.
Balancing, only while $\beta_t < 1$: $c_l \propto (\overline{\mathrm{KL}}_l + 0.01) / \alpha_l$,
rescaled to mean 1 and detached, with $\alpha_l \propto 4^s / G_s$ for a group at scale $s$ (0 = top).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["kl_warmup", "group_alphas", "balance_coefficients", "groups_per_scale"]


def kl_warmup(step: int, total_steps: int, *, portion: float = 0.3, const_portion: float = 1e-4,
              min_coeff: float = 1e-4) -> float:
    """β at optimiser step ``step`` of ``total_steps``: 1 after ``portion`` of training (N10)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps!r}")
    if not 0 < portion <= 1:
        raise ValueError(f"portion must be in (0, 1], got {portion!r}")
    if not 0 <= const_portion < 1:
        raise ValueError(f"const_portion must be in [0, 1), got {const_portion!r}")
    if not 0 < min_coeff <= 1:
        raise ValueError(f"min_coeff must be in (0, 1], got {min_coeff!r}")
    t0 = const_portion * total_steps
    return max(min((step - t0) / (portion * total_steps), 1.0), min_coeff)


def group_alphas(groups: Sequence[int]) -> Tensor:
    r"""$\alpha_l \propto 4^s / G_s$ per group, top-down order; groups: $G_s$ per scale, top (coarsest) first.

    Returns (L,) with minimum 1. A group's latent map has $4^s$ times the positions of a top-scale one.
    """
    if not groups or any(isinstance(g, bool) or int(g) != g or g < 1 for g in groups):
        raise ValueError(f"groups must be positive counts per scale, got {groups!r}")
    alpha = torch.cat([torch.full((int(g),), 4.0 ** s / int(g)) for s, g in enumerate(groups)])
    return alpha / alpha.min()


def balance_coefficients(kl: Tensor, alphas: Tensor, beta: float) -> Tensor:
    """Balancing coefficients c (L,), mean 1, without gradient; all ones once ``beta`` >= 1.

    kl: (B, L) per-example KL of each group (or (L,) already averaged); alphas: (L,) from :func:`group_alphas`.
    """
    if alphas.dim() != 1 or not bool((alphas > 0).all()):
        raise ValueError(f"alphas must be (L,) and > 0, got shape {tuple(alphas.shape)}")
    if beta != beta:
        raise ValueError(f"beta must be a number, got {beta!r}")
    if kl.dim() not in (1, 2) or kl.shape[-1] != alphas.shape[0]:
        raise ValueError(f"kl must be (B, L) or (L,) with L = {alphas.shape[0]}, got {tuple(kl.shape)}")
    if beta >= 1.0:
        return torch.ones_like(alphas, dtype=kl.dtype, device=kl.device)
    mean_kl = kl.detach().abs().mean(0) if kl.dim() == 2 else kl.detach().abs()
    coeff = (mean_kl + 0.01) / alphas.to(kl.device, kl.dtype)
    return coeff / coeff.mean()


def groups_per_scale(num_scales: int, finest_groups: int, *, adaptive: bool = True, minimum: int = 1) -> tuple[int, ...]:
    """Groups at each scale, top (coarsest) first: the finest has ``finest_groups``, each coarser half
    as many (``adaptive``), never fewer than ``minimum``. FFHQ: (5, 16, min 4) → (4, 4, 4, 8, 16)."""
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (num_scales, finest_groups, minimum)):
        raise ValueError(f"num_scales, finest_groups and minimum must be ints >= 1, got "
                         f"{num_scales!r}, {finest_groups!r}, {minimum!r}")
    counts, g = [], finest_groups
    for _ in range(num_scales):
        counts.append(max(g, minimum) if adaptive else finest_groups)
        g //= 2
    return tuple(reversed(counts))
