r"""Gaussian pieces of NVAE: the residual KL (paper eq. 2), the generic KL, the soft clamp, log densities.

With prior $p(z^i) = \mathcal N(\mu_i, \sigma_i^2)$ and residual posterior
$q(z^i) = \mathcal N(\mu_i + \Delta\mu_i, \sigma_i^2 \Delta\sigma_i^2)$,

$$ \mathrm{KL}(q \| p) = \tfrac12 \Big( \frac{\Delta\mu_i^2}{\sigma_i^2} + \Delta\sigma_i^2
   - \log \Delta\sigma_i^2 - 1 \Big), $$

which does not depend on $\mu_i$ and is zero exactly when $\Delta\mu_i = 0$, $\Delta\sigma_i = 1$.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["residual_normal_kl", "normal_kl", "soft_clamp", "normal_log_prob", "SIGMA_FLOOR", "CLAMP"]

#: Added to exp(log σ) in the model so that no scale collapses to zero (as in the paper's code).
SIGMA_FLOOR = 0.01
#: Bound of the soft clamp applied to every μ and log σ.
CLAMP = 5.0


def _positive(name: str, value: Tensor) -> None:
    if bool((value <= 0).any()):
        raise ValueError(f"{name} must be > 0 everywhere, got a minimum of {value.min().item():.4g}")


def residual_normal_kl(delta_mu: Tensor, delta_sigma: Tensor, prior_sigma: Tensor) -> Tensor:
    r"""KL of $\mathcal N(\mu + \Delta\mu, (\sigma\Delta\sigma)^2)$ to $\mathcal N(\mu, \sigma^2)$, elementwise.

    delta_mu, delta_sigma (> 0), prior_sigma (> 0): broadcastable tensors; returns their broadcast shape.
    """
    delta_mu, delta_sigma, prior_sigma = map(torch.as_tensor, (delta_mu, delta_sigma, prior_sigma))
    _positive("delta_sigma", delta_sigma)
    _positive("prior_sigma", prior_sigma)
    var_ratio = delta_sigma ** 2
    return 0.5 * ((delta_mu / prior_sigma) ** 2 + var_ratio - torch.log(var_ratio) - 1.0)


def normal_kl(mu_q: Tensor, sigma_q: Tensor, mu_p: Tensor, sigma_p: Tensor) -> Tensor:
    r"""Generic $\mathrm{KL}(\mathcal N(\mu_q, \sigma_q^2) \| \mathcal N(\mu_p, \sigma_p^2))$, elementwise."""
    ratio = sigma_q / sigma_p
    return 0.5 * (((mu_q - mu_p) / sigma_p) ** 2 + ratio ** 2 - 2 * torch.log(ratio) - 1.0)


def soft_clamp(x: Tensor, bound: float = CLAMP) -> Tensor:
    r"""$b \tanh(x / b)$: inside $(-b, b)$, slope 1 at 0. x: any shape."""
    if not 0 < bound < math.inf:  # also rejects NaN
        raise ValueError(f"bound must be finite and > 0, got {bound!r}")
    return bound * torch.tanh(x / bound)


def normal_log_prob(z: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    r"""$\log \mathcal N(z; \mu, \sigma^2)$, elementwise."""
    return -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
