"""RMSNorm (in-eq-rmsnorm): LayerNorm without centring and without a bias."""
from __future__ import annotations

import torch

__all__ = ["RMSNorm", "rms_norm"]


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """x / √(mean(x²) + eps) · weight over the last axis; x: (..., d)."""
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if weight is None else y * weight


class RMSNorm(torch.nn.Module):
    """RMSNorm over the last axis with a learned gain γ (init 1); equal to ``torch.nn.RMSNorm(d, eps)``."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"d must be a positive int, got {d!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)
