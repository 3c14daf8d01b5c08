"""VAE models: Su's MLP (784-256-d), a small convolutional VAE, and Su's class-mean conditional VAE.

Images are (B, 1, S, S) with S = ``image_size`` (28 for MNIST, 8 for scikit-learn's last-resort digits;
the convolutional models need S divisible by 4). Every model encodes to a diagonal Gaussian
``Posterior(mu, logvar)``; the log-variance head is
clamped to [LOGVAR_MIN, LOGVAR_MAX] = [−30, 20] so that ``exp`` stays finite (σ between 3e-7 and
2e4; a trained MNIST VAE stays far inside). The loss returns one named ``VAELoss(loss,
reconstruction, kl)`` in nats per example, and ``log_importance_weights(x, k) -> (k, B)`` serves
:func:`~dlnotes.vae.importance.importance_log_likelihood`.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.vae.kl import gaussian_kl
from dlnotes.vae.likelihoods import bernoulli_log_likelihood, check_binary, gaussian_log_likelihood

__all__ = ["LOGVAR_MIN", "LOGVAR_MAX", "image_shape", "Posterior", "VAELoss", "VAE", "MLPVAE", "ConvVAE", "SuCVAE",
           "mlp_encoder", "mlp_decoder", "conv_encoder", "conv_decoder"]

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
IMAGE = (1, 28, 28)  # the default image shape (MNIST)
_BLOCK = 1 << 17  # decoder output values per block in log_importance_weights (512 KiB in float32)


def samples_per_block(values_per_sample: int) -> int:
    """How many samples ``log_importance_weights`` decodes per decoder call: about ``_BLOCK`` output values,
    where one sample of the whole batch holds ``values_per_sample`` (B·D) values; at least 1."""
    return max(1, _BLOCK // max(1, values_per_sample))


def _bernoulli_nll(logits: Tensor, sign: Tensor) -> Tensor:
    """−log p(x | z) = Σ_j softplus(s_j·l_j), s = 1 − 2x, for binary x. logits: (..., D), sign: (B, D) -> (...).

    Without gradients it avoids a log1p per pixel: softplus(t) = relu(t) + log(1 + e^−|t|) and
    1 + e^−|t| = 1/σ(|t|), so Σ_j log(1 + e^−|t_j|) = −log Π_j σ(|t_j|). Each σ(|t|) lies in [½, 1), so a
    product of g of them stays above 2^−g and cannot underflow: one sigmoid per pixel and one log per group of
    g pixels replace a softplus (an exp and a log1p) per pixel. σ(|t|) rounds to 1 once e^−|t| is below about
    half the machine epsilon ε, so what the product drops is at most D·ε/2 per example (5e-5 nats in float32
    for 784 pixels, 1e-13 in float64): float rounding, like the softplus form's own.
    """
    t = logits * sign
    if t.requires_grad:  # the plain form, differentiable
        return F.softplus(t).sum(-1)
    D = t.shape[-1]
    most = min(64, int(-math.log2(torch.finfo(t.dtype).tiny)) - 2)  # 2^−g stays a normal number
    g = max(d for d in range(1, min(most, D) + 1) if D % d == 0)  # group size: a divisor of D
    nll = F.relu(t).sum(-1)
    t.abs_().sigmoid_()  # in place on our own temporary
    return nll - t.unflatten(-1, (D // g, g)).prod(-1).log_().sum(-1)


def image_shape(image_size: int, *, conv: bool = False) -> tuple[int, int, int]:
    """(1, S, S) for ``image_size`` S; ValueError unless S is a positive int (divisible by 4 when ``conv``)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if conv and image_size % 4:
        raise ValueError(f"image_size must be divisible by 4 for the convolutional models, got {image_size}")
    return (1, image_size, image_size)


class Posterior(NamedTuple):
    """q(z | x) = N(mu, diag e^logvar); each (B, d)."""

    mu: Tensor
    logvar: Tensor


class VAELoss(NamedTuple):
    """Batch means, nats per example: loss = reconstruction + β·kl."""

    loss: Tensor
    reconstruction: Tensor
    kl: Tensor


def mlp_encoder(latent_dim: int, hidden: int = 256, dim: int = 784) -> nn.Module:
    """Su's encoder: flatten, Linear(dim, hidden), ReLU, one Linear to (μ, log σ²): (B, ...) -> (B, 2d)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))


def mlp_decoder(latent_dim: int, hidden: int = 256, shape: tuple[int, ...] = IMAGE) -> nn.Module:
    """Su's decoder: (B, d) -> Linear, ReLU, Linear -> (B, *shape) logits or means."""
    dim = int(torch.tensor(shape).prod())
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.Unflatten(1, shape))


def conv_encoder(latent_dim: int, width: int = 32, hidden: int = 256, image_size: int = 28) -> nn.Module:
    """(B, 1, S, S) -> two stride-2 convs (width, 2·width) -> Linear(hidden) -> (B, 2d); S divisible by 4."""
    side = image_shape(image_size, conv=True)[1] // 4
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * width * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))


def conv_decoder(latent_dim: int, width: int = 32, hidden: int = 256, image_size: int = 28) -> nn.Module:
    """(B, d) -> Linear -> (2·width, S/4, S/4) -> two stride-2 transposed convs -> (B, 1, S, S)."""
    side = image_shape(image_size, conv=True)[1] // 4
    return nn.Sequential(
        nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * width * side * side), nn.ReLU(),
        nn.Unflatten(1, (2 * width, side, side)), nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 4, 2, 1))


class VAE(nn.Module):
    """A Gaussian-latent VAE from an encoder (x -> (B, 2d)) and a decoder (z -> (B, 1, S, S)), S = image_size.

    likelihood: "bernoulli" (the decoder gives logits; x must be binary) or "gaussian" (the decoder
    gives means, fixed σ̃ = ``sigma``). The prior is N(0, I) unless a subclass overrides ``prior_mu``.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, *,
                 likelihood: str = "bernoulli", sigma: float = 1.0, image_size: int = 28) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.image_shape = image_shape(image_size)
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.likelihood, self.sigma = latent_dim, likelihood, float(sigma)

    def _check_x(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x must be images of shape (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {getattr(x, 'shape', x)!r}")
        if self.likelihood == "bernoulli":
            check_binary(x)

    @staticmethod
    def _check_y(y: Tensor | None, x: Tensor) -> None:
        if y is not None and (not isinstance(y, Tensor) or y.dim() != 1 or len(y) != len(x)):
            raise ValueError(f"y must be a (B,) tensor of labels with one label per image (B = {len(x)}), "
                             f"got {tuple(y.shape) if isinstance(y, Tensor) else y!r}")

    def encode(self, x: Tensor) -> Posterior:
        """x: (B, 1, S, S) -> Posterior(mu, logvar), each (B, d), logvar clamped."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return Posterior(mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX))

    def decode(self, z: Tensor) -> Tensor:
        """z: (B, d) -> (B, 1, S, S) logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)

    def mean_image(self, z: Tensor) -> Tensor:
        """The decoder's expected image in [0, 1] (sigmoid of the logits for Bernoulli): (B, 1, S, S), S = image_size."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_px(self, out: Tensor, x: Tensor) -> Tensor:
        """log p(x | z) per example from the decoder output: (B, ...) -> (B,)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, x, check=False)
        return gaussian_log_likelihood(out, x, self.sigma)

    def prior_mu(self, y: Tensor | None = None) -> Tensor | None:
        """Mean of the prior p(z) (None = 0); Su's conditional VAE returns the class means μ^y."""
        return None

    def loss(self, x: Tensor, *, beta: float = 1.0, samples: int = 1, y: Tensor | None = None,
             generator: torch.Generator | None = None) -> VAELoss:
        """E9 with the closed-form KL, averaged over ``samples`` posterior draws and the batch."""
        self._check_x(x)
        self._check_y(y, x)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive int, got {samples!r}")
        if (isinstance(beta, bool) or not (isinstance(beta, numbers.Real) or isinstance(beta, Tensor) and beta.dim() == 0)
                or not beta >= 0):
            raise ValueError(f"beta (the KL weight) must be a number >= 0, got {beta!r}")
        post = self.encode(x)
        std = torch.exp(0.5 * post.logvar)
        eps = torch.randn((samples, *post.mu.shape), generator=generator, device=x.device, dtype=x.dtype)
        z = (post.mu + std * eps).flatten(0, 1)
        out = self.decode(z)
        rec = -self.log_px(out, x.repeat(samples, 1, 1, 1)).mean()
        kl = gaussian_kl(post.mu, post.logvar, self.prior_mu(y)).mean()
        return VAELoss(rec + beta * kl, rec, kl)

    def log_importance_weights(self, x: Tensor, k: int, *, y: Tensor | None = None,
                               generator: torch.Generator | None = None) -> Tensor:
        """(k, B): log p(x | zᵢ) + log p(zᵢ) − log q(zᵢ | x), zᵢ ~ q(z | x); the encoder runs once.

        With z = μ + σ ε, log p(z) − log q(z | x) = ½ Σ (ε² + log σ² − (z − m)²) (the 2π terms cancel).
        """
        self._check_x(x)
        self._check_y(y, x)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        post = self.encode(x)
        eps = torch.randn((k, *post.mu.shape), generator=generator, device=x.device, dtype=post.mu.dtype)
        z = post.mu + torch.exp(0.5 * post.logvar) * eps  # (k, B, d)
        log_px = self._log_px_samples(z, x)
        m = self.prior_mu(y)
        zc = z if m is None else z - m
        return log_px + 0.5 * (eps.pow(2) + post.logvar - zc.pow(2)).sum(-1)

    def _log_px_samples(self, z: Tensor, x: Tensor) -> Tensor:
        """log p(x | zᵢ) for z: (k, B, d) and x: (B, ...) -> (k, B).

        Decodes a few samples at a time (about ``_BLOCK`` output values), so the decoder's outputs and the
        likelihood's temporaries stay small: large fresh buffers cost page faults on every call, which
        on a CPU took longer than the arithmetic. x is broadcast over the samples, never copied.
        """
        k, B = z.shape[:2]
        xf = x.flatten(1)  # (B, D)
        step = samples_per_block(xf.numel())
        sign = 1 - 2 * xf if self.likelihood == "bernoulli" else None
        parts = []
        for i in range(0, k, step):
            n = min(step, k - i)
            out = self.decode(z[i:i + n].flatten(0, 1)).reshape(n, B, -1)  # (n, B, D)
            if sign is not None:
                parts.append(-_bernoulli_nll(out, sign))
            else:
                parts.append(gaussian_log_likelihood(out.flatten(0, 1), xf.repeat(n, 1), self.sigma).view(n, B))
        return torch.cat(parts)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n mean images decoded from prior samples: (n, 1, S, S) in [0, 1], S = image_size."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        m = self.prior_mu(y)
        return self.mean_image(z if m is None else z + m)


class MLPVAE(VAE):
    """Su's ``vae_keras.py`` network: 784-256-(μ, log σ²) encoder, d-256-784 decoder."""

    def __init__(self, latent_dim: int = 2, hidden: int = 256, *, image_size: int = 28, **kw) -> None:
        shape = image_shape(image_size)
        super().__init__(mlp_encoder(latent_dim, hidden, image_size**2), mlp_decoder(latent_dim, hidden, shape),
                         latent_dim, image_size=image_size, **kw)


class ConvVAE(VAE):
    """A small convolutional VAE for the full budget (two stride-2 convs each way)."""

    def __init__(self, latent_dim: int = 32, width: int = 32, hidden: int = 256, *, image_size: int = 28,
                 **kw) -> None:
        super().__init__(conv_encoder(latent_dim, width, hidden, image_size),
                         conv_decoder(latent_dim, width, hidden, image_size), latent_dim, image_size=image_size, **kw)


class SuCVAE(MLPVAE):
    """Su's conditional VAE (``cvae_keras.py``): the MLP VAE plus one learned prior mean μ^y per class.

    The KL goes to N(μ^y, I) (E10) instead of N(0, I); encoder and decoder never see y. This is Su's
    design, not the CVAE of Sohn et al. (2015), which feeds y to both networks.
    """

    def __init__(self, latent_dim: int = 2, hidden: int = 256, num_classes: int = 10, **kw) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        super().__init__(latent_dim, hidden, **kw)
        self.num_classes = num_classes
        self.class_mean = nn.Linear(num_classes, latent_dim)  # Dense on the one-hot label, as in Su's code

    def prior_mu(self, y: Tensor | None = None) -> Tensor:
        if y is None:
            raise ValueError("y (class labels, shape (B,)) is required by SuCVAE")
        if not isinstance(y, Tensor) or y.dim() != 1 or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"y must be a (B,) integer tensor of labels, got {getattr(y, 'shape', y)!r}")
        if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(f"y must lie in 0..{self.num_classes - 1}")
        return self.class_mean(F.one_hot(y.long(), self.num_classes).to(self.class_mean.weight.dtype))
