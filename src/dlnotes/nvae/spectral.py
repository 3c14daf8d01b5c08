r"""Spectral regularisation (N8) and the BN-scale penalty (N9): penalties added to the loss, not normalisation.

For every convolution weight $W$ reshaped to (out, in·kh·kw), a persistent power iteration
$v \leftarrow W^\top u / \|W^\top u\|$, $u \leftarrow W v / \|W v\|$ estimates the largest singular value
$s(W) \approx u^\top W v$; the penalty is $\lambda \sum_W s(W)$, whose gradient is $\lambda\, u v^\top$.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["power_iteration", "SpectralRegularizer", "bn_penalty"]


def power_iteration(weight: Tensor, u: Tensor, v: Tensor, iters: int) -> tuple[Tensor, Tensor, Tensor]:
    """``iters`` power-iteration steps on weight (out, ...) → (s, u, v); s carries gradient to weight only.

    u: (out,), v: (numel / out,) unit vectors from the previous call (or random at the start).
    """
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters!r}")
    w = weight.reshape(weight.shape[0], -1)  # (out, in·kh·kw)
    if u.shape != (w.shape[0],) or v.shape != (w.shape[1],):
        raise ValueError(f"u and v must be ({w.shape[0]},) and ({w.shape[1]},) for a weight of shape "
                         f"{tuple(weight.shape)}, got {tuple(u.shape)} and {tuple(v.shape)}")
    with torch.no_grad():
        wd = w.detach().float()
        for _ in range(iters):
            v = F.normalize(wd.t() @ u, dim=0, eps=1e-12)
            u = F.normalize(wd @ v, dim=0, eps=1e-12)
    return u @ w.float() @ v, u, v


class SpectralRegularizer:
    """Largest singular values of every ``nn.Conv2d`` weight of a model, with persistent vectors.

    The first call runs ``init_iters`` iterations, later ones ``iters`` (paper: 40, then 4).
    ``state_dict`` / ``load_state_dict`` keep the vectors in checkpoints.
    """

    def __init__(self, model: nn.Module, *, iters: int = 4, init_iters: int = 40, seed: int = 0) -> None:
        self.names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        self.modules = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if not self.modules:
            raise ValueError("model must contain at least one nn.Conv2d")
        for name, value in (("iters", iters), ("init_iters", init_iters)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        self.iters, self.init_iters, self.calls = iters, init_iters, 0
        gen = torch.Generator().manual_seed(seed)  # equal on every rank
        self.u = [F.normalize(torch.randn(m.weight.shape[0], generator=gen), dim=0) for m in self.modules]
        self.v = [F.normalize(torch.randn(m.weight[0].numel(), generator=gen), dim=0) for m in self.modules]

    def singular_values(self) -> Tensor:
        """(n_convs,) estimates of s(W), differentiable in the weights; advances the iteration."""
        iters = self.init_iters if self.calls == 0 else self.iters
        out = []
        for i, m in enumerate(self.modules):
            u, v = self.u[i].to(m.weight.device), self.v[i].to(m.weight.device)
            s, self.u[i], self.v[i] = power_iteration(m.weight, u, v, iters)
            out.append(s)
        self.calls += 1
        return torch.stack(out)

    def penalty(self, weight: float) -> Tensor:
        r"""$\lambda \sum_W s(W)$ with $\lambda$ = ``weight``."""
        return weight * self.singular_values().sum()

    def state_dict(self) -> dict:
        return {"u": [t.cpu() for t in self.u], "v": [t.cpu() for t in self.v], "calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        if len(state["u"]) != len(self.modules) or len(state["v"]) != len(self.modules):
            raise ValueError(f"state holds {len(state['u'])} u and {len(state['v'])} v vectors, the model has "
                             f"{len(self.modules)} convs")
        for name, u, v, m in zip(self.names, state["u"], state["v"], self.modules):
            if u.shape != (m.weight.shape[0],) or v.shape != (m.weight[0].numel(),):
                raise ValueError(f"state's vectors for {name} have shapes {tuple(u.shape)}, {tuple(v.shape)}; "
                                 f"its weight {tuple(m.weight.shape)} needs ({m.weight.shape[0]},), "
                                 f"({m.weight[0].numel()},)")
        self.u, self.v, self.calls = list(state["u"]), list(state["v"]), int(state["calls"])


def bn_penalty(model: nn.Module, weight: float) -> Tensor:
    r"""$\lambda \sum_{\text{BN}} \max_c |\gamma_c|$ over the model's batch-norm layers (N9)."""
    gammas = [m.weight.abs().max() for m in model.modules()
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
    if not gammas:
        return torch.zeros(())
    return weight * torch.stack(gammas).sum()
