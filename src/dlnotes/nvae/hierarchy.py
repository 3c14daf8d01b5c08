r"""What each group encodes: keep $z_{\le k}$ from an image's posterior, sample the rest, and measure.

For $k = 0, \dots, L$ (groups kept, top first) :func:`hierarchy_profile` draws several completions of the
kept groups from the prior and measures how close they stay to the source image and how much they differ
from each other. Coarse groups "fix the shape" when keeping them already makes the samples resemble the
source and removes most of the spread between draws.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["HierarchyProfile", "hierarchy_profile", "pixel_correlation"]


class HierarchyProfile(NamedTuple):
    keep: list  # k = 0..L, the number of groups taken from the posterior (top first)
    similarity: Tensor  # (L + 1,) mean Pearson correlation of a sample's pixels with its source image
    baseline: Tensor  # (L + 1,) the same with another image of the batch (what chance gives)
    diversity: Tensor  # (L + 1,) per-pixel standard deviation across the draws, mean over pixels and images


def pixel_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation over pixels of each pair: a, b (..., C, H, W) → (...). A constant image gives 0."""
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.flatten(-3).double(), b.flatten(-3).double()
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    norm = a.norm(dim=-1) * b.norm(dim=-1)
    return torch.where(norm > 0, (a * b).sum(-1) / norm.clamp_min(1e-300), torch.zeros_like(norm))


@torch.no_grad()
def hierarchy_profile(model, x: Tensor, *, draws: int = 8, temperature: float = 1.0,
                      generator: torch.Generator | None = None) -> HierarchyProfile:
    """Keep the first k groups of one posterior sample of each image, draw the rest ``draws`` times.

    model: an :class:`~dlnotes.nvae.NVAE` (or anything with ``model(x, generator=...).zs``, top first, and
    ``model.generate(n, fixed=..., temperature=..., generator=...).probs``), used as it is (call
    ``model.eval()`` first for BN's running statistics). x: (B, C, H, W) binary images, B >= 2 (the baseline
    correlates each sample with the next image of the batch, ``x.roll(1, 0)``). The draws of all images
    run as one batch of ``draws · B``. Returns a :class:`HierarchyProfile` with one value per k = 0..L.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 2:
        raise ValueError(f"draws must be an int >= 2, got {draws!r}")
    if x.dim() != 4 or x.shape[0] < 2:
        raise ValueError(f"x must be (B, C, H, W) with B >= 2, got {tuple(x.shape)}")
    zs = model(x, generator=generator).zs
    other = x.roll(1, 0)
    similarity, baseline, diversity = [], [], []
    for k in range(len(zs) + 1):
        fixed = [z.repeat(draws, *([1] * (z.dim() - 1))) for z in zs[:k]]  # (draws · B, ...), draw-major
        probs = model.generate(draws * x.shape[0], fixed=fixed, temperature=temperature,
                               generator=generator).probs
        probs = probs.reshape(draws, *x.shape).float()
        similarity.append(pixel_correlation(probs, x.expand_as(probs).float()).mean())
        baseline.append(pixel_correlation(probs, other.expand_as(probs).float()).mean())
        diversity.append(probs.std(0).mean())
    return HierarchyProfile(list(range(len(zs) + 1)), torch.stack(similarity).float(),
                            torch.stack(baseline).float(), torch.stack(diversity))
