r"""Integrated gradients: split $F(x) - F(x')$ among the input components (Sundararajan et al., 2017).

Book convention (the paper's): the straight path $\gamma(\alpha) = x' + \alpha (x - x')$ runs from the
baseline $x'$ ($\alpha=0$) to the input $x$ ($\alpha=1$), and

.. math::
    \mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1 \partial_i F(\gamma(\alpha))\, d\alpha, \qquad
    \sum_i \mathrm{IG}_i(x) = F(x) - F(x')  \quad\text{(completeness)}.

Su's post runs the path from $x$ to $x'$ and ranks by $|\cdot|$, so its scores are $|\mathrm{IG}_i|$.
The integral becomes a quadrature $\sum_k w_k\, \partial_i F(\gamma(\alpha_k))$ with $\sum_k w_k = 1$.
All $S \cdot B$ path points of a batch go through ``forward`` together, in chunks of at most
``internal_batch_size`` rows. Put the model in ``eval()`` mode first: BatchNorm in training mode
couples the path points of one batch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["Forward", "Target", "METHODS", "Quadrature", "Attribution", "PathProfile", "quadrature", "integrated_gradients", "path_integrated_gradients", "gradient", "gradient_times_input", "alpha_weighted_gradients", "path_profile"]

Forward = Callable[[Tensor], Tensor]
Target = Union[int, Sequence[int], Tensor, None]
METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


class Quadrature(NamedTuple):
    """An S-point rule $\\int_0^1 g \\approx \\sum_k w_k g(\\alpha_k)$."""

    alphas: Tensor  # (S,) float64 nodes in [0, 1]
    weights: Tensor  # (S,) float64 weights, summing to 1


class Attribution(NamedTuple):
    r"""What every attribution method here returns.

    ``gap`` is the completeness gap $F(x) - F(x') - \sum_i a_i$, the part of the output change that
    the attributions miss. captum's convergence delta (``return_convergence_delta=True``) is
    $\sum_i a_i - (F(x) - F(x'))$: the same number with the opposite sign, ``gap == -delta``.
    """

    attributions: Tensor  # same shape as the inputs, (B, ...)
    gap: Tensor  # (B,) completeness gap F(x) − F(x′) − Σ_i attributions_i  (= −captum's delta)
    output_change: Tensor  # (B,) F(x) − F(x′)


class PathProfile(NamedTuple):
    """F and ∇F at P equally spaced points of the straight path, for pictures of the path."""

    alphas: Tensor  # (P,) float64, 0 … 1
    outputs: Tensor  # (B, P) F(γ(α_p))
    gradients: Tensor  # (B, P, ...) ∇F(γ(α_p))
    cumulative: Tensor  # (B, P, ...) (x − x′) ⊙ ∫₀^{α_p} ∇F(γ) dα by the trapezoid rule; [:, -1] = IG


def quadrature(method: str = "gausslegendre", n_steps: int = 50) -> Quadrature:
    r"""Nodes and weights of ``method`` with ``n_steps`` points on $[0, 1]$, in float64.

    Riemann rules use $w_k = 1/m$ and $\alpha_k = (k-1)/m$ (left; the post's rule),
    $k/m$ (right; the paper's rule) or $(k-\tfrac12)/m$ (middle); the trapezoid rule uses
    $\alpha_k = (k-1)/(m-1)$ and $w_k = 1/(m-1)$, halved at both ends, so that $\sum_k w_k = 1$.
    """
    _check_method_and_steps(method, n_steps)
    m = n_steps
    k = torch.arange(1, m + 1, dtype=torch.float64)
    uniform = torch.full((m,), 1.0 / m, dtype=torch.float64)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(m)  # on [−1, 1], Σ weights = 2
        return Quadrature(torch.from_numpy((nodes + 1.0) / 2.0), torch.from_numpy(weights / 2.0))
    if method == "riemann_left":
        return Quadrature((k - 1) / m, uniform)
    if method == "riemann_right":
        return Quadrature(k / m, uniform)
    if method == "riemann_middle":
        return Quadrature((k - 0.5) / m, uniform)
    weights = torch.full((m,), 1.0 / (m - 1), dtype=torch.float64)  # trapezoid
    weights[[0, -1]] /= 2
    return Quadrature((k - 1) / (m - 1), weights)


def integrated_gradients(forward: Forward, inputs: Tensor, baselines: Tensor | float | None = None, *,
                         target: Target = None, n_steps: int = 50, method: str = "gausslegendre",
                         internal_batch_size: int | None = None) -> Attribution:
    r"""Integrated gradients of ``forward`` at ``inputs`` relative to ``baselines`` (chapter: ig-eq-ig).

    forward: (R, ...) -> (R,) or (R, C) scores; inputs: (B, ...); baselines: broadcastable to the
    inputs (``None`` = zeros); target: class index, or one per example (B,), when forward returns (R, C).
    $\mathrm{IG}_i \approx (x_i - x'_i) \sum_k w_k\, \partial_i F(x' + \alpha_k (x - x'))$.
    """
    return path_integrated_gradients(forward, inputs, baselines, via=(), target=target, n_steps=n_steps,
                                     method=method, internal_batch_size=internal_batch_size)


def path_integrated_gradients(forward: Forward, inputs: Tensor, baselines: Tensor | float | None = None, *,
                              via: Sequence[Tensor | float] = (), target: Target = None, n_steps: int = 50,
                              method: str = "gausslegendre",
                              internal_batch_size: int | None = None) -> Attribution:
    r"""Path method along the polygon $x' \to p_1 \to \dots \to p_J \to x$ (``via`` = $p_1 … p_J$).

    $\mathrm{PathIG}_i = \sum_j (p_{j+1} - p_j)_i \int_0^1 \partial_i F(p_j + \alpha (p_{j+1} - p_j))\,
    d\alpha$ with $p_0 = x'$ and $p_{J+1} = x$; each segment is integrated with the same ``n_steps``-point
    rule, so the path costs (J + 1)·S·B gradient evaluations. ``via=()`` gives integrated gradients.
    """
    _check_method_and_steps(method, n_steps)
    chunk = _check_chunk(internal_batch_size)
    x = _check_inputs(inputs)
    base = _broadcast("baselines", baselines, x)
    corners = [base, *(_broadcast(f"via[{j}]", p, x) for j, p in enumerate(via)), x]
    tgt = _normalise_target(target, x)
    out_x, out_base = _outputs_at(forward, torch.cat([x, base]), _repeat(tgt, 2), chunk).split(len(x))
    change = out_x - out_base  # F(x) − F(x′), (B,)
    quad = quadrature(method, n_steps)
    attributions = torch.zeros_like(x)
    for start, end in zip(corners[:-1], corners[1:]):
        delta = end - start  # γ′ on this segment
        weighted = _gradients_on_path(forward, start, delta, tgt, quad.alphas, quad.weights, chunk)
        for ks, bs, _, grads in weighted:  # grads: (nk, nb, ...) = w_k ∇F(γ(α_k))
            attributions[bs] += delta[bs] * grads.sum(0)
    return Attribution(attributions, change - attributions.reshape(len(x), -1).sum(1), change)


def gradient(forward: Forward, inputs: Tensor, *, target: Target = None) -> Tensor:
    r"""The plain input gradient $\nabla F(x)$ (saliency; chapter: ig-eq-taylor): (B, ...)."""
    x = _check_inputs(inputs)
    tgt = _normalise_target(target, x)
    point = x.clone().requires_grad_(True)
    with torch.enable_grad():
        out = _select(forward(point), tgt, len(x), check=True)
        grad = None
        if out.requires_grad:
            (grad,) = torch.autograd.grad(out.sum(), point, allow_unused=True)
    if grad is None:
        raise ValueError(_DETACHED)
    return grad


def gradient_times_input(forward: Forward, inputs: Tensor, baselines: Tensor | float | None = None, *,
                         target: Target = None) -> Attribution:
    r"""First-order split $\nabla F(x) \odot (x - x')$ of $F(x) - F(x')$ (chapter: ig-eq-first-order).

    It is the one-point right Riemann rule of integrated gradients, so the gap is Taylor's remainder.
    """
    return integrated_gradients(forward, inputs, baselines, target=target, n_steps=1, method="riemann_right")


def alpha_weighted_gradients(forward: Forward, inputs: Tensor, *, target: Target = None,
                             n_steps: int = 20) -> Attribution:
    r"""The quantity Su's bert4keras demo computes: $\frac1n \sum_i \alpha_i \nabla F(\alpha_i x) \odot x$.

    $\alpha_i = i/(n-1)$, $i = 0 … n-1$, zero baseline. Its weights $\alpha_i / n$ sum to $\tfrac12$,
    so on a linear model the attributions add up to $\tfrac12 (F(x) - F(0))$: not complete.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 2:
        raise ValueError(f"n_steps must be an int >= 2, got {n_steps!r}")
    x = _check_inputs(inputs)
    tgt = _normalise_target(target, x)
    base = torch.zeros_like(x)
    out_x, out_base = _outputs_at(forward, torch.cat([x, base]), _repeat(tgt, 2), None).split(len(x))
    alphas = torch.arange(n_steps, dtype=torch.float64) / (n_steps - 1)
    attributions = torch.zeros_like(x)
    for _, bs, _, grads in _gradients_on_path(forward, base, x, tgt, alphas, alphas / n_steps, None):
        attributions[bs] += x[bs] * grads.sum(0)
    change = out_x - out_base
    return Attribution(attributions, change - attributions.reshape(len(x), -1).sum(1), change)


def path_profile(forward: Forward, inputs: Tensor, baselines: Tensor | float | None = None, *,
                 target: Target = None, n_points: int = 21,
                 internal_batch_size: int | None = None) -> PathProfile:
    r"""$F(\gamma(\alpha_p))$, $\nabla F(\gamma(\alpha_p))$ and the attribution accumulated up to $\alpha_p$.

    Used for pictures of the path; ``cumulative[:, -1]`` is IG with the trapezoid rule on ``n_points``.
    """
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2, got {n_points!r}")
    chunk = _check_chunk(internal_batch_size)
    x = _check_inputs(inputs)
    base = _broadcast("baselines", baselines, x)
    tgt = _normalise_target(target, x)
    _outputs_at(forward, x, tgt, chunk)  # checks the output shape and the target first
    alphas = torch.linspace(0.0, 1.0, n_points, dtype=torch.float64)
    delta = x - base
    outputs = x.new_zeros(n_points, len(x))
    grads = x.new_zeros(n_points, *x.shape)  # (P, B, ...)
    ones = torch.ones_like(alphas)  # unweighted: the gradient at each point
    for ks, bs, out, g in _gradients_on_path(forward, base, delta, tgt, alphas, ones, chunk):
        outputs[ks, bs], grads[ks, bs] = out, g
    mean_pairs = (grads[1:] + grads[:-1]) / 2 * (1.0 / (n_points - 1))  # trapezoid pieces, (P−1, B, ...)
    cumulative = torch.cat([torch.zeros_like(grads[:1]), mean_pairs.cumsum(0)]) * delta
    return PathProfile(alphas, outputs.T.contiguous(), grads.transpose(0, 1).contiguous(),
                       cumulative.transpose(0, 1).contiguous())


# ----------------------------------------------------------------------------- internals

_DETACHED = ("forward's output is not connected to its input in the autograd graph (does forward detach "
             "its input, call .numpy(), or run under torch.no_grad()?); the gradients would be "
             "silently zero. If F really is constant, its attributions are zero and need no computation.")


def _blocks(n_steps: int, batch: int, chunk: int | None) -> Iterator[tuple[slice, slice]]:
    """Rectangles (steps, examples) of at most ``chunk`` path points, covering S × B."""
    if chunk is None or chunk >= n_steps * batch:
        yield slice(0, n_steps), slice(0, batch)
    elif chunk >= batch:  # whole steps, several at a time
        per = chunk // batch
        for k0 in range(0, n_steps, per):
            yield slice(k0, min(k0 + per, n_steps)), slice(0, batch)
    else:  # one step, part of the batch
        for k in range(n_steps):
            for b0 in range(0, batch, chunk):
                yield slice(k, k + 1), slice(b0, min(b0 + chunk, batch))


def _gradients_on_path(forward: Forward, start: Tensor, delta: Tensor, target: int | Tensor | None,
                       alphas: Tensor, weights: Tensor, chunk: int | None
                       ) -> Iterator[tuple[slice, slice, Tensor, Tensor]]:
    """Yield (steps, examples, F (nk, nb), w_k ∇F (nk, nb, ...)) at γ(α_k) = start + α_k · delta."""
    feature_shape = start.shape[1:]
    ones = (1,) * len(feature_shape)
    alphas, weights = alphas.to(start), weights.to(start)
    for ks, bs in _blocks(len(alphas), len(start), chunk):
        a = alphas[ks].view(-1, 1, *ones)  # (nk, 1, 1...)
        nk, nb = a.shape[0], bs.stop - bs.start
        points = (start[bs] + a * delta[bs]).reshape(nk * nb, *feature_shape)  # γ(α_k), (nk·nb, ...)
        points.requires_grad_(True)
        rows = target if target is None or isinstance(target, int) else target[bs].repeat(nk)
        with torch.enable_grad():
            out = _select(forward(points), rows, nk * nb)
            w = weights[ks].to(out.dtype).view(nk, 1).expand(nk, nb).reshape(-1)
            grad = None
            if out.requires_grad:  # weights enter as grad_outputs: one backward gives w_k ∇F
                (grad,) = torch.autograd.grad(out, points, grad_outputs=w, allow_unused=True)
        if grad is None:
            raise ValueError(_DETACHED)
        yield ks, bs, out.detach().view(nk, nb), grad.view(nk, nb, *feature_shape)


def _outputs_at(forward: Forward, points: Tensor, target: int | Tensor | None, chunk: int | None) -> Tensor:
    """F at each row of points, (R,), checking the output shape and the target range."""
    step = len(points) if chunk is None else chunk
    pieces = []
    with torch.no_grad():
        for r0 in range(0, len(points), step):
            rows = target if target is None or isinstance(target, int) else target[r0:r0 + step]
            pieces.append(_select(forward(points[r0:r0 + step]), rows, len(points[r0:r0 + step]), check=True))
    return torch.cat(pieces)


def _select(out: Tensor, target: int | Tensor | None, rows: int, *, check: bool = False) -> Tensor:
    """The scalar per row that is attributed: out (rows,) or (rows, 1), or out[r, target_r] of (rows, C)."""
    if not isinstance(out, Tensor) or out.ndim == 0 or out.shape[0] != rows:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"forward must return one row per input row: expected ({rows}, ...), got {shape}")
    if target is None:
        if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
            return out.reshape(rows)
        raise ValueError("forward must return one scalar per example when target is None, got output shape "
                         f"{tuple(out.shape)}; pass target=<class index>")
    if out.ndim != 2:
        raise ValueError("forward must return (B, C) scores when target is given, "
                         f"got shape {tuple(out.shape)}")
    if check:
        n_classes = out.shape[1]
        low, high = (target, target) if isinstance(target, int) else (int(target.min()), int(target.max()))
        if low < 0 or high >= n_classes:
            raise ValueError(f"target must be in 0..{n_classes - 1} for forward's {n_classes} outputs, "
                             f"got {target if isinstance(target, int) else (low, high)}")
    if isinstance(target, int):
        return out[:, target]
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def _normalise_target(target: Target, x: Tensor) -> int | Tensor | None:
    if target is None:
        return None
    if isinstance(target, bool):
        raise ValueError(f"target must be an int, a sequence of ints or None, got {target!r}")
    if isinstance(target, (int, np.integer)):
        return int(target)
    if not isinstance(target, (Tensor, Sequence)):
        raise ValueError(f"target must be an int, a sequence of ints or None, got {target!r}")
    t = target if isinstance(target, Tensor) else torch.as_tensor(list(target))
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex:
        raise ValueError(f"target must hold integers, got dtype {t.dtype}")
    if t.ndim == 0:
        return int(t)
    if t.shape != (len(x),):
        raise ValueError(f"target must be an int or have shape ({len(x)},), got shape {tuple(t.shape)}")
    return t.to(device=x.device, dtype=torch.long)


def _repeat(target: int | Tensor | None, times: int) -> int | Tensor | None:
    return target if target is None or isinstance(target, int) else target.repeat(times)


def _check_inputs(inputs: Tensor) -> Tensor:
    if not isinstance(inputs, Tensor) or not inputs.dtype.is_floating_point:
        got = inputs.dtype if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a floating-point tensor (B, ...), got {got}")
    if inputs.ndim == 0 or len(inputs) == 0:
        raise ValueError(f"inputs must have a non-empty batch dimension, got shape {tuple(inputs.shape)}")
    return inputs.detach()


def _broadcast(name: str, value: Tensor | float | None, x: Tensor) -> Tensor:
    """A point of input space (baseline or waypoint) expanded to the inputs' shape (B, ...)."""
    if value is None:
        return torch.zeros_like(x)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.full_like(x, float(value))
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a tensor, a number or None, got {type(value).__name__}")
    try:
        shape = torch.broadcast_shapes(value.shape, x.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"{name} must broadcast to the inputs' shape {tuple(x.shape)}, "
                         f"got shape {tuple(value.shape)}")
    return value.detach().to(x).expand_as(x).contiguous()


def _check_method_and_steps(method: str, n_steps: int) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    least = 2 if method == "riemann_trapezoid" else 1
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < least:
        raise ValueError(f"n_steps must be an int >= {least} for method {method!r}, got {n_steps!r}")


def _check_chunk(internal_batch_size: int | None) -> int | None:
    if internal_batch_size is None:
        return None
    if isinstance(internal_batch_size, bool) or not isinstance(internal_batch_size, int) \
            or internal_batch_size < 1:
        raise ValueError(f"internal_batch_size must be a positive int or None, got {internal_batch_size!r}")
    return internal_batch_size
