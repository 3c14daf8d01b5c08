r"""A gated PixelCNN prior over VQ-VAE code maps, with ancestral sampling (chapter: vq-eq-prior).

$p(c) = \prod_{t=1}^{m^2} p(c_t \mid c_{<t})$ in raster order (row by row, left to right).
Causality comes from two stacks (van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders"): a *vertical* stack whose features, shifted one row down, bring in the rows
above, and a *horizontal* stack that sees the codes to the left in the current row; together they
leave no blind spot (the masked convolutions of the original PixelCNN never see part of the rows
above on the right). Padding and shifts replace masked kernels: every convolution only reaches
positions it may see.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PixelCNN", "MaskedPixelCNN", "PriorSample", "dependence", "down_shift", "right_shift"]


def down_shift(x: Tensor) -> Tensor:
    """Move a (B, C, H, W) map one row down (zeros enter at the top): row i then holds row i - 1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def right_shift(x: Tensor) -> Tensor:
    """Move a (B, C, H, W) map one column right: column j then holds column j - 1."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


def _gate(x: Tensor) -> Tensor:
    """tanh(a) · sigmoid(b) for x = [a, b] split along channels."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer. ``first=True`` excludes the current position from the horizontal stack."""

    def __init__(self, channels: int, kernel: int, *, first: bool) -> None:
        super().__init__()
        self.k, self.first = kernel // 2, first
        # vertical: rows i - k .. i, columns j - k .. j + k; horizontal: columns j - k .. j of row i
        self.v_conv = nn.Conv2d(channels, 2 * channels, (self.k + 1, 2 * self.k + 1))
        self.h_conv = nn.Conv2d(channels, 2 * channels, (1, self.k + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """v, h: (B, C, m, m) -> (v', h'); h' at (i, j) depends on inputs before (i, j) only."""
        k = self.k
        v_pre = self.v_conv(F.pad(v, (k, k, k, 0)))  # (B, 2C, m, m), sees rows <= i
        h_in = right_shift(h) if self.first else h  # first layer: strictly left of j
        h_pre = self.h_conv(F.pad(h_in, (k, 0, 0, 0)))  # (B, 2C, m, m), sees columns <= j
        h_pre = h_pre + self.v_to_h(down_shift(v_pre))  # rows < i only, so no peeking at row i
        h_new = self.h_out(_gate(h_pre))
        if not self.first:
            h_new = h_new + h  # residual (the first layer's h holds the current input: not allowed)
        return _gate(v_pre), h_new


class PriorSample(NamedTuple):
    """What :meth:`PixelCNN.sample` returns."""

    indices: Tensor  # (n, m, m) int64 code maps
    log_prob: Tensor  # (n,) natural-log probability of each map under the (tempered) sampling distribution


class PixelCNN(nn.Module):
    """Autoregressive categorical model of (B, m, m) maps of integers in [0, K)."""

    def __init__(self, num_codes: int, *, channels: int = 64, layers: int = 5, kernel: int = 3) -> None:
        super().__init__()
        if not isinstance(num_codes, int) or num_codes < 1:
            raise ValueError(f"num_codes (K) must be an int >= 1, got {num_codes!r}")
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        if not isinstance(layers, int) or layers < 1:
            raise ValueError(f"layers must be an int >= 1, got {layers!r}")
        if not isinstance(kernel, int) or kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd int >= 3, got {kernel!r}")
        self.num_codes = num_codes
        self.embed = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel, first=i == 0) for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, num_codes, 1))

    def _check_indices(self, indices: Tensor) -> None:
        if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"indices must be an integer tensor, got {getattr(indices, 'dtype', type(indices))}")
        if indices.ndim != 3:
            raise ValueError(f"indices must have shape (B, m, n), got {tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ValueError(f"indices must lie in [0, {self.num_codes}), got values in "
                             f"[{int(indices.min())}, {int(indices.max())}]")

    def forward(self, indices: Tensor) -> Tensor:
        r"""Logits of $p(c_t \mid c_{<t})$ at every position. indices: (B, m, n) -> (B, K, m, n)."""
        self._check_indices(indices)
        x = self.embed(indices.long()).permute(0, 3, 1, 2)  # (B, C, m, n)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def nll(self, indices: Tensor) -> Tensor:
        r"""Mean $-\log_2 p(c_t \mid c_{<t})$ over all codes of the batch: bits per code (scalar)."""
        return F.cross_entropy(self(indices), indices.long()) / math.log(2)

    @torch.no_grad()
    def sample(self, n: int, shape: tuple[int, int], *, temperature: float = 1.0,
               generator: torch.Generator | None = None, given: Tensor | None = None,
               start: int = 0) -> PriorSample:
        r"""Ancestral sampling in raster order: one pass per sampled code (chapter: vq-eq-prior).

        ``given`` (n, m, n') and ``start``: the first ``start`` codes in raster order are copied from
        ``given`` and the rest sampled conditioned on them (completion, e.g. ``start = m' · n'/2`` rows
        for the bottom half); ``log_prob`` then sums over the sampled codes only.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be (m, n) with positive sides, got {shape!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        total = shape[0] * shape[1]
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= total:
            raise ValueError(f"start must be an int in [0, {total}], got {start!r}")
        if start and given is None:
            raise ValueError("given is required when start > 0 (the codes to keep)")
        device = self.embed.weight.device
        codes = torch.zeros(n, *shape, dtype=torch.long, device=device)
        if given is not None:
            self._check_indices(given)
            if tuple(given.shape) != (n, *shape):
                raise ValueError(f"given must have shape {(n, *shape)}, got {tuple(given.shape)}")
            codes.view(n, -1)[:, :start] = given.reshape(n, -1)[:, :start].to(device)
        log_prob = torch.zeros(n, device=device, dtype=torch.float64)
        for t in range(start, total):
            i, j = divmod(t, shape[1])
            logits = self(codes)[:, :, i, j] / temperature  # (n, K): depends on codes before (i, j)
            probs = logits.double().softmax(-1)
            pick = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
            codes[:, i, j] = pick
            log_prob += probs.gather(1, pick[:, None]).squeeze(1).log()
        return PriorSample(codes, log_prob.float())


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel sees only the positions before its centre in raster order.

    Mask "A" (first layer) excludes the centre, mask "B" includes it (van den Oord et al. 2016a).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, mask: str) -> None:
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        if mask not in ("A", "B"):
            raise ValueError(f"mask must be 'A' or 'B', got {mask!r}")
        keep = torch.zeros(kernel, kernel)
        keep[: kernel // 2] = 1  # rows above the centre
        keep[kernel // 2, : kernel // 2 + (mask == "B")] = 1  # left of the centre (and the centre for B)
        self.register_buffer("mask", keep)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class MaskedPixelCNN(nn.Module):
    """The original PixelCNN: one stack of masked 3×3 convolutions, which has a blind spot.

    Same interface as :class:`PixelCNN` (indices (B, m, n) -> logits (B, K, m, n)); used to show
    which earlier codes a single masked stack never sees, however deep.
    """

    def __init__(self, num_codes: int, *, channels: int = 32, layers: int = 5) -> None:
        super().__init__()
        if not isinstance(num_codes, int) or num_codes < 1:
            raise ValueError(f"num_codes (K) must be an int >= 1, got {num_codes!r}")
        if not isinstance(layers, int) or layers < 1:
            raise ValueError(f"layers must be an int >= 1, got {layers!r}")
        self.num_codes = num_codes
        self.embed = nn.Embedding(num_codes, channels)
        convs = [MaskedConv2d(channels, channels, 3, mask="A" if i == 0 else "B") for i in range(layers)]
        self.convs = nn.ModuleList(convs)
        self.head = nn.Conv2d(channels, num_codes, 1)

    def forward(self, indices: Tensor) -> Tensor:
        """indices: (B, m, n) -> logits (B, K, m, n)."""
        x = self.embed(indices.long()).permute(0, 3, 1, 2)
        for i, conv in enumerate(self.convs):
            x = conv(x if i == 0 else torch.relu(x))
        return self.head(torch.relu(x))


@torch.no_grad()
def dependence(model: nn.Module, codes: Tensor) -> Tensor:
    """Which codes each prediction depends on, found by changing one code at a time.

    codes: (1, m, n) a code map; returns ``sees`` (m·n, m·n) bool in raster order, with
    ``sees[t, s]`` True when the logits at position t change when code s changes. Exact in
    float64: an unreachable code leaves the logits bit for bit unchanged.
    """
    if codes.ndim != 3 or codes.shape[0] != 1:
        raise ValueError(f"codes must have shape (1, m, n), got {tuple(codes.shape)}")
    num_codes = model.num_codes
    flat = codes.reshape(-1)
    n_pos = flat.numel()
    base = model(codes)
    sees = torch.zeros(n_pos, n_pos, dtype=torch.bool)
    for s in range(n_pos):
        changed = flat.clone()
        changed[s] = (changed[s] + 1) % num_codes
        moved = (model(changed.view_as(codes)) - base).abs().amax(1).reshape(-1) > 0
        sees[:, s] = moved.cpu()
    return sees
