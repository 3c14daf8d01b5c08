"""Su's one-step clustering VAE (part 四): a Gaussian-mixture prior over classes and a classifier q(y | z).

Latents (z, y) with y discrete: q(z, y | x) = q(y | z) q(z | x), p(z | y) = N(μ_y, I), p(y) uniform.
The loss (E19 with E20, z ~ q(z | x) reparameterised) is

    λ·½‖x − x̂(z)‖² + Σ_y q(y | z) [½‖z − μ_y‖² − ½ Σ log σ²] + Σ_y q(y | z) log q(y | z),

the categorical KL to the uniform p(y) up to its constant log C. Accuracy: Su's majority vote and the
stricter one-to-one (Hungarian) matching.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from dlnotes.vae.models import (LOGVAR_MAX, LOGVAR_MIN, Posterior, conv_decoder, conv_encoder, image_shape, mlp_decoder,
                                mlp_encoder)

__all__ = ["ClusteringVAE", "ClusterLoss", "majority_vote_accuracy", "hungarian_accuracy"]


class ClusterLoss(NamedTuple):
    """Batch means: loss = reconstruction + alignment + categorical."""

    loss: Tensor
    reconstruction: Tensor
    alignment: Tensor
    categorical: Tensor


class ClusteringVAE(nn.Module):
    """arch "conv" (Su's: two stride-2 convs) or "mlp" (784-256, faster on a CPU); decoder means in [0, 1].

    Images (B, 1, S, S), S = ``image_size`` (divisible by 4 for "conv")."""

    def __init__(self, latent_dim: int = 20, num_classes: int = 10, *, arch: str = "mlp", hidden: int = 256,
                 recon_weight: float = 5.0, image_size: int = 28) -> None:
        super().__init__()
        if arch not in ("mlp", "conv"):
            raise ValueError(f"arch must be 'mlp' or 'conv', got {arch!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if isinstance(recon_weight, bool) or not isinstance(recon_weight, (int, float)) or not recon_weight >= 0:
            raise ValueError(f"recon_weight must be a number >= 0, got {recon_weight!r}")
        self.image_shape = image_shape(image_size, conv=arch == "conv")
        if arch == "mlp":
            self.encoder = mlp_encoder(latent_dim, hidden, image_size**2)
            self.decoder = mlp_decoder(latent_dim, hidden, self.image_shape)
        else:
            self.encoder = conv_encoder(latent_dim, 32, hidden, image_size)
            self.decoder = conv_decoder(latent_dim, 32, hidden, image_size)
        self.classifier = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        self.means = nn.Parameter(torch.zeros(num_classes, latent_dim))  # μ_y, zero-initialised as in Su's code
        self.latent_dim, self.num_classes, self.recon_weight = latent_dim, num_classes, float(recon_weight)

    def encode(self, x: Tensor) -> Posterior:
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x must be images of shape (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {getattr(x, 'shape', x)!r}")
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return Posterior(mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX))

    def loss(self, x: Tensor, *, generator: torch.Generator | None = None) -> ClusterLoss:
        post = self.encode(x)
        eps = torch.randn(post.mu.shape, generator=generator, device=x.device, dtype=x.dtype)
        z = post.mu + torch.exp(0.5 * post.logvar) * eps
        x_hat = torch.sigmoid(self.decoder(z))
        rec = self.recon_weight * 0.5 * (x - x_hat).pow(2).flatten(1).sum(1)
        q = torch.softmax(self.classifier(z), dim=-1)  # (B, C)
        dist = 0.5 * (z[:, None] - self.means[None]).pow(2).sum(-1)  # (B, C)
        align = (q * dist).sum(-1) - 0.5 * post.logvar.sum(-1)
        cat = (q * torch.log(q + 1e-12)).sum(-1)
        return ClusterLoss((rec + align + cat).mean(), rec.mean(), align.mean(), cat.mean())

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Cluster of each image, argmax_y q(y | μ(x)): (B,) int64."""
        return torch.cat([self.classifier(self.encode(x[i:i + batch_size]).mu).argmax(-1)
                          for i in range(0, len(x), batch_size)])


def _check_labels(pred, labels) -> tuple[np.ndarray, np.ndarray]:
    pred, labels = np.asarray(pred).astype(int), np.asarray(labels).astype(int)
    if pred.shape != labels.shape or pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"pred and labels must be equal-length 1-D arrays, got {pred.shape} and {labels.shape}")
    if pred.min() < 0 or labels.min() < 0:
        raise ValueError("pred and labels must be non-negative integers")
    return pred, labels


def _contingency(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    table = np.zeros((pred.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(table, (pred, labels), 1)
    return table


def majority_vote_accuracy(pred, labels) -> float:
    """Su's metric: each cluster counts its most frequent true label (two clusters may share one)."""
    pred, labels = _check_labels(pred, labels)
    return float(_contingency(pred, labels).max(1).sum() / len(pred))


def hungarian_accuracy(pred, labels) -> float:
    """Accuracy under the best one-to-one map of clusters to labels (stricter than majority vote)."""
    from scipy.optimize import linear_sum_assignment

    pred, labels = _check_labels(pred, labels)
    table = _contingency(pred, labels)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(pred))
