"""Second moments of activations under a standard-normal input, gains, rescaled activations and SELU.

``second_moment(phi)`` = E[φ(z)²], z ~ N(0, 1), by quadrature (in-eq-gain); the second-moment gain is
E[φ(z)²]^(-1/2). ``selu_constants()`` solves for SELU's λ and α (in-eq-selu) from the two conditions
E[selu(z)] = 0 and E[selu(z)²] = 1.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import integrate, optimize, special

__all__ = ["ACTIVATIONS", "activation_fn", "second_moment", "first_moment", "gain", "layer_factor",
           "selu_constants", "RescaledActivation"]


def _gelu(x):
    return 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))


def _selu(x, lam=1.0507009873554805, alpha=1.6732632423543772):
    return np.where(x > 0, lam * x, lam * alpha * np.expm1(np.minimum(x, 0.0)))


#: NumPy versions of the activations the chapter compares (used by the quadrature).
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": special.expit,
    "gelu": _gelu,
    "silu": lambda x: x * special.expit(x),
    "selu": _selu,
}

_TORCH = {
    "linear": lambda x: x,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": torch.nn.functional.gelu,
    "silu": torch.nn.functional.silu,
    "selu": torch.selu,
}


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The torch activation called ``name`` (one of ``ACTIVATIONS``)."""
    if name not in _TORCH:
        raise ValueError(f"activation must be one of {tuple(_TORCH)}, got {name!r}")
    return _TORCH[name]


def _expect(f: Callable[[float], float]) -> float:
    pdf = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    left, _ = integrate.quad(lambda z: f(z) * pdf(z), -np.inf, 0.0, epsabs=1e-13, epsrel=1e-12, limit=200)
    right, _ = integrate.quad(lambda z: f(z) * pdf(z), 0.0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)
    return left + right


def _resolve(phi: str | Callable) -> Callable[[float], float]:
    if callable(phi):
        return lambda z: float(phi(np.float64(z)))
    if phi not in ACTIVATIONS:
        raise ValueError(f"phi must be one of {tuple(ACTIVATIONS)} or a callable, got {phi!r}")
    return lambda z: float(ACTIVATIONS[phi](np.float64(z)))


def second_moment(phi: str | Callable) -> float:
    """E[φ(z)²] for z ~ N(0, 1) (sigmoid 0.2933790, tanh 0.3942945, ReLU 0.5, GELU 0.4252215)."""
    f = _resolve(phi)
    return _expect(lambda z: f(z) ** 2)


def first_moment(phi: str | Callable) -> float:
    """E[φ(z)] for z ~ N(0, 1)."""
    return _expect(_resolve(phi))


def gain(phi: str | Callable) -> float:
    """Second-moment gain E[φ(z)²]^(-1/2): multiply LeCun's std by it (√2 for ReLU)."""
    return 1.0 / math.sqrt(second_moment(phi))


def layer_factor(phi: str | Callable, scale: float, *, gain: float | None = None) -> float:
    """g² E[φ(s z)²] / s², z ~ N(0, 1): the factor by which a layer W φ(·) with Var(w) = g²/fan-in multiplies
    the second moment s² of a Gaussian pre-activation (``gain`` g defaults to ``gain(phi)``).

    It is 1 at s = 1 by construction of the gain, and 1 at every scale for a positively homogeneous φ (ReLU,
    linear); for GELU it runs from about 0.6 (small s, where gelu(x) ≈ x/2) to about 1.18 (large s, where
    gelu ≈ ReLU), so s = 1 is an unstable balance.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    g = globals()["gain"](phi) if gain is None else gain
    if g < 0:
        raise ValueError(f"gain must be non-negative, got {gain!r}")
    f = _resolve(phi)
    return g * g * _expect(lambda z: f(scale * z) ** 2) / scale ** 2


def selu_constants() -> tuple[float, float]:
    """(λ, α) with E[selu(z)] = 0 and E[selu(z)²] = 1 for z ~ N(0, 1), solved numerically."""
    def conditions(p):
        lam, alpha = p
        f = lambda z: lam * z if z > 0 else lam * alpha * math.expm1(z)  # noqa: E731
        return [_expect(f), _expect(lambda z: f(z) ** 2) - 1.0]

    lam, alpha = optimize.fsolve(conditions, [1.0, 1.5], xtol=1e-12)
    return float(lam), float(alpha)


class RescaledActivation(torch.nn.Module):
    """φ(x)/√E[φ(z)²], or (φ(x) − E[φ(z)])/√Var[φ(z)] with ``center=True``: unit second moment on N(0, 1)."""

    def __init__(self, name: str, *, center: bool = False) -> None:
        super().__init__()
        self.fn = activation_fn(name)
        self.name = name
        m1, m2 = first_moment(name), second_moment(name)
        self.shift = m1 if center else 0.0
        self.scale = 1.0 / math.sqrt(m2 - m1 ** 2 if center else m2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.fn(x) - self.shift) * self.scale

    def extra_repr(self) -> str:
        return f"{self.name}, shift={self.shift:.6f}, scale={self.scale:.6f}"
