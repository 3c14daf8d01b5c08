r"""Weight normalisation of convolutions (the paper's convs): $W = g \cdot V / \|V\|$ per output channel.

Each ``nn.Conv2d`` gets PyTorch's parametrisation (:func:`torch.nn.utils.parametrizations.weight_norm`,
``dim=0``): the learned tensors are the direction $V$ (``parametrizations.weight.original1``, the conv's
shape) and the norm $g$ (``original0``, (out, 1, 1, 1)), both initialised from the current weight, so the
layer computes the same function right after the call. The paper learns $\log g$; we learn $g$ itself.
``conv.weight`` is recomputed from $g, V$ at every access, so the spectral penalty sees the normalised weight.
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["apply_weight_norm", "is_weight_normed"]


def is_weight_normed(conv: nn.Module) -> bool:
    """True when ``conv.weight`` is computed by a weight-norm parametrisation."""
    return parametrize.is_parametrized(conv, "weight")


def apply_weight_norm(module: nn.Module) -> int:
    """Weight-normalise every ``nn.Conv2d`` inside ``module`` (in place); return how many were changed.

    Convolutions that are already parametrised are left alone, so calling it twice changes nothing.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be an nn.Module, got {type(module).__name__}")
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d) and not is_weight_normed(m)]
    for conv in convs:
        weight_norm(conv, name="weight", dim=0)
    return len(convs)
