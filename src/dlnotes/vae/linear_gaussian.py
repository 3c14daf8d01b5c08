"""A linear-Gaussian latent model whose log p(x) and exact posterior are known in closed form.

p(z) = N(0, I_d), p(x | z) = N(W z + b, s² I_D), so p(x) = N(b, W Wᵀ + s² I) and the posterior is
N(m(x), Σ) with Σ = (I + WᵀW / s²)⁻¹ and m(x) = Σ Wᵀ (x − b) / s². It checks
:func:`~dlnotes.vae.importance.importance_log_likelihood`: with q the exact posterior every importance
weight equals log p(x); with a shifted or rescaled q the estimate falls short and rises with k.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import MultivariateNormal

__all__ = ["LinearGaussian"]


class LinearGaussian:
    """W: (D, d), b: (D,), noise_std s > 0. q(z | x) = N(m(x) + shift, scale² Σ) (exact for 0, 1)."""

    def __init__(self, W: Tensor, b: Tensor, noise_std: float, *, posterior_shift: float = 0.0,
                 posterior_scale: float = 1.0, generator: torch.Generator | None = None) -> None:
        if not isinstance(W, Tensor) or W.dim() != 2:
            raise ValueError(f"W must be a (D, d) tensor, got {getattr(W, 'shape', W)!r}")
        if not isinstance(b, Tensor) or b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},), got {getattr(b, 'shape', b)!r}")
        if not noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {noise_std!r}")
        if not posterior_scale > 0:
            raise ValueError(f"posterior_scale must be > 0, got {posterior_scale!r}")
        self.W, self.b, self.s = W, b, float(noise_std)
        self.shift, self.scale = float(posterior_shift), float(posterior_scale)
        self.generator = generator
        d = W.shape[1]
        eye = torch.eye(d, dtype=W.dtype)
        self.post_cov = torch.linalg.inv(eye + W.T @ W / self.s**2)

    def _check_x(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.W.shape[0]:
            raise ValueError(f"x must have shape (B, {self.W.shape[0]}), got {getattr(x, 'shape', x)!r}")

    def log_marginal(self, x: Tensor) -> Tensor:
        """Exact log p(x): (B, D) -> (B,)."""
        self._check_x(x)
        D = self.W.shape[0]
        cov = self.W @ self.W.T + self.s**2 * torch.eye(D, dtype=self.W.dtype)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def posterior(self, x: Tensor) -> MultivariateNormal:
        """q(z | x) with batch shape (B,) (the exact posterior when shift = 0 and scale = 1)."""
        self._check_x(x)
        mean = (x - self.b) @ self.W @ self.post_cov.T / self.s**2 + self.shift
        return MultivariateNormal(mean, covariance_matrix=self.scale**2 * self.post_cov)

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x, z) for x: (B, D), z: (k, B, d) -> (k, B)."""
        mean = z @ self.W.T + self.b
        log_px = MultivariateNormal(mean, scale_tril=self.s * torch.eye(len(self.b), dtype=z.dtype)).log_prob(x)
        log_pz = -0.5 * (z.pow(2).sum(-1) + z.shape[-1] * torch.log(torch.tensor(2 * torch.pi, dtype=z.dtype)))
        return log_px + log_pz

    def prior_sampling_log_likelihood(self, x: Tensor, k: int) -> Tensor:
        """log (1/k) Σⱼ p(x | zⱼ), zⱼ ~ p(z) (the prior-sampling estimator, part 三), the same k draws for every
        example: (B, D) -> (B,). Consistent, but needs k to grow with the latent dimension to be accurate."""
        self._check_x(x)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        z = torch.randn((k, 1, self.W.shape[1]), dtype=x.dtype, generator=self.generator)
        mean = z @ self.W.T + self.b  # (k, 1, D)
        log_px = MultivariateNormal(mean, scale_tril=self.s * torch.eye(len(self.b), dtype=x.dtype)).log_prob(x)
        return torch.logsumexp(log_px, 0) - torch.log(torch.tensor(float(k), dtype=x.dtype))

    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        """(k, B): log p(x, zᵢ) − log q(zᵢ | x), zᵢ ~ q(z | x)."""
        q = self.posterior(x)
        eps = torch.randn((k, *q.mean.shape), dtype=x.dtype, generator=self.generator)
        z = q.mean + (q.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
        return self.log_joint(x, z) - q.log_prob(z)
