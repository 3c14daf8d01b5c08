r"""VQ-VAE: a convolutional autoencoder whose bottleneck is an m × m map of codebook indices.

Architecture after the paper (section 4.1): stride-2 4×4 convolutions, residual blocks
(ReLU, 3×3 conv, ReLU, 1×1 conv), a 1×1 projection to the code width D, and the mirror image
with transposed convolutions. Loss (chapter: vq-eq-loss, averaged as in vq-eq-loss-code):
$\|x - \hat x\|^2 + \|\mathrm{sg}[z] - e\|^2 + \beta \|z - \mathrm{sg}[e]\|^2$.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dlnotes.vqvae.quantizer import VectorQuantizer, VQResult, perplexity, straight_through

__all__ = ["VectorQuantizer", "VQResult", "perplexity", "straight_through", "VQVAEConfig", "VQVAE",
           "VQVAEOutput", "QUICK", "QUICK_MNIST", "QUICK_MNIST5K", "FULL", "FULL_DIGITS", "FULL_MNIST5K",
           "CIFAR10", "PAPER_CIFAR10", "config_for", "code_bits", "pixel_bits"]


DATASETS = ("digits", "mnist", "mnist5k", "cifar10")


@dataclass(frozen=True)
class VQVAEConfig:
    """Sizes of the model, its prior and its training run; :func:`config_for` picks the named instances."""

    in_channels: int = 1  # 1 for grey digits, 3 for CIFAR-10
    hidden: int = 32  # channels of the conv stacks (paper: 256)
    res_hidden: int = 16  # width inside a residual block (zalando/sonnet: 32)
    res_blocks: int = 1  # residual blocks on each side (paper: 2)
    downsamples: int = 1  # stride-2 convs: an n × n image gives (n / 2^s)^2 codes
    code_dim: int = 16  # D, width of a code vector
    num_codes: int = 32  # K, codebook size
    beta: float = 0.25  # commitment weight (paper's beta; the post's gamma, its beta being the codebook weight 1)
    ema: bool = False  # codebook by moving averages (paper App. A.1) instead of the codebook loss
    decay: float = 0.99  # EMA decay (paper: 0.99; vector-quantize-pytorch's default is 0.8)
    dead_code_threshold: float = 0.0  # restart codes whose EMA count falls below this (0: never)
    data_init: bool = True  # first training batch sets the codes (False: codes stay N(0, 1))
    steps: int = 1000  # VQ-VAE optimiser steps
    batch_size: int = 64  # images per step
    lr: float = 2e-3  # Adam learning rate (paper: 2e-4 at batch 128 for 250 k steps)
    ablation_steps: int = 200  # steps of each small comparison run (codebook usage, beta, drift)
    prior_channels: int = 32  # width of the gated PixelCNN prior
    prior_layers: int = 4  # gated layers of the prior (an m × m code map needs at least m − 1)
    prior_steps: int = 300  # prior optimiser steps (few: 1,500 maps of 4×4 codes overfit quickly)
    prior_lr: float = 3e-3  # prior Adam learning rate
    dataset: str = "digits"  # the data these sizes are for: "digits", "mnist", "mnist5k" or "cifar10"

    def __post_init__(self) -> None:
        for name in ("in_channels", "hidden", "res_hidden", "code_dim", "num_codes", "steps", "batch_size",
                     "ablation_steps", "prior_channels", "prior_layers", "prior_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("res_blocks", "downsamples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")


#: CPU, about a minute: scikit-learn's 8×8 digits → 4×4 codes, K = 32, EMA codebook with restarts.
QUICK = VQVAEConfig(ema=True, dead_code_threshold=1.0)
#: CPU, a few minutes: the same small model on MNIST 28×28 with two stride-2 convs → 7×7 codes, and a prior
#: of 6 layers, the depth a 7×7 map needs for every code to see all earlier ones.
QUICK_MNIST = replace(QUICK, downsamples=2, prior_layers=6, dataset="mnist")
#: One GPU: MNIST 28×28 → 7×7 codes with the sonnet/zalando sizes (EMA, K = 512, D = 64).
FULL = VQVAEConfig(hidden=128, res_hidden=32, res_blocks=2, downsamples=2, code_dim=64, num_codes=512,
                   ema=True, dead_code_threshold=1.0, steps=15_000, batch_size=128, lr=3e-4,
                   ablation_steps=2000, prior_channels=128, prior_layers=12, prior_steps=20_000,
                   prior_lr=3e-4, dataset="mnist")
#: One GPU without MNIST (no internet): the quick model on the 8×8 digits, trained five times longer.
FULL_DIGITS = replace(QUICK, steps=5000, ablation_steps=1000, dataset="digits")
#: One GPU, CIFAR-10 32×32×3 → 8×8 codes: the sonnet example's sizes (128 channels, 32 inside the residual
#: blocks, K = 512, D = 64, Adam 3e-4), batch 128 and 25 k steps, a tenth of the paper's 250 k.
CIFAR10 = VQVAEConfig(in_channels=3, hidden=128, res_hidden=32, res_blocks=2, downsamples=2, code_dim=64,
                      num_codes=512, ema=True, dead_code_threshold=1.0, steps=25_000, batch_size=128, lr=3e-4,
                      prior_channels=128, prior_layers=12, prior_steps=20_000, prior_lr=3e-4, dataset="cifar10")
#: The paper's CIFAR-10 model (section 4.1: two stride-2 convs, 256 hidden units; Adam 2e-4, batch 128,
#: 250 k steps), for reference; K and D, which the paper varies, as in the sonnet example (512, 64).
PAPER_CIFAR10 = replace(CIFAR10, hidden=256, res_hidden=256, dead_code_threshold=0.0, steps=250_000, lr=2e-4,
                        prior_layers=15, prior_steps=100_000)

#: CPU, the 4,000 MNIST training digits of the offline sample (28×28 → 7×7 codes): half the quick
#: model's width, so that the chapter with all its comparisons runs in about two minutes on 2 cores.
QUICK_MNIST5K = replace(QUICK_MNIST, hidden=16, res_hidden=8, steps=800, ablation_steps=150,
                        prior_channels=16, prior_steps=250, dataset="mnist5k")
#: One GPU without a download: the full MNIST model on the 4,000 offline digits (fewer steps: they overfit).
FULL_MNIST5K = replace(FULL, steps=5000, ablation_steps=1000, prior_steps=3000, dataset="mnist5k")

_CONFIGS = {("quick", "digits"): QUICK, ("quick", "mnist"): QUICK_MNIST, ("quick", "mnist5k"): QUICK_MNIST5K,
            ("full", "digits"): FULL_DIGITS, ("full", "mnist"): FULL, ("full", "mnist5k"): FULL_MNIST5K,
            ("full", "cifar10"): CIFAR10}


def config_for(budget: str, dataset: str) -> VQVAEConfig:
    """The configuration of a budget ("quick", "full") on the data a loader returned ("digits", "mnist",
    "mnist5k", "cifar10"; CIFAR-10 has a full budget only)."""
    if (budget, dataset) not in _CONFIGS:
        raise ValueError(f"(budget, dataset) must be one of {sorted(_CONFIGS)}, got {(budget, dataset)!r}")
    return _CONFIGS[budget, dataset]


class VQVAEOutput(NamedTuple):
    """What :meth:`VQVAE.forward` returns."""

    reconstruction: Tensor  # (B, C, H, W)
    z: Tensor  # (B, D, m, m) encoder output before quantisation (paper: z_e(x))
    vq: VQResult  # quantised map, indices (B, m, m), loss terms, perplexity


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), as in the paper."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _encoder(cfg: VQVAEConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = cfg.in_channels
    for i in range(cfg.downsamples):  # each halves H and W
        out = cfg.hidden if i == cfg.downsamples - 1 else max(cfg.hidden // 2, 1)
        layers += [nn.Conv2d(width, out, 4, stride=2, padding=1), nn.ReLU()]
        width = out
    layers.append(nn.Conv2d(width, cfg.hidden, 3, padding=1))
    layers += [ResidualBlock(cfg.hidden, cfg.res_hidden) for _ in range(cfg.res_blocks)]  # distinct blocks
    layers += [nn.ReLU(), nn.Conv2d(cfg.hidden, cfg.code_dim, 1)]  # project to D
    return nn.Sequential(*layers)


def _decoder(cfg: VQVAEConfig) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cfg.code_dim, cfg.hidden, 3, padding=1)]
    layers += [ResidualBlock(cfg.hidden, cfg.res_hidden) for _ in range(cfg.res_blocks)]
    layers.append(nn.ReLU())
    width = cfg.hidden
    for i in range(cfg.downsamples):  # each doubles H and W
        last = i == cfg.downsamples - 1
        out = cfg.in_channels if last else max(cfg.hidden // 2, 1)
        layers.append(nn.ConvTranspose2d(width, out, 4, stride=2, padding=1))
        if not last:
            layers.append(nn.ReLU())
        width = out
    if cfg.downsamples == 0:
        layers.append(nn.Conv2d(width, cfg.in_channels, 3, padding=1))
    return nn.Sequential(*layers)


class VQVAE(nn.Module):
    r"""$x \xrightarrow{\mathrm{enc}} z \xrightarrow{\text{nearest code}} z_q \xrightarrow{\mathrm{dec}} \hat x$ (chapter: vq-eq-nearest)."""

    def __init__(self, config: VQVAEConfig = QUICK) -> None:
        super().__init__()
        self.config = config
        self.encoder = _encoder(config)
        self.quantizer = VectorQuantizer(config.num_codes, config.code_dim, beta=config.beta, ema=config.ema,
                                         decay=config.decay, dead_code_threshold=config.dead_code_threshold,
                                         data_init=config.data_init)
        self.decoder = _decoder(config)

    def _check_images(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
        step = 2 ** self.config.downsamples
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[2] % step or x.shape[3] % step:
            raise ValueError(f"x must have shape (B, {self.config.in_channels}, H, W) with H, W divisible by "
                             f"{step}, got {tuple(x.shape)}")

    def encode(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> z: (B, D, H / 2^s, W / 2^s), continuous."""
        self._check_images(x)
        return self.encoder(x)

    def decode(self, zq: Tensor) -> Tensor:
        """zq: (B, D, m, m) -> (B, C, H, W)."""
        if zq.ndim != 4 or zq.shape[1] != self.config.code_dim:
            raise ValueError(f"zq must have shape (B, {self.config.code_dim}, m, m), got {tuple(zq.shape)}")
        return self.decoder(zq)

    def forward(self, x: Tensor) -> VQVAEOutput:
        """x: (B, C, H, W) -> reconstruction, z and the quantiser's result (codebook updated in training)."""
        z = self.encode(x)
        vq = self.quantizer(z, channel_dim=1)  # explicit: m may equal D
        return VQVAEOutput(self.decoder(vq.quantized), z, vq)

    @torch.no_grad()
    def encode_indices(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> code map (B, m, m) int64; uses no moving-average update."""
        z = self.encode(x)
        flat = z.movedim(1, -1).reshape(-1, self.config.code_dim)  # (B·m·m, D)
        return self.quantizer.nearest(flat).view(z.shape[0], z.shape[2], z.shape[3])

    def decode_indices(self, indices: Tensor) -> Tensor:
        """indices: (B, m, m) -> images (B, C, H, W); equals decoding ``forward``'s quantised map."""
        if indices.ndim != 3:
            raise ValueError(f"indices must have shape (B, m, m), got {tuple(indices.shape)}")
        return self.decoder(self.quantizer.lookup(indices, channel_dim=1))


def pixel_bits(height: int, width: int, channels: int = 1, bits_per_value: int = 8) -> int:
    """Bits to store an image raw: H·W·C values of ``bits_per_value`` bits."""
    return height * width * channels * bits_per_value


def code_bits(m: int, num_codes: int, n: int | None = None) -> float:
    r"""Bits in an m × n code map over K codes: $m n \log_2 K$ (chapter: vq-eq-bits); n defaults to m."""
    if num_codes < 1:
        raise ValueError(f"num_codes (K) must be >= 1, got {num_codes!r}")
    return m * (m if n is None else n) * math.log2(num_codes)
