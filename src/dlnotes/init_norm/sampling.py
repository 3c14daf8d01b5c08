"""Sampling distributions for initialisation and the classic variance rules.

Uniform with a matched variance (in-eq-uniform), the truncated normal in TensorFlow semantics (cut at
±a·σ around the mean) and in PyTorch semantics (absolute bounds), the variance factor γ(a) of a cut at
±a standard deviations (in-eq-trunc), and the LeCun / He / Xavier / orthogonal rules.
"""
from __future__ import annotations

import math

import torch
from scipy.stats import norm as _norm

__all__ = ["truncation_factor", "uniform_matched", "trunc_normal_tf", "trunc_normal_torch",
           "fans", "rule_std", "init_linear_", "RULES"]

RULES = ("lecun", "he", "xavier", "orthogonal")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def truncation_factor(a: float = 2.0) -> float:
    """γ(a) = Var of N(0,1) conditioned on |z| < a: 1 − 2aφ(a)/(2Φ(a) − 1) (0.7737413 at a = 2)."""
    _positive("a", a)
    return float(1.0 - 2.0 * a * _norm.pdf(a) / (2.0 * _norm.cdf(a) - 1.0))


def uniform_matched(shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0, *,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Samples of U[mean − √3·std, mean + √3·std], whose mean and variance are ``mean`` and ``std²``."""
    _positive("std", std)
    half = math.sqrt(3.0) * std
    return mean - half + 2 * half * torch.rand(shape, generator=generator, dtype=torch.float64)


def trunc_normal_tf(shape: tuple[int, ...], std: float = 1.0, *, cut: float = 2.0,
                    compensate: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """TensorFlow's ``truncated_normal``: N(0, std²) resampled until |x| < cut·std.

    Its variance is γ(cut)·std²; ``compensate=True`` passes std/√γ so that the variance is std².
    """
    _positive("std", std)
    _positive("cut", cut)
    if compensate:
        std = std / math.sqrt(truncation_factor(cut))
    out = torch.empty(shape, dtype=torch.float64)
    return torch.nn.init.trunc_normal_(out, std=std, a=-cut * std, b=cut * std, generator=generator)


def trunc_normal_torch(shape: tuple[int, ...], std: float = 1.0, a: float = -2.0, b: float = 2.0, *,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """PyTorch's ``trunc_normal_`` semantics: ``a`` and ``b`` are absolute bounds, not multiples of std.

    With std = 0.02 and the defaults (−2, 2) nothing is truncated at all.
    """
    _positive("std", std)
    if not a < b:
        raise ValueError(f"a must be below b, got a={a!r}, b={b!r}")
    out = torch.empty(shape, dtype=torch.float64)
    return torch.nn.init.trunc_normal_(out, std=std, a=a, b=b, generator=generator)


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a PyTorch weight of shape (out, in, ...)."""
    if weight.dim() < 2:
        raise ValueError(f"weight must have at least 2 dimensions, got shape {tuple(weight.shape)}")
    field = weight[0][0].numel()
    return weight.shape[1] * field, weight.shape[0] * field


def rule_std(rule: str, fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Standard deviation of a rule: LeCun gain/√fan_in, He gain·√(2/fan_in), Xavier gain·√(2/(in+out)).

    ``orthogonal`` reports the LeCun value (an orthogonal matrix scaled to the same second moment per row).
    """
    if gain < 0 or not math.isfinite(gain):
        raise ValueError(f"gain must be a non-negative number, got {gain!r}")
    if rule in ("lecun", "orthogonal"):
        return gain / math.sqrt(fan_in)
    if rule == "he":
        return gain * math.sqrt(2.0 / fan_in)
    if rule == "xavier":
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


@torch.no_grad()
def init_linear_(weight: torch.Tensor, rule: str = "lecun", gain: float = 1.0, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``weight`` (out, in) in place by ``rule`` with a gain multiplier; return it.

    ``orthogonal`` draws a (semi-)orthogonal matrix times ``gain`` (Saxe et al.): for a square matrix
    every input norm is kept exactly, where LeCun keeps it only on average.
    """
    fan_in, fan_out = fans(weight)
    std = rule_std(rule, fan_in, fan_out, gain)
    if rule == "orthogonal":
        return torch.nn.init.orthogonal_(weight, gain=gain, generator=generator)
    return weight.normal_(0.0, std, generator=generator)
