r"""NVAE: a bottom-up encoder, a top-down path shared by prior and posterior, groups of latents per scale.

Latent groups $z_1, \dots, z_L$ run top (coarsest map) to bottom. The bottom-up pass turns $x$ into one
feature map per group, once. The top-down pass starts from a learned constant $h_0$; at group $l$ its state
$h$ (a function of $z_{<l}$ only) gives the prior $p(z_l \mid z_{<l})$, and $h$ plus the encoder feature
gives the posterior $q(z_l \mid z_{<l}, x)$, residual to the prior (N5) when ``config.residual``.
The sampled $z_l$ is merged into $h$; $x$ reaches the decoder only through these samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.nvae.cells import DecoderCell, Down, EncoderCell, Up
from dlnotes.nvae.kl import SIGMA_FLOOR, normal_kl, normal_log_prob, soft_clamp
from dlnotes.nvae.weight_norm import apply_weight_norm

__all__ = ["NVAEConfig", "NVAE", "NVAEOutput", "NVAESample", "readjust_bn", "latent_count"]


@dataclass(frozen=True)
class NVAEConfig:
    """Sizes of an NVAE and of its training run (one named instance per budget)."""

    image_size: int = 28  # H == W of the data
    pad: int = 2  # zeros on each side: MNIST 28 → 32, the likelihood covers the central 28 × 28 only
    in_channels: int = 1  # grey images with a Bernoulli decoder
    channels: int = 16  # width after the stem; every Down doubles it
    preprocess: int = 1  # stride-2 stages before the finest latent scale
    num_scales: int = 2  # latent scales; each coarser one halves the map
    groups: tuple[int, ...] = (2, 2)  # groups per scale, top (coarsest) scale first
    latent_channels: int = 4  # channels of every group's latent map
    cells_per_group: int = 1  # residual cells between two groups, on each side
    expand: int = 6  # decoder cells' inverted-bottleneck expansion
    kernel: int = 5  # decoder cells' depthwise kernel (odd)
    post_cells: int = 1  # decoder cells after each Up of the post-processing (0: Up only)
    residual: bool = True  # posterior relative to the prior (N5); False: absolute posterior
    steps: int = 400  # optimiser steps
    batch_size: int = 64
    lr: float = 1e-2  # Adamax (paper: 1e-2, eps 1e-3, weight decay 3e-4)
    lr_min: float = 1e-4  # end of the cosine decay
    lr_warmup: float = 0.05  # share of the steps with a linear learning-rate warm-up
    weight_decay: float = 3e-4
    eps: float = 1e-3
    kl_warmup: float = 0.3  # share of the steps over which β rises to 1 (N10)
    balance: bool = True  # KL balancing while β < 1 (N11)
    sr_lambda: float = 1e-2  # spectral and BN penalties (N8, N9); 0 turns both off
    weight_norm: bool = False  # weight-normalised convolutions, as in the paper (nvae.apply_weight_norm)
    channels_last: bool = False  # memory format on CUDA
    dataset: str = "mnist"

    def __post_init__(self) -> None:
        for name in ("image_size", "in_channels", "channels", "num_scales", "latent_channels",
                     "cells_per_group", "expand", "steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {self.kernel!r}")
        if not isinstance(self.preprocess, int) or self.preprocess < 0 or self.pad < 0 or self.post_cells < 0:
            raise ValueError(f"preprocess, pad and post_cells must be ints >= 0, got "
                             f"{self.preprocess!r}, {self.pad!r}, {self.post_cells!r}")
        groups = tuple(self.groups)
        if len(groups) != self.num_scales or any(not isinstance(g, int) or g < 1 for g in groups):
            raise ValueError(f"groups must hold one count >= 1 per scale (num_scales = {self.num_scales}), "
                             f"got {self.groups!r}")
        size, halvings = self.padded_size, self.preprocess + self.num_scales - 1
        if size % 2 ** halvings:
            raise ValueError(f"image_size + 2·pad = {size} cannot be halved {halvings} times "
                             f"(preprocess + num_scales − 1); choose image_size or pad so that 2^{halvings} divides it")
        if not 0 < self.kl_warmup <= 1 or not 0 <= self.lr_warmup < 1:
            raise ValueError(f"kl_warmup must be in (0, 1] and lr_warmup in [0, 1), got "
                             f"{self.kl_warmup!r}, {self.lr_warmup!r}")

    @property
    def padded_size(self) -> int:
        return self.image_size + 2 * self.pad

    @property
    def num_groups(self) -> int:
        return sum(self.groups)

    def scale_sizes(self) -> tuple[int, ...]:
        """Side of the latent maps at each scale, top first."""
        finest = self.padded_size // 2 ** self.preprocess
        return tuple(finest // 2 ** (self.num_scales - 1 - s) for s in range(self.num_scales))

    def scale_channels(self) -> tuple[int, ...]:
        """Feature channels at each latent scale, top first."""
        return tuple(self.channels * 2 ** (self.preprocess + self.num_scales - 1 - s) for s in range(self.num_scales))

    def group_scale(self) -> tuple[int, ...]:
        """Scale index (0 = top) of every group, top-down order."""
        return tuple(s for s, g in enumerate(self.groups) for _ in range(g))


def latent_count(config: NVAEConfig) -> int:
    """Latent dimensions of one image: Σ groups × latent_channels × side² (N13)."""
    return sum(g * config.latent_channels * side ** 2 for g, side in zip(config.groups, config.scale_sizes()))


class NVAEOutput(NamedTuple):
    logits: Tensor  # (B, C, H, W) Bernoulli logits on the data's H × W
    recon: Tensor  # (B,) −log p(x | z) in nats
    kl: Tensor  # (B, L) analytic KL of every group, E_q over z_{<l} by the one sample
    log_q: Tensor  # (B,) log q(z | x) of the sampled z
    log_p: Tensor  # (B,) log p(z) of the sampled z
    zs: list  # L tensors (B, latent_channels, side, side), top first


class NVAESample(NamedTuple):
    probs: Tensor  # (N, C, H, W) Bernoulli means
    zs: list  # the latents used, top first


def _stack(c: int, n: int, cell: type, **kw) -> nn.Sequential:
    return nn.Sequential(*[cell(c, **kw) for _ in range(n)])


class NVAE(nn.Module):
    """A hierarchical VAE for grey images in [0, 1] with a Bernoulli decoder; see the module docstring."""

    def __init__(self, config: NVAEConfig) -> None:
        super().__init__()
        self.config = cfg = config
        chans, z_ch, scale_of = cfg.scale_channels(), cfg.latent_channels, cfg.group_scale()
        c, pre = cfg.channels, []
        dec_kw = dict(expand=cfg.expand, kernel=cfg.kernel)
        self.stem = nn.Conv2d(cfg.in_channels, c, 3, padding=1)
        for _ in range(cfg.preprocess):
            pre += [EncoderCell(c), Down(c, 2 * c)]
            c *= 2
        self.pre = nn.Sequential(*pre)
        # bottom-up: the cells that produce each group's feature, and the Down between scales (s+1 → s)
        self.enc = nn.ModuleList(_stack(chans[s], cfg.cells_per_group, EncoderCell) for s in scale_of)
        self.enc_down = nn.ModuleList(Down(chans[s + 1], chans[s]) for s in range(cfg.num_scales - 1))
        # top-down: learned start h0, cells before each group (none before the first), Up between scales
        side0 = cfg.scale_sizes()[0]
        self.h0 = nn.Parameter(0.1 * torch.randn(1, chans[0], side0, side0))
        self.dec = nn.ModuleList(_stack(chans[s], cfg.cells_per_group if l else 0, DecoderCell, **dec_kw)
                                 for l, s in enumerate(scale_of))
        self.dec_up = nn.ModuleList(Up(chans[s], chans[s + 1]) for s in range(cfg.num_scales - 1))
        self.prior_head = nn.ModuleList(  # the first group's prior is N(0, 1): no head
            nn.Sequential(nn.ELU(), nn.Conv2d(chans[s], 2 * z_ch, 3, padding=1)) if l else nn.Identity()
            for l, s in enumerate(scale_of))
        self.mix = nn.ModuleList(nn.Conv2d(chans[s], chans[s], 1) for s in scale_of)
        self.post_head = nn.ModuleList(nn.Sequential(nn.ELU(), nn.Conv2d(chans[s], 2 * z_ch, 3, padding=1))
                                       for s in scale_of)
        self.z_in = nn.ModuleList(nn.Conv2d(chans[s] + z_ch, chans[s], 1) for s in scale_of)
        post = []
        for _ in range(cfg.preprocess):
            post += [Up(c, c // 2), *[DecoderCell(c // 2, **dec_kw) for _ in range(cfg.post_cells)]]
            c //= 2
        self.post = nn.Sequential(*post)
        self.out = nn.Sequential(nn.ELU(), nn.Conv2d(c, cfg.in_channels, 3, padding=1))
        if cfg.weight_norm:
            apply_weight_norm(self)

    # -- bottom-up ---------------------------------------------------------------------------------
    def encode_features(self, x: Tensor) -> list[Tensor]:
        """x: (B, C, H, W) in [0, 1] → one feature map per group, top first (run once per image)."""
        cfg = self.config
        if x.dim() != 4 or tuple(x.shape[1:]) != (cfg.in_channels, cfg.image_size, cfg.image_size):
            raise ValueError(f"x must be (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), "
                             f"got {tuple(x.shape)}")
        h = self.pre(self.stem(F.pad(2 * x - 1, (cfg.pad,) * 4)))
        feats: list = [None] * cfg.num_groups
        scale_of = cfg.group_scale()
        for l in reversed(range(cfg.num_groups)):  # finest group first
            h = self.enc[l](h)
            feats[l] = h
            if l and scale_of[l - 1] != scale_of[l]:
                h = self.enc_down[scale_of[l - 1]](h)
        return feats

    # -- top-down ----------------------------------------------------------------------------------
    def _prior(self, l: int, h: Tensor) -> tuple[Tensor, Tensor]:
        if l:
            raw = self.prior_head[l](h)
        else:  # N(0, 1) before the clamp and the floor, whatever the width of h
            raw = h.new_zeros(h.shape[0], 2 * self.config.latent_channels, *h.shape[2:])
        return raw.float().chunk(2, dim=1)  # raw μ, raw log σ, before the soft clamp

    @torch.compiler.disable
    def _noise(self, batch: int, start: int, device: torch.device,
               generator: torch.Generator | None) -> list[Tensor | None]:
        """Standard normal noise (B, latent_channels, side, side) for groups start..L-1 (None before), in order.

        Drawn in one place, outside the traced loop: ``torch.compile`` cannot trace a ``generator`` argument,
        and a graph break inside the loop over groups made it fall back to eager and compile the per-group
        helpers once per group. The draws are those the loop used to make, in the same order.
        """
        sides, z_ch = self.config.scale_sizes(), self.config.latent_channels
        return [None if l < start else
                torch.randn(batch, z_ch, sides[s], sides[s], generator=generator, device=device)
                for l, s in enumerate(self.config.group_scale())]

    def top_down(self, batch: int, *, feats: list[Tensor] | None = None, fixed: list | None = None,
                 temperature: float = 1.0, generator: torch.Generator | None = None):
        """Run the top-down path; return (logits (B, C, H, W), kl (B, L) or None, log_q, log_p, zs).

        Group l takes z from ``fixed[l]`` when given, else from the posterior when ``feats`` are given,
        else from the prior with σ scaled by ``temperature`` (N12).
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        cfg, scale_of = self.config, self.config.group_scale()
        h = self.h0.expand(batch, -1, -1, -1)
        start = len(fixed) if fixed is not None else 0
        eps = self._noise(batch, start, h.device, generator)  # before the loop: no graph break inside it
        kls, log_q, log_p, zs = [], 0.0, 0.0, []
        for l in range(cfg.num_groups):
            if l and scale_of[l] != scale_of[l - 1]:
                h = self.dec_up[scale_of[l - 1]](h)
            h = self.dec[l](h)
            mu_raw, ls_raw = self._prior(l, h)
            mu_p, sig_p = soft_clamp(mu_raw), torch.exp(soft_clamp(ls_raw)) + SIGMA_FLOOR
            z = fixed[l] if fixed is not None and l < len(fixed) else None
            if feats is not None:
                dmu, dls = self.post_head[l](feats[l] + self.mix[l](h)).float().chunk(2, dim=1)
                if cfg.residual:  # N5: shift the prior's parameters
                    dmu, dls = mu_raw + dmu, ls_raw + dls
                mu_q, sig_q = soft_clamp(dmu), torch.exp(soft_clamp(dls)) + SIGMA_FLOOR
                if z is None:
                    z = mu_q + sig_q * eps[l]
                kls.append(normal_kl(mu_q, sig_q, mu_p, sig_p).flatten(1).sum(1))
                log_q = log_q + normal_log_prob(z, mu_q, sig_q).flatten(1).sum(1)
            elif z is None:
                z = mu_p + temperature * sig_p * eps[l]
            log_p = log_p + normal_log_prob(z, mu_p, sig_p).flatten(1).sum(1)
            zs.append(z)
            h = self.z_in[l](torch.cat([h, z.to(h.dtype)], dim=1))
        logits = self.out(self.post(h)).float()
        p = cfg.pad
        logits = logits[:, :, p:p + cfg.image_size, p:p + cfg.image_size]  # the central crop
        kl = torch.stack(kls, dim=1) if kls else None
        return logits, kl, log_q, log_p, zs

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> NVAEOutput:
        """x: (B, C, H, W) binary images → one posterior sample and every term of the ELBO."""
        logits, kl, log_q, log_p, zs = self.top_down(x.shape[0], feats=self.encode_features(x), generator=generator)
        recon = F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none").flatten(1).sum(1)
        return NVAEOutput(logits, recon, kl, log_q, log_p, zs)

    @torch.no_grad()
    def generate(self, n: int, *, temperature: float = 1.0, fixed: list | None = None,
                 generator: torch.Generator | None = None) -> NVAESample:
        """n samples from the prior at ``temperature``; ``fixed`` latents (top first) are kept."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        logits, _, _, _, zs = self.top_down(n, fixed=fixed, temperature=temperature, generator=generator)
        return NVAESample(torch.sigmoid(logits), zs)

    @torch.no_grad()
    def log_importance_weights(self, x: Tensor, k: int) -> Tensor:
        r"""$\log p(x \mid z_j) + \log p(z_j) - \log q(z_j \mid x)$ for k posterior samples: (k, B).

        The bottom-up pass runs once per image; its features are repeated k times for the top-down pass.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        b = x.shape[0]
        feats = [f.repeat(k, 1, 1, 1) for f in self.encode_features(x)]  # (k·B, ...), sample-major
        logits, _, log_q, log_p, _ = self.top_down(k * b, feats=feats)
        xk = x.float().repeat(k, 1, 1, 1)
        log_px = -F.binary_cross_entropy_with_logits(logits, xk, reduction="none").flatten(1).sum(1)
        return (log_px + log_p - log_q).reshape(k, b)


def _decoder_bns(model: NVAE) -> list:
    parts = [model.dec, model.dec_up, model.post]
    return [m for part in parts for m in part.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def readjust_bn(model: NVAE, *, batches: int = 100, batch_size: int = 64, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> None:
    """Re-estimate the decoder's BN statistics on samples at ``temperature`` (train mode, no gradient).

    The running averages are reset and replaced by the average over ``batches`` sampling batches; the
    model is left in eval mode, ready to sample with the new statistics.
    """
    if batches < 1 or batch_size < 2:
        raise ValueError(f"batches must be >= 1 and batch_size >= 2, got {batches!r}, {batch_size!r}")
    bns = _decoder_bns(model)
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calls
    model.train()
    try:
        for _ in range(batches):
            model.top_down(batch_size, temperature=temperature, generator=generator)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
        model.eval()
