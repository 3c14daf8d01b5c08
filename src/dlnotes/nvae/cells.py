r"""NVAE's residual cells (paper Fig. 3): output = skip + 0.1 · branch.

Encoder cell: BN–Swish–conv3×3–BN–Swish–conv3×3, then squeeze-and-excitation.
Decoder cell: BN–conv1×1 (expand ×E)–BN–Swish–depthwise conv5×5–BN–Swish–conv1×1–BN, then SE.
Resampling cells change the map size by 2 (stride-2 conv down, nearest-neighbour up then conv).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BN_MOMENTUM", "RESIDUAL_SCALE", "SqueezeExcite", "EncoderCell", "DecoderCell", "Down", "Up"]

#: BatchNorm momentum of the paper's code (PyTorch's default is 0.1).
BN_MOMENTUM = 0.05
#: Scale of every residual branch, which keeps a deep stack near the identity at the start.
RESIDUAL_SCALE = 0.1


def _check(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=BN_MOMENTUM)


class SqueezeExcite(nn.Module):
    """Channel gate: global average → linear → ReLU → linear → sigmoid. x: (B, C, H, W)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        _check(channels=channels, reduction=reduction)
        hidden = max(channels // reduction, 4)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean((2, 3)))  # (B, C)
        return x * gate[:, :, None, None]


class EncoderCell(nn.Module):
    """Bottom-up residual cell; keeps (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        _check(channels=channels)
        self.branch = nn.Sequential(_bn(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                    _bn(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                    SqueezeExcite(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + RESIDUAL_SCALE * self.branch(x)


class DecoderCell(nn.Module):
    """Top-down residual cell with an inverted bottleneck (×``expand``, depthwise ``kernel``²); keeps (B, C, H, W)."""

    def __init__(self, channels: int, expand: int = 6, kernel: int = 5) -> None:
        super().__init__()
        _check(channels=channels, expand=expand, kernel=kernel)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (the map keeps its size), got {kernel!r}")
        wide = channels * expand
        self.branch = nn.Sequential(
            _bn(channels), nn.Conv2d(channels, wide, 1), _bn(wide), nn.SiLU(),
            nn.Conv2d(wide, wide, kernel, padding=kernel // 2, groups=wide), _bn(wide), nn.SiLU(),
            nn.Conv2d(wide, channels, 1), _bn(channels), SqueezeExcite(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + RESIDUAL_SCALE * self.branch(x)


class Down(nn.Module):
    """Halve H and W, channels c_in → c_out: (B, c_in, H, W) → (B, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        _check(c_in=c_in, c_out=c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride=2)
        self.branch = nn.Sequential(_bn(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, stride=2, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + RESIDUAL_SCALE * self.branch(x)


class Up(nn.Module):
    """Double H and W, channels c_in → c_out: (B, c_in, H, W) → (B, c_out, 2H, 2W)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        _check(c_in=c_in, c_out=c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1)
        self.branch = nn.Sequential(_bn(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.skip(x) + RESIDUAL_SCALE * self.branch(x)
