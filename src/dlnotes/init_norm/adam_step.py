"""One Adam step against width: NTK vs standard parameterisation (in-eq-ntk, in-eq-adam-relative).

A ReLU MLP ``d_in → width → width → 1`` without biases, built from ``ParamLinear`` (LeCun init; under ``ntk``
the weights are N(0, 1) and each layer multiplies by 1/√fan_in, the same function at init). One Adam step on
a fixed batch (MSE against a fixed target) is taken in three set-ups:

- ``ntk``: NTK parameterisation, learning rate η and ε for every layer;
- ``standard``: standard parameterisation with the same η and ε (the naive choice);
- ``standard-rescaled``: standard parameterisation with per-layer rate η/√fan_in and ε·√fan_in, which makes
  it the NTK model exactly (every stored weight is the NTK weight divided by √fan_in, before and after).

For each, ``first_adam_step`` returns the relative weight change mean|ΔW| / mean|W| of every layer and the
root-mean-square change of the output over the batch.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dlnotes.init_norm.blocks import ParamLinear

__all__ = ["ADAM_SETUPS", "first_adam_step"]

ADAM_SETUPS = ("ntk", "standard", "standard-rescaled")


def _model(d_in: int, width: int, param: str) -> nn.Sequential:
    layers = [ParamLinear(d_in, width, bias=False, param=param), nn.ReLU(),
              ParamLinear(width, width, bias=False, param=param), nn.ReLU(),
              ParamLinear(width, 1, bias=False, param=param)]
    for layer in layers:
        if isinstance(layer, ParamLinear):
            layer.reset("lecun")
    return nn.Sequential(*layers)


def first_adam_step(widths: tuple[int, ...], *, lr: float = 1e-2, eps: float = 1e-8, d_in: int = 32,
                    batch: int = 64, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Relative weight change per layer and output change after one Adam step, per width and set-up.

    Returns ``{setup: {"relative_update": (len(widths), 3), "output_change": (len(widths),)}}`` in float64;
    layer order: input (d_in × width), hidden (width × width), readout (width × 1). The data and the NTK
    weights of a width are the same draw for all three set-ups (seeded by ``seed`` and the width).
    """
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"widths must be positive ints, got {widths!r}")
    if lr <= 0 or eps <= 0:
        raise ValueError(f"lr and eps must be positive, got lr={lr!r}, eps={eps!r}")
    out = {s: {"relative_update": torch.zeros(len(widths), 3, dtype=torch.float64),
               "output_change": torch.zeros(len(widths), dtype=torch.float64)} for s in ADAM_SETUPS}
    for i, width in enumerate(widths):
        gen = torch.Generator().manual_seed(seed * 100_003 + width)
        x = torch.randn(batch, d_in, generator=gen, dtype=torch.float64)
        y = torch.randn(batch, 1, generator=gen, dtype=torch.float64)
        torch.manual_seed(seed * 100_003 + width)
        ntk = _model(d_in, width, "ntk").double()
        for setup in ADAM_SETUPS:
            model = _model(d_in, width, "ntk" if setup == "ntk" else "standard").double()
            linears = [m for m in model if isinstance(m, ParamLinear)]
            with torch.no_grad():  # the same draw: standard weights are the NTK ones over √fan_in
                for lin, ref in zip(linears, (m for m in ntk if isinstance(m, ParamLinear))):
                    lin.weight.copy_(ref.weight * (ref.multiplier / lin.multiplier))
            if setup == "standard-rescaled":
                groups = [{"params": [lin.weight], "lr": lr / math.sqrt(lin.in_features),
                           "eps": eps * math.sqrt(lin.in_features)} for lin in linears]
            else:
                groups = [{"params": [lin.weight for lin in linears], "lr": lr, "eps": eps}]
            before = [lin.weight.detach().clone() for lin in linears]
            with torch.no_grad():
                f0 = model(x)
            opt = torch.optim.Adam(groups)
            F.mse_loss(model(x), y).backward()
            opt.step()
            with torch.no_grad():
                f1 = model(x)
            out[setup]["relative_update"][i] = torch.tensor(
                [((lin.weight.detach() - w0).abs().mean() / w0.abs().mean()).item()
                 for lin, w0 in zip(linears, before)], dtype=torch.float64)
            out[setup]["output_change"][i] = (f1 - f0).pow(2).mean().sqrt()
    return out
