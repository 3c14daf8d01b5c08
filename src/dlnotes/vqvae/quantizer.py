r"""Vector quantisation with a straight-through gradient: the bottleneck of VQ-VAE.

Notation (van den Oord et al. 2017, "Neural Discrete Representation Learning"): encoder outputs
$z$ (paper: $z_e(x)$), a codebook $E = [e_1, \dots, e_K]$ of $K$ vectors of width $D$, the index
$k = \arg\min_j \|z - e_j\|$ and the selected code $z_q = e_k$. The loss terms use the paper's names:
codebook loss $\|\mathrm{sg}[z] - e\|^2$ (weight 1) and commitment loss $\|z - \mathrm{sg}[e]\|^2$
(weight $\beta = 0.25$). Su's post calls these weights $\beta$ and $\gamma$; the chapter footnotes it.
Chapters reach it as ``dlnotes.vqvae.VectorQuantizer``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class VQResult(NamedTuple):
    """What :class:`VectorQuantizer` returns, always the same fields."""

    quantized: Tensor  # same shape as z: value e_k exactly, gradient to z the identity (chapter: vq-eq-st)
    indices: Tensor  # z's shape without the channel axis, int64 in [0, K)
    loss: Tensor  # codebook_loss + beta * commitment_loss, the quantiser's part of vq-eq-loss
    codebook_loss: Tensor  # mean ||sg[z] - e_k||^2; a constant zero under EMA updates
    commitment_loss: Tensor  # mean ||z - sg[e_k]||^2, unweighted
    perplexity: Tensor  # exp(entropy of this batch's code frequencies), in [1, K] (chapter: vq-eq-ppl)
    counts: Tensor  # (K,) how many vectors of the batch each code received


def straight_through(z: Tensor, zq: Tensor) -> Tensor:
    r"""Forward value ``zq`` (bit for bit), gradient to ``z`` the identity; none reaches ``zq``.

    z, zq: any shape, the same for both.

    The post's form $z + \mathrm{sg}[z_q - z]$ rounds ($z + (z_q - z) \ne z_q$ in floating point);
    $\mathrm{sg}[z_q] + (z - \mathrm{sg}[z])$ adds an exact zero instead, with the same gradient.
    """
    return zq.detach() + (z - z.detach())


def perplexity(counts: Tensor) -> Tensor:
    r"""$\exp(-\sum_k \bar p_k \log \bar p_k)$ with $\bar p_k$ = counts / total (chapter: vq-eq-ppl). counts: (K,)."""
    p = counts.double() / counts.sum().clamp_min(1)
    return torch.exp(-torch.special.xlogy(p, p).sum()).to(torch.float32)


class VectorQuantizer(nn.Module):
    r"""Nearest-neighbour quantisation against a learned ``K × D`` codebook (paper section 3, appendix A.1).

    ``ema=False``: the codebook is a parameter trained by the codebook loss.
    ``ema=True``: it is a buffer updated by exponential moving averages of the assigned counts
    $N_i$ and sums $m_i$ (decay $\delta$, Laplace-smoothed counts), $e_i = m_i / N_i$; then the
    codebook loss is zero and ``loss = beta * commitment_loss``.
    ``dead_code_threshold > 0``: in training, a code whose moving-average count falls below it
    is moved onto a random encoder output of the current batch (count reset to the threshold).
    ``data_init=True``: the first training batch replaces the random initial codes by K of its
    encoder outputs, so that code and encoder scales match (otherwise few codes are ever used).
    """

    def __init__(self, num_codes: int, code_dim: int, *, beta: float = 0.25, ema: bool = False,
                 decay: float = 0.99, eps: float = 1e-5, dead_code_threshold: float = 0.0,
                 data_init: bool = True) -> None:
        super().__init__()
        if not isinstance(num_codes, int) or num_codes < 1:
            raise ValueError(f"num_codes (K) must be an int >= 1, got {num_codes!r}")
        if not isinstance(code_dim, int) or code_dim < 1:
            raise ValueError(f"code_dim (D) must be an int >= 1, got {code_dim!r}")
        if beta < 0:
            raise ValueError(f"beta (commitment weight) must be >= 0, got {beta!r}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if eps <= 0:
            raise ValueError(f"eps (Laplace smoothing) must be > 0, got {eps!r}")
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be >= 0, got {dead_code_threshold!r}")
        self.num_codes, self.code_dim = num_codes, code_dim
        self.beta, self.ema, self.decay, self.eps = float(beta), bool(ema), float(decay), float(eps)
        self.dead_code_threshold = float(dead_code_threshold)
        codes = torch.randn(num_codes, code_dim)
        if ema:  # moved by moving averages, never by an optimiser
            self.register_buffer("codebook", codes)
        else:
            self.codebook = nn.Parameter(codes)
        # Moving averages: N_i (used by EMA and by dead-code detection) and m_i (EMA only).
        # One pseudo-count at the initial code keeps e_i = m_i / N_i finite for unused codes.
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", codes.clone())
        self.register_buffer("initialized", torch.tensor(not data_init))

    def extra_repr(self) -> str:
        return (f"num_codes={self.num_codes}, code_dim={self.code_dim}, beta={self.beta}, ema={self.ema}, "
                f"decay={self.decay}, dead_code_threshold={self.dead_code_threshold}")

    # -- distances and lookup ------------------------------------------------------------
    def _compute_dtype(self, z: Tensor) -> torch.dtype:
        """float32 at least (half/bfloat16 ties would change assignments), float64 if given."""
        return torch.promote_types(torch.promote_types(z.dtype, self.codebook.dtype), torch.float32)

    def distances(self, z: Tensor) -> Tensor:
        r"""Squared distances $\|z\|^2 - 2 z^\top e_j + \|e_j\|^2$ (chapter: vq-eq-dist). z: (N, D) -> (N, K)."""
        self._check_vectors(z)
        with torch.autocast(device_type=z.device.type, enabled=False):
            dt = self._compute_dtype(z)
            zf, e = z.detach().to(dt), self.codebook.detach().to(dt)
            return torch.addmm((e * e).sum(1), zf, e.t(), alpha=-2.0) + (zf * zf).sum(1, keepdim=True)

    def nearest(self, z: Tensor) -> Tensor:
        r"""$k = \arg\min_j \|z - e_j\|^2$ (chapter: vq-eq-nearest). z: (N, D) -> (N,) int64.

        $\|z\|^2$ is the same for every $j$, so the argmin needs only $\|e_j\|^2 - 2 z^\top e_j$.
        """
        self._check_vectors(z)
        with torch.autocast(device_type=z.device.type, enabled=False):
            dt = self._compute_dtype(z)
            zf, e = z.detach().to(dt), self.codebook.detach().to(dt)
            return torch.addmm((e * e).sum(1), zf, e.t(), alpha=-2.0).argmin(1)

    def lookup(self, indices: Tensor, *, channel_dim: int = -1) -> Tensor:
        """The code vectors of ``indices`` (any shape S), with D inserted at ``channel_dim``."""
        if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or indices.dtype.is_complex \
                or indices.dtype == torch.bool:
            raise ValueError(f"indices must be an integer tensor, got {getattr(indices, 'dtype', type(indices))}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ValueError(f"indices must lie in [0, {self.num_codes}), got values in "
                             f"[{int(indices.min())}, {int(indices.max())}]")
        codes = F.embedding(indices.long(), self.codebook)  # (*S, D)
        return codes.movedim(-1, channel_dim)

    # -- the forward pass ------------------------------------------------------------------
    def forward(self, z: Tensor, *, channel_dim: int | None = None) -> VQResult:
        """Quantise z: (B, D, H, W) feature maps, or (..., D) vectors.

        ``channel_dim`` is the axis holding D. Left out, it is 1 for 4-D input and the last axis
        otherwise; where both axis 1 and the last axis of a 3-D or 4-D z have width D (say a
        channels-last map with H == D), the layout is ambiguous and ``channel_dim`` is required.
        """
        cdim = self._check_input(z, channel_dim)
        zc = z.movedim(cdim, -1)  # (..., D): quantise along the channel axis
        flat = zc.reshape(-1, self.code_dim)  # (N, D)
        if self.training and not bool(self.initialized):
            self.init_from_data(flat, channel_dim=-1)
        idx = self.nearest(flat)  # (N,)
        zq = F.embedding(idx, self.codebook).view(zc.shape)  # (..., D), e_k
        diff_sq = (zc.detach() - zq) ** 2  # ||sg[z] - e||^2: gradient to the codebook only
        codebook_loss = diff_sq.mean() if not self.ema else zq.new_zeros(())
        commitment_loss = ((zc - zq.detach()) ** 2).mean()  # ||z - sg[e]||^2: gradient to z only
        loss = codebook_loss + self.beta * commitment_loss  # vq-eq-loss, terms 2 and 3
        counts = torch.bincount(idx, minlength=self.num_codes)
        if self.training:
            self._update(flat, idx, counts)
        quantized = straight_through(zc, zq).movedim(-1, cdim)  # back to z's layout
        return VQResult(quantized, idx.view(zc.shape[:-1]), loss, codebook_loss, commitment_loss,
                        perplexity(counts), counts)

    # -- codebook maintenance -------------------------------------------------------------
    @torch.no_grad()
    def _update(self, flat: Tensor, idx: Tensor, counts: Tensor) -> None:
        """EMA step (chapter: vq-eq-ema) and dead-code restarts; runs after the codes of this batch are chosen."""
        d = self.decay
        flat = flat.detach().to(self.embed_sum.dtype)
        # N_i <- d N_i + (1 - d) n_i
        self.cluster_size.mul_(d).add_(counts.to(self.cluster_size.dtype), alpha=1 - d)
        if self.ema:
            sums = torch.zeros_like(self.embed_sum).index_add_(0, idx, flat)  # sum_j z_ij, (K, D)
            self.embed_sum.mul_(d).add_(sums, alpha=1 - d)  # m_i <- d m_i + (1 - d) sum_j z_ij
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) * n / (n + self.num_codes * self.eps)
            self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(1))  # e_i <- m_i / N_i
        if self.dead_code_threshold > 0:
            dead = (self.cluster_size < self.dead_code_threshold).nonzero().squeeze(1)
            if len(dead):
                pick = torch.randint(len(flat), (len(dead),), device=flat.device)
                self._set_codes(dead, flat[pick], self.dead_code_threshold)

    @torch.no_grad()
    def _set_codes(self, which: Tensor, codes: Tensor, count: float) -> None:
        self.codebook[which] = codes.to(self.codebook.dtype)
        self.cluster_size[which] = count
        self.embed_sum[which] = codes.to(self.embed_sum.dtype) * count

    @torch.no_grad()
    def reset_codebook(self, codes: Tensor) -> None:
        """Set all K codes (codes: (K, D)) and restart the moving averages at one count each."""
        if codes.shape != (self.num_codes, self.code_dim):
            raise ValueError(f"codes must have shape {(self.num_codes, self.code_dim)}, got {tuple(codes.shape)}")
        self._set_codes(torch.arange(self.num_codes, device=codes.device), codes, 1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def init_from_data(self, z: Tensor, *, channel_dim: int | None = None,
                       generator: torch.Generator | None = None) -> None:
        """Data-dependent init: every code becomes a random encoder output of z (as in forward)."""
        cdim = self._check_input(z, channel_dim)
        flat = z.movedim(cdim, -1).reshape(-1, self.code_dim)
        gen_device = generator.device if generator is not None else flat.device
        pick = torch.randint(len(flat), (self.num_codes,), generator=generator, device=gen_device)
        self.reset_codebook(flat[pick.to(flat.device)])

    # -- validation -----------------------------------------------------------------------
    def _check_vectors(self, z: Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.code_dim:
            raise ValueError(f"z must have shape (N, {self.code_dim}), got {tuple(z.shape)}")

    def _check_input(self, z: Tensor, channel_dim: int | None) -> int:
        if not isinstance(z, Tensor) or not z.is_floating_point():
            raise ValueError(f"z must be a floating-point tensor, got {getattr(z, 'dtype', type(z))}")
        if z.ndim < 1:
            raise ValueError("z must have at least one axis (the channel axis of width D), got a scalar")
        if channel_dim is None and z.ndim >= 3 and z.shape[1] == z.shape[-1] == self.code_dim:
            raise ValueError(f"channel_dim is required: z of shape {tuple(z.shape)} has width D = "
                             f"{self.code_dim} on axis 1 and on the last axis (channels first or last?)")
        if channel_dim is None and z.ndim == 4 and z.shape[1] != self.code_dim == z.shape[-1]:
            raise ValueError(f"channel_dim is required for a channels-last z of shape {tuple(z.shape)} "
                             "(pass channel_dim=-1); 4-D input is read as (B, D, H, W) by default")
        cdim = (1 if z.ndim == 4 else -1) if channel_dim is None else channel_dim
        if isinstance(cdim, bool) or not isinstance(cdim, int) or not -z.ndim <= cdim < z.ndim:
            raise ValueError(f"channel_dim must be in [{-z.ndim}, {z.ndim}) for a {z.ndim}-D z, got {cdim}")
        if z.shape[cdim] != self.code_dim:
            raise ValueError(f"z must have {self.code_dim} channels (code_dim) on axis {cdim}, "
                             f"got shape {tuple(z.shape)}")
        return cdim
