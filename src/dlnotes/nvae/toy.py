r"""A 2-D toy for "why VAEs blur": a target whose $z_2$ marginal has two modes, fitted by reverse KL.

The target is $p(z_1, z_2) = \mathcal N(z_1; 0, 1)\,\mathcal N\big(z_2; a\tanh(c z_1), s^2\big)$: given $z_1$
it is a narrow Gaussian, but $z_2$ alone sits near $-a$ or $+a$. Two families are fitted to it by
minimising $\mathrm{KL}(q \| p)$, as a VAE fits its posterior: a factorised Gaussian
$q(z_1) q(z_2)$ and a two-group autoregressive Gaussian $q(z_1)\, q(z_2 \mid z_1)$ whose conditional mean
and log-scale come from a small MLP of $z_1$ (NVAE's groups in miniature).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dlnotes.nvae.kl import normal_log_prob

__all__ = ["TwoModeTarget", "FactorisedGaussian", "AutoregressiveGaussian", "fit_reverse_kl", "reverse_kl",
           "factorised_kl"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_points(z: Tensor) -> None:
    if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != 2:
        raise ValueError(f"z must be points of shape (N, 2), got {getattr(z, 'shape', z)!r}")


@dataclass(frozen=True)
class TwoModeTarget:
    """$z_1 \\sim \\mathcal N(0, 1)$, $z_2 \\mid z_1 \\sim \\mathcal N(a \\tanh(c z_1), s^2)$; a, c, s > 0."""

    amplitude: float = 2.0  # a: the modes of z2 sit near ±a
    sharpness: float = 3.0  # c: how fast the conditional mean switches sides
    noise: float = 0.3  # s: the conditional standard deviation

    def __post_init__(self) -> None:
        for name in ("amplitude", "sharpness", "noise"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def mean2(self, z1: Tensor) -> Tensor:
        """E[z2 | z1] = a tanh(c z1), elementwise."""
        return self.amplitude * torch.tanh(self.sharpness * z1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z1, z2): z (N, 2) -> (N,)."""
        _check_points(z)
        one, s = torch.ones((), dtype=z.dtype), torch.tensor(self.noise, dtype=z.dtype)
        return (normal_log_prob(z[:, 0], torch.zeros_like(one), one)
                + normal_log_prob(z[:, 1], self.mean2(z[:, 0]), s))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n exact draws: (n, 2)."""
        e = torch.randn(_positive_int("n", n), 2, generator=generator)
        return torch.stack([e[:, 0], self.mean2(e[:, 0]) + self.noise * e[:, 1]], 1)

    def z2_marginal(self, z2: Tensor, nodes: int = 201) -> Tensor:
        """p(z2) on given points by quadrature over z1 (a uniform grid on [-8, 8]): (M,) -> (M,)."""
        z1 = torch.linspace(-8, 8, _positive_int("nodes", nodes), dtype=z2.dtype)
        w = torch.exp(-0.5 * z1 ** 2) / math.sqrt(2 * math.pi) * (z1[1] - z1[0])
        cond = normal_log_prob(z2[:, None], self.mean2(z1)[None], torch.tensor(self.noise, dtype=z2.dtype))
        return (cond.exp() * w).sum(1)


class FactorisedGaussian(nn.Module):
    """q(z1) q(z2), each a Gaussian with a learned mean and log-scale."""

    def __init__(self, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.mu = nn.Parameter(0.1 * torch.randn(2, generator=generator))
        self.log_sigma = nn.Parameter(torch.zeros(2))

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z): (N, 2) -> (N,)."""
        _check_points(z)
        return normal_log_prob(z, self.mu, self.log_sigma.exp()).sum(1)

    def rsample(self, n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n reparameterised draws and their log q: ((n, 2), (n,))."""
        z = self.mu + self.log_sigma.exp() * torch.randn(_positive_int("n", n), 2, generator=generator)
        return z, self.log_prob(z)


class AutoregressiveGaussian(nn.Module):
    """q(z1) q(z2 | z1): a Gaussian z1, then a Gaussian z2 whose mean and log-scale are an MLP of z1."""

    def __init__(self, hidden: int = 16, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.mu = nn.Parameter(0.1 * torch.randn(1, generator=generator))
        self.log_sigma = nn.Parameter(torch.zeros(1))
        self.net = nn.Sequential(nn.Linear(1, _positive_int("hidden", hidden)), nn.Tanh(), nn.Linear(hidden, 2))
        with torch.no_grad():  # seeded initialisation, independent of torch's global generator
            for p in self.net.parameters():
                fan_in = p.shape[1] if p.dim() > 1 else 1
                p.copy_(0.5 * torch.randn(p.shape, generator=generator) / math.sqrt(fan_in))

    def conditional(self, z1: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of q(z2 | z1): (N,) -> ((N,), (N,))."""
        m, log_s = self.net(z1[:, None]).unbind(1)
        return m, log_s.exp()

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z1) + log q(z2 | z1): (N, 2) -> (N,)."""
        _check_points(z)
        m, s = self.conditional(z[:, 0])
        return normal_log_prob(z[:, 0], self.mu, self.log_sigma.exp()) + normal_log_prob(z[:, 1], m, s)

    def rsample(self, n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n reparameterised draws, group by group, and their log q: ((n, 2), (n,))."""
        e = torch.randn(_positive_int("n", n), 2, generator=generator)
        z1 = self.mu + self.log_sigma.exp() * e[:, 0]
        m, s = self.conditional(z1)
        z = torch.stack([z1, m + s * e[:, 1]], 1)
        return z, self.log_prob(z)


def fit_reverse_kl(q: FactorisedGaussian | AutoregressiveGaussian, target: TwoModeTarget, *, steps: int = 300,
                   samples: int = 256, lr: float = 0.05, generator: torch.Generator | None = None) -> list[float]:
    """Adam on the Monte Carlo estimate of KL(q || p) = E_q[log q − log p] (reparameterised); returns the losses."""
    _positive_int("steps", steps)
    _positive_int("samples", samples)
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        z, log_q = q.rsample(samples, generator=generator)
        loss = (log_q - target.log_prob(z)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def reverse_kl(q: FactorisedGaussian | AutoregressiveGaussian, target: TwoModeTarget, *, samples: int = 100_000,
               generator: torch.Generator | None = None) -> tuple[float, float, Tensor]:
    """Monte Carlo KL(q || p): (estimate, its standard error, the draws (samples, 2))."""
    z, log_q = q.rsample(samples, generator=generator)
    d = log_q - target.log_prob(z)
    return d.mean().item(), (d.std() / math.sqrt(samples)).item(), z


def factorised_kl(m1: float | np.ndarray, s1: float | np.ndarray, target: TwoModeTarget,
                  nodes: int = 80) -> np.ndarray:
    r"""KL(q || p) of the best factorised q with $q(z_1) = \mathcal N(m_1, s_1^2)$ (Gauss–Hermite in $z_1$).

    For a given $q(z_1)$ the best $q(z_2)$ is $\mathcal N(\mathbb E_{q(z_1)} f, s^2)$ with $f = a\tanh(c z_1)$,
    and then $\mathrm{KL} = \mathrm{KL}(q(z_1) \| \mathcal N(0, 1)) + \mathrm{Var}_{q(z_1)}[f] / (2 s^2)$.
    m1, s1 (> 0): broadcastable arrays; returns their broadcast shape.
    """
    m1, s1 = np.broadcast_arrays(np.asarray(m1, dtype=float), np.asarray(s1, dtype=float))
    if not np.all(s1 > 0):
        raise ValueError(f"s1 must be > 0 everywhere, got a minimum of {s1.min()!r}")
    x, w = np.polynomial.hermite_e.hermegauss(_positive_int("nodes", nodes))
    w = w / w.sum()
    f = target.amplitude * np.tanh(target.sharpness * (m1[..., None] + s1[..., None] * x))
    var_f = f ** 2 @ w - (f @ w) ** 2
    kl1 = 0.5 * (m1 ** 2 + s1 ** 2 - 1.0) - np.log(s1)
    return kl1 + var_f / (2 * target.noise ** 2)
