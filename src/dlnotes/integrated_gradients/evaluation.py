r"""Comparing attribution maps: rank correlation, and deletion / insertion curves (faithfulness).

A *deletion curve* replaces the input components by the baseline's, most important first, and follows the
score; a faithful map makes it fall fast. An *insertion curve* starts from the baseline and puts the input's
components back in the same order; a faithful map makes it rise fast (Petsiuk et al., 2018). Curves here
are normalised by the score change, $(F(x_k) - F(x')) / (F(x) - F(x'))$, so they run from 1 to 0
(deletion) or 0 to 1 (insertion) whatever the size of $F(x) - F(x')$.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dlnotes.integrated_gradients.attribution import Forward, Target, _normalise_target, _outputs_at

__all__ = ["rank_correlation", "PerturbationCurves", "perturbation_curves"]


def _ranks(v: Tensor) -> Tensor:
    """Ranks 0..n−1 along the last axis, ties averaged. v: (B, n) -> (B, n) float64."""
    v = v.detach().double()
    order = v.argsort(dim=-1)
    ranks = torch.empty_like(v)
    ranks.scatter_(-1, order, torch.arange(v.shape[-1], dtype=v.dtype, device=v.device).expand_as(v))
    out = torch.empty_like(ranks)
    for b in range(len(v)):  # average the ranks of tied values
        values, inverse = torch.unique(v[b], return_inverse=True)
        sums = torch.zeros(len(values), dtype=v.dtype, device=v.device).index_add_(0, inverse, ranks[b])
        counts = torch.zeros(len(values), dtype=v.dtype, device=v.device).index_add_(0, inverse,
                                                                                   torch.ones_like(ranks[b]))
        out[b] = (sums / counts)[inverse]
    return out


def rank_correlation(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Spearman's $\rho$ between two maps, per example. a, b: (B, ...) -> (B,) float64.

    ``mask`` (B, ...) bool restricts each example to the components where it is True (for instance the
    pixels where the input differs from the baseline, the only ones integrated gradients can credit).
    Ties get their average rank.
    """
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"a and b must have the same shape (B, ...), got {tuple(a.shape)} and {tuple(b.shape)}")
    if mask is not None and mask.shape != a.shape:
        raise ValueError(f"mask must have the maps' shape {tuple(a.shape)}, got {tuple(mask.shape)}")
    flat_a, flat_b = a.flatten(1), b.flatten(1)
    keep = torch.ones_like(flat_a, dtype=torch.bool) if mask is None else mask.flatten(1).bool()
    rho = torch.empty(len(a), dtype=torch.float64)
    for i in range(len(a)):
        if int(keep[i].sum()) < 2:
            raise ValueError(f"mask must keep at least two components per example, example {i} has "
                             f"{int(keep[i].sum())}")
        r = _ranks(torch.stack([flat_a[i, keep[i]], flat_b[i, keep[i]]]))
        r = r - r.mean(1, keepdim=True)
        rho[i] = (r[0] * r[1]).sum() / (r[0].norm() * r[1].norm()).clamp_min(1e-300)
    return rho


class PerturbationCurves(NamedTuple):
    """Normalised deletion and insertion curves of one ordering, and their areas."""

    fractions: Tensor  # (K,) share of components replaced, 0 … 1
    deletion: Tensor  # (B, K) (F(x with the top k from x′) − F(x′)) / (F(x) − F(x′)); starts at 1
    insertion: Tensor  # (B, K) (F(x′ with the top k from x) − F(x′)) / (F(x) − F(x′)); starts at 0
    deletion_area: Tensor  # (B,) trapezoid area under the deletion curve (small = faithful)
    insertion_area: Tensor  # (B,) area under the insertion curve (large = faithful)


def perturbation_curves(forward: Forward, inputs: Tensor, scores: Tensor,
                        baselines: Tensor | float | None = None, *, target: Target = None,
                        n_points: int = 21) -> PerturbationCurves:
    r"""Deletion and insertion curves of ``forward`` when components go in decreasing order of ``scores``.

    inputs, scores: (B, ...); baselines broadcast to the inputs (None = zeros). At $K$ = ``n_points``
    equally spaced fractions $k / (K - 1)$ of the components, the top-scored ones are swapped between
    input and baseline. Ties in ``scores`` are broken by position (stable sort).
    """
    from dlnotes.integrated_gradients.attribution import _broadcast, _check_inputs

    x = _check_inputs(inputs)
    if not isinstance(scores, Tensor) or scores.shape != x.shape:
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a tensor of the inputs' shape {tuple(x.shape)}, got {got}")
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2, got {n_points!r}")
    base = _broadcast("baselines", baselines, x)
    tgt = _normalise_target(target, x)
    B, n = len(x), x[0].numel()
    order = scores.detach().flatten(1).argsort(dim=1, descending=True, stable=True)  # (B, n)
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(n, device=x.device).expand(B, n))  # rank of each component
    fractions = torch.linspace(0.0, 1.0, n_points, dtype=torch.float64)
    counts = (fractions * n).round().long()  # components swapped at each point
    swapped = position[:, None, :] < counts.to(x.device)[None, :, None]  # (B, K, n)
    flat_x, flat_base = x.flatten(1)[:, None], base.flatten(1)[:, None]
    deleted = torch.where(swapped, flat_base, flat_x).reshape(B * n_points, *x.shape[1:])
    inserted = torch.where(swapped, flat_x, flat_base).reshape(B * n_points, *x.shape[1:])
    rows = None if tgt is None or isinstance(tgt, int) else tgt.repeat_interleave(n_points)
    rows = tgt if rows is None else rows
    both = _outputs_at(forward, torch.cat([deleted, inserted]),
                       rows if rows is None or isinstance(rows, int) else rows.repeat(2), None)
    out_del, out_ins = both.view(2, B, n_points).double().unbind(0)
    start, end = out_ins[:, :1], out_del[:, :1]  # F(x′) and F(x)
    scale = end - start
    deletion, insertion = (out_del - start) / scale, (out_ins - start) / scale
    area = lambda c: torch.trapezoid(c, fractions.to(c.device), dim=1)  # noqa: E731
    return PerturbationCurves(fractions, deletion, insertion, area(deletion), area(insertion))
