r"""The chapter's experiment: train a VQ-VAE and its prior on images, evaluate, count bits.

Every loop goes through :func:`dlnotes.runtime.cap`, so that the smoke cap (``DLNOTES_SMOKE=1``)
runs the full budget on a CPU in a few steps. The loss is the chapter's (vq-eq-loss) with the
reconstruction averaged over pixels and divided by the data variance, the quantiser's two terms
averaged over the entries of $z$ (see :func:`vqvae_loss`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dlnotes import runtime, train
from dlnotes.vqvae.model import VQVAE, VQVAEConfig, VQVAEOutput
from dlnotes.vqvae.pixelcnn import PixelCNN
from dlnotes.vqvae.quantizer import perplexity

__all__ = ["vqvae_loss", "train_vqvae", "Evaluation", "evaluate", "encode_all", "train_prior",
           "bits_per_code", "unigram_bits", "SMOKE_STEPS"]

#: Optimiser steps of every training run under the smoke cap.
SMOKE_STEPS = 3


def vqvae_loss(out: VQVAEOutput, x: Tensor, data_variance: float, *, vq_terms: bool = True) -> tuple[Tensor, Tensor]:
    r"""(loss, reconstruction MSE) of one batch: $\mathrm{MSE}(x, \hat x) / \mathrm{Var}[x]$ plus the
    quantiser's ``codebook_loss + beta * commitment_loss`` (each a mean over the $B \cdot m^2 \cdot D$
    entries of $z$); ``vq_terms=False`` keeps the reconstruction term only. x: (B, C, H, W)."""
    if data_variance <= 0:
        raise ValueError(f"data_variance must be > 0, got {data_variance!r}")
    recon = ((out.reconstruction - x) ** 2).mean()
    loss = recon / data_variance + (out.vq.loss if vq_terms else 0.0)
    return loss, recon


def train_vqvae(cfg: VQVAEConfig, images: Tensor, steps: int, *, data_variance: float | None = None,
                seed: int = 0, vq_terms: bool = True, snapshot_every: int = 0, device: torch.device | str = "cpu",
                progress: bool = True, description: str = "VQ-VAE") -> tuple[VQVAE, train.History, list]:
    """Train a VQ-VAE on images (N, C, H, W) for ``steps`` Adam steps (capped under the smoke cap).

    Returns the model in eval mode, its history (recon_mse, commitment, perplexity) and, every
    ``snapshot_every`` steps, (step, code counts of the batch, perplexity of the batch).
    """
    steps = runtime.cap(steps, SMOKE_STEPS)
    variance = images.var().item() if data_variance is None else data_variance
    gen = runtime.seed_everything(seed)
    model = VQVAE(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    snapshots: list = []
    counter = [0]

    def loss_fn(model: VQVAE, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict]:
        x = batch[0]
        out = model(x)
        loss, recon = vqvae_loss(out, x, variance, vq_terms=vq_terms)
        counter[0] += 1
        if snapshot_every and (counter[0] == 1 or counter[0] % snapshot_every == 0):
            snapshots.append((counter[0], out.vq.counts.cpu().numpy(), out.vq.perplexity.item()))
        return loss, {"recon_mse": recon.item(), "commitment": out.vq.commitment_loss.item(),
                      "perplexity": out.vq.perplexity.item()}

    batches = train.batches(images, batch_size=min(cfg.batch_size, len(images)), generator=gen, device=device)
    history = train.fit(model, loss_fn, batches, optimizer=optimizer, steps=steps,
                        log_every=max(steps // 40, 1), progress=progress, description=description)
    return model.eval(), history, snapshots


class Evaluation(NamedTuple):
    """What :func:`evaluate` returns (eval mode: no codebook update)."""

    mse: float  # mean squared reconstruction error per pixel value
    perplexity: float  # code-usage perplexity over all grid cells
    used: float  # fraction of the K codes used at least once
    indices: Tensor  # (N, m, m) code maps
    reconstruction: Tensor  # (N, C, H, W) clamped to [0, 1], for display
    mean: Tensor  # (N, C, H, W) unclamped decoder output (a Gaussian's mean for likelihoods)


@torch.no_grad()
def evaluate(model: VQVAE, images: Tensor, *, chunk: int = 1024) -> Evaluation:
    """Reconstruction error, code usage and code maps of images (N, C, H, W), a chunk at a time."""
    model.eval()
    device = next(model.parameters()).device
    outs = [model(images[i:i + chunk].to(device)) for i in range(0, len(images), chunk)]
    mean = torch.cat([out.reconstruction.cpu() for out in outs])
    counts = sum(out.vq.counts.cpu() for out in outs)  # (K,)
    return Evaluation(((mean - images) ** 2).mean().item(), perplexity(counts).item(),
                      (counts > 0).float().mean().item(), torch.cat([out.vq.indices.cpu() for out in outs]),
                      mean.clamp(0, 1), mean)


@torch.no_grad()
def encode_all(model: VQVAE, images: Tensor, *, chunk: int = 2048) -> Tensor:
    """Code maps (N, m, m) of images (N, C, H, W), a chunk at a time."""
    device = next(model.parameters()).device
    return torch.cat([model.encode_indices(images[i:i + chunk].to(device)).cpu()
                      for i in range(0, len(images), chunk)])


def train_prior(cfg: VQVAEConfig, codes: Tensor, *, seed: int = 1, device: torch.device | str = "cpu",
                progress: bool = True, description: str = "PixelCNN prior") -> tuple[PixelCNN, train.History]:
    """Fit a gated PixelCNN to code maps (N, m, m) by maximum likelihood (loss in bits per code)."""
    steps = runtime.cap(cfg.prior_steps, SMOKE_STEPS)
    gen = runtime.seed_everything(seed)
    prior = PixelCNN(cfg.num_codes, channels=cfg.prior_channels, layers=cfg.prior_layers).to(device)
    batches = train.batches(codes, batch_size=min(cfg.batch_size, len(codes)), generator=gen, device=device)
    history = train.fit(prior, lambda p, batch: (p.nll(batch[0]), {}), batches,
                        optimizer=torch.optim.Adam(prior.parameters(), lr=cfg.prior_lr), steps=steps,
                        log_every=max(steps // 40, 1), progress=progress, description=description)
    return prior.eval(), history


@torch.no_grad()
def bits_per_code(prior: PixelCNN, codes: Tensor, *, chunk: int = 4096) -> float:
    r"""Mean $-\log_2 p(c_t \mid c_{<t})$ over every code of the maps codes: (N, m, m)."""
    device = prior.embed.weight.device
    total = sum(prior.nll(codes[i:i + chunk].to(device)).item() * len(codes[i:i + chunk])
                for i in range(0, len(codes), chunk))
    return total / len(codes)


def unigram_bits(train_codes: Tensor, test_codes: Tensor, num_codes: int) -> tuple[float, Tensor]:
    r"""The unigram baseline: codes independent, with their training frequencies (add-one smoothed).

    Returns (mean $-\log_2 \hat p(c)$ over the test codes, the (K,) frequencies $\hat p$).
    """
    counts = torch.bincount(train_codes.flatten(), minlength=num_codes).double() + 1.0
    freq = counts / counts.sum()
    return -freq.log2()[test_codes.flatten()].mean().item(), freq

