"""μP (maximal-update parameterisation) for an MLP under Adam, and the coordinate check.

μP for Adam (Yang et al. 2022, in-eq-mup): with width multiplier r = width / base_width, hidden
(width × width) matrices keep Var 1/fan_in and get learning rate η/r; the input layer, biases and the
readout keep η; the readout starts at zero and its input is multiplied by 1/r (as in mup's ``MuReadout``). Standard
parameterisation (SP): PyTorch's default init and one learning rate. The coordinate check records the
mean |activation| of each layer while a few Adam steps are taken, for several widths: in μP it stays
flat in width, in SP it grows. ``lr_sweep`` gives the training loss over widths × learning rates, for the
"the best learning rate transfers across widths in μP" figure (Tensor Programs V).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MLP", "mup_param_groups", "coord_check", "lr_sweep"]


class MLP(nn.Module):
    """``depth`` hidden ReLU layers of ``width`` units; x: (B, d_in) → logits (B, d_out).

    ``param="sp"``: PyTorch default init. ``param="mup"``: LeCun-normal hidden layers, zero readout,
    readout input × base_width/width. ``forward(x, record=True)`` also returns the hidden activations.
    """

    def __init__(self, d_in: int, width: int, d_out: int, *, depth: int = 3, param: str = "mup",
                 base_width: int = 64) -> None:
        super().__init__()
        if param not in ("sp", "mup"):
            raise ValueError(f"param must be 'sp' or 'mup', got {param!r}")
        if not isinstance(width, int) or width < 1 or not isinstance(base_width, int) or base_width < 1:
            raise ValueError(f"width and base_width must be positive ints, got {width!r}, {base_width!r}")
        self.param, self.width_mult = param, width / base_width
        self.inp = nn.Linear(d_in, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.readout = nn.Linear(width, d_out)
        if param == "mup":
            with torch.no_grad():
                for lin in (self.inp, *self.hidden):
                    lin.weight.normal_(0.0, lin.in_features ** -0.5)
                    lin.bias.zero_()
                self.readout.weight.zero_()
                self.readout.bias.zero_()

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The weights whose two dimensions both grow with width (μP's "matrix-like" parameters)."""
        return [lin.weight for lin in self.hidden]

    def forward(self, x: torch.Tensor, *, record: bool = False):
        acts = []
        h = F.relu(self.inp(x))
        acts.append(h)
        for lin in self.hidden:
            h = F.relu(lin(h))
            acts.append(h)
        scale = 1.0 / self.width_mult if self.param == "mup" else 1.0
        logits = self.readout(h * scale)  # as mup's MuReadout: the bias is not scaled
        return (logits, acts + [logits]) if record else logits


def mup_param_groups(model: nn.Module, lr: float) -> list[dict]:
    """Adam parameter groups: hidden matrices at lr / width_mult under μP, everything else at lr.

    ``model``: any model with ``param``, ``width_mult`` and ``hidden_matrices()`` (``MLP``, ``TransformerLM``).
    """
    if model.param == "sp":
        return [{"params": list(model.parameters()), "lr": lr}]
    hidden = model.hidden_matrices()
    ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": hidden, "lr": lr / model.width_mult}, {"params": rest, "lr": lr}]


def coord_check(x: torch.Tensor, y: torch.Tensor, widths: tuple[int, ...], *, param: str = "mup",
                steps: int = 4, lr: float = 1e-2, seeds: tuple[int, ...] = (0,), depth: int = 3,
                base_width: int = 64) -> torch.Tensor:
    """Mean |activation| per (width, step, layer), averaged over seeds: shape (len(widths), steps, depth + 1).

    Step t (0-based) is the forward pass before the (t+1)-th Adam update on the fixed batch (x, y), so
    t = 0 is the initialisation; the last layer index is the logits.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    out = torch.zeros(len(widths), steps, depth + 1, dtype=torch.float64)
    for seed in seeds:
        for i, width in enumerate(widths):
            torch.manual_seed(seed)
            model = MLP(x.shape[1], width, int(y.max()) + 1, depth=depth, param=param, base_width=base_width)
            opt = torch.optim.Adam(mup_param_groups(model, lr))
            for t in range(steps):
                logits, acts = model(x, record=True)
                out[i, t] += torch.tensor([a.abs().mean().item() for a in acts], dtype=torch.float64)
                opt.zero_grad()
                F.cross_entropy(logits, y).backward()
                opt.step()
    return out / len(seeds)


def lr_sweep(x: torch.Tensor, y: torch.Tensor, widths: tuple[int, ...], lrs: tuple[float, ...], *,
             param: str = "mup", steps: int = 10, seeds: tuple[int, ...] = (0,), depth: int = 3,
             base_width: int = 64, device: torch.device | str = "cpu") -> torch.Tensor:
    """Training loss on the fixed batch (x: (B, d_in), y: (B,)) after ``steps`` Adam updates: (widths, lrs).

    Averaged over ``seeds``; a run whose loss is not finite counts as ``inf``. Under μP, ``lr`` is the base
    rate (hidden matrices get lr / width_mult, see ``mup_param_groups``).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    if not lrs or min(lrs) <= 0:
        raise ValueError(f"lrs must be positive learning rates, got {lrs!r}")
    out = torch.zeros(len(widths), len(lrs), dtype=torch.float64)
    n_out = int(y.max()) + 1
    x, y = x.to(device), y.to(device)
    for seed in seeds:
        for i, width in enumerate(widths):
            for j, lr in enumerate(lrs):
                torch.manual_seed(seed)
                model = MLP(x.shape[1], width, n_out, depth=depth, param=param, base_width=base_width).to(device)
                opt = torch.optim.Adam(mup_param_groups(model, lr))
                for _ in range(steps):
                    opt.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    opt.step()
                with torch.no_grad():
                    loss = F.cross_entropy(model(x), y).item()
                out[i, j] += loss if math.isfinite(loss) else math.inf
    return out / len(seeds)
