r"""Capsule routing as clustering: squash, soft K-Means and dynamic routing (Su 2018, kexue.fm/archives/5112).

Notation (the post's, which follows Sabour et al. 2017): input capsules $u_1..u_n \in \mathbb R^{d}$,
output capsules (cluster centres) $v_1..v_k$, predictions $\hat u_{j|i}$ (``u_hat[b, i, j]``; equal to
$u_i$ without transformation matrices), coupling coefficients $c_{ij}$, a **softmax over the outputs j**
for every input i, temperature $K > 0$ (``math.inf`` = hard assignments).

Three routings, all starting from logits $b_{ij} = 0$ afresh for every example (uniform $c_{ij} = 1/k$),
all returning $\operatorname{squash}(s_j)$ with $s_j = \sum_i c_{ij} \hat u_{j|i}$ of the last iteration:

================  ====================================  =======================================
``method``        inside the loop                       logit update
================  ====================================  =======================================
``"kmeans"``      $s_j / \lVert s_j \rVert$ (post 5112)  $b_{ij} = \langle \hat u_{j|i}, s_j/\lVert s_j\rVert\rangle$
``"su4819"``      $\operatorname{squash}(s_j)$ (4819)    $b_{ij} = \langle \hat u_{j|i}, v_j \rangle$
``"sabour"``      $\operatorname{squash}(s_j)$ (paper)   $b_{ij} \mathrel{+}= \langle \hat u_{j|i}, v_j\rangle$
================  ====================================  =======================================

``n_iters`` counts the centres computed, as ``routings=3`` in the paper and in Su's code: the first
uses the uniform coupling, so ``n_iters=3`` is the post's loop run twice. Gradients flow through
every iteration (Su; the official TF code) unless ``detach=True`` (XifengGuo's ports).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DISTANCES", "METHODS", "EPS", "safe_norm", "normalize", "squash", "KMeansResult", "distances", "soft_assign", "smoothed_objective", "soft_kmeans", "Routing", "dynamic_routing", "routing_objective", "coupling_entropy", "CapsuleLayer"]

DISTANCES = ("euclidean", "normalized_dot")
METHODS = ("kmeans", "su4819", "sabour")
EPS = 1e-8  # under every square root: finite values and gradients at the zero vector


# ----------------------------------------------------------------------------- validation

def _check_positive(name: str, value: float, *, allow_inf: bool = False) -> None:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
          and (allow_inf or math.isfinite(value)))
    if not ok:
        extra = " (or math.inf)" if allow_inf else ""
        raise ValueError(f"{name} must be a positive number{extra}, got {value!r}")


def _check_count(name: str, value: object) -> None:
    """A count: an int >= 1 and not a bool (``True`` is an int in Python)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _check_iters(n_iters: int) -> None:
    _check_count("n_iters", n_iters)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# ----------------------------------------------------------------------------- squash

def safe_norm(v: Tensor, dim: int = -1, keepdim: bool = False, eps: float = EPS) -> Tensor:
    r"""$\sqrt{\sum v^2 + \varepsilon}$: the length with a finite gradient at 0."""
    return torch.sqrt(v.pow(2).sum(dim=dim, keepdim=keepdim) + eps)


def normalize(v: Tensor, dim: int = -1, eps: float = EPS) -> Tensor:
    r"""$v / \sqrt{\lVert v\rVert^2 + \varepsilon}$; maps 0 to 0."""
    return v / safe_norm(v, dim=dim, keepdim=True, eps=eps)


def squash(v: Tensor, dim: int = -1, *, constant: float = 1.0, eps: float = EPS) -> Tensor:
    r"""Squash (the chapter's ``caps-eq-squash``): $\dfrac{\lVert v\rVert^2}{c + \lVert v\rVert^2}\dfrac{v}{\lVert v\rVert}
    = \dfrac{\lVert v\rVert}{c + \lVert v\rVert^2}\, v$, keeping direction, length in $[0, 1)$.

    ``constant`` is $c$: 1 in the paper, 0.5 in Su's code. Written in the second form with
    $\lVert v\rVert = \sqrt{\sum v^2 + \varepsilon}$, so squash(0) = 0 with a finite gradient.
    v: (..., d) when ``dim=-1``.
    """
    _check_positive("constant", constant)
    norm = safe_norm(v, dim=dim, keepdim=True, eps=eps)
    return v * (norm / (constant + norm.pow(2)))  # v ‖v‖ / (c + ‖v‖²)


# ----------------------------------------------------------------------------- K-Means in a metric d

class KMeansResult(NamedTuple):
    """What :func:`soft_kmeans` returns."""

    centers: Tensor  # (..., k, d) after n_iters updates
    assignments: Tensor  # (..., n, k) c_ij at the final centres; rows sum to 1 over j
    objective: Tensor  # (..., n_iters + 1) smoothed objective L_K at v^(0), ..., v^(n_iters)
    history: Tensor  # (..., n_iters + 1, k, d) the centres v^(0), ..., v^(n_iters)


def distances(u: Tensor, v: Tensor, distance: str = "euclidean") -> Tensor:
    r"""$d(u_i, v_j)$: $\lVert u_i - v_j\rVert^2$ (``caps-eq-ndot``) or $-\langle u_i, v_j/\lVert v_j\rVert\rangle$.

    u: (..., n, d), v: (..., k, d) → (..., n, k).
    """
    _check_choice("distance", distance, DISTANCES)
    if distance == "euclidean":
        return (u.unsqueeze(-2) - v.unsqueeze(-3)).pow(2).sum(-1)  # ‖u_i − v_j‖²
    return -torch.einsum("...id,...jd->...ij", u, normalize(v))  # −⟨u_i, v_j/‖v_j‖⟩


def soft_assign(dist: Tensor, temperature: float) -> Tensor:
    r"""$c_{ij} = \operatorname{softmax}_j(-K\, d_{ij})$; one-hot argmin for $K = \infty$. dist: (..., n, k).

    ``temperature`` $K$ must be positive: $K \le 0$ would favour the *farthest* centre.
    """
    _check_positive("temperature", temperature, allow_inf=True)
    if math.isinf(temperature):
        return F.one_hot(dist.argmin(-1), dist.shape[-1]).to(dist.dtype)
    return torch.softmax(-temperature * dist, dim=-1)


def smoothed_objective(dist: Tensor, temperature: float) -> Tensor:
    r"""$L_K = -\frac1K \sum_i \ln \sum_j e^{-K d_{ij}}$; the hard $\sum_i \min_j d_{ij}$ for $K=\infty$.

    dist: (..., n, k) → (...). ``temperature`` $K$ must be positive.
    """
    _check_positive("temperature", temperature, allow_inf=True)
    if math.isinf(temperature):
        return dist.min(-1).values.sum(-1)
    return -(torch.logsumexp(-temperature * dist, dim=-1) / temperature).sum(-1)


def _initial_centers(u: Tensor, k: int, init, distance: str, generator) -> Tensor:
    n = u.shape[-2]
    if isinstance(init, Tensor):
        if init.shape[-2:] != (k, u.shape[-1]):
            raise ValueError(f"init must have shape (..., {k}, {u.shape[-1]}), got {tuple(init.shape)}")
        return init.to(u)
    if init == "uniform":  # c_ij = 1/k: every centre is the same point (problem (i) of the post)
        first = u.mean(-2, keepdim=True) if distance == "euclidean" else u.sum(-2, keepdim=True) / k
        return first.expand(*u.shape[:-2], k, u.shape[-1]).clone()
    if init == "sample":  # k distinct input points
        if k > n:
            raise ValueError(f"k must be <= n = {n} for init='sample', got {k}")
        idx = torch.randperm(n, generator=generator)[:k].to(u.device)
        return u[..., idx, :].clone()
    raise ValueError(f"init must be a tensor (..., k, d), 'sample' or 'uniform', got {init!r}")


def soft_kmeans(u: Tensor, k: int, *, distance: str = "euclidean", temperature: float = 1.0,
                n_iters: int = 10, init: Tensor | str = "sample",
                generator: torch.Generator | None = None) -> KMeansResult:
    r"""The fixed-point iteration (``caps-eq-fixed``) of soft K-Means in the distance ``distance``.

    euclidean (``caps-eq-mean``): $v_j \leftarrow \sum_i c_{ij} u_i / \sum_i c_{ij}$ (weighted mean; Lloyd for $K=\infty$).
    normalized_dot (``caps-eq-sum``): $v_j \leftarrow \sum_i c_{ij} u_i$ (sum: more members, longer centre).
    A centre with no mass ($\sum_i c_{ij} = 0$) keeps its place. u: (..., n, d).
    """
    _check_choice("distance", distance, DISTANCES)
    _check_positive("temperature", temperature, allow_inf=True)
    _check_iters(n_iters)
    _check_count("k", k)
    if u.dim() < 2:
        raise ValueError(f"u must have shape (..., n, d), got {tuple(u.shape)}")
    v = _initial_centers(u, k, init, distance, generator)
    history, objective = [v], []
    for _ in range(n_iters):
        dist = distances(u, v, distance)
        objective.append(smoothed_objective(dist, temperature))
        c = soft_assign(dist, temperature)  # (..., n, k)
        mass = c.sum(-2).unsqueeze(-1)  # Σ_i c_ij: (..., k, 1)
        total = torch.einsum("...ij,...id->...jd", c, u)  # Σ_i c_ij u_i
        new = total / mass.clamp_min(torch.finfo(u.dtype).tiny) if distance == "euclidean" else total
        v = torch.where(mass > 0, new, v)
        history.append(v)
    dist = distances(u, v, distance)
    objective.append(smoothed_objective(dist, temperature))
    return KMeansResult(centers=v, assignments=soft_assign(dist, temperature),
                        objective=torch.stack(objective, -1), history=torch.stack(history, -3))


# ----------------------------------------------------------------------------- dynamic routing

class Routing(NamedTuple):
    """What :func:`dynamic_routing` and :class:`CapsuleLayer` return."""

    v: Tensor  # (B, k, d) output capsules squash(s_j) of the last iteration
    s: Tensor  # (B, k, d) the last centres before squash
    couplings: Tensor  # (B, n_iters, n, k) c_ij used by each iteration; sums to 1 over j (outputs)
    centers: Tensor  # (B, n_iters, k, d) s_j computed by each iteration


def _couple(logits: Tensor, temperature: float) -> Tensor:
    """c_ij = softmax over the outputs j (axis 1) of K b_ij; one-hot argmax for K = inf. logits: (B, k, n)."""
    if math.isinf(temperature):
        return F.one_hot(logits.argmax(1), logits.shape[1]).transpose(1, 2).to(logits.dtype)
    return torch.softmax(temperature * logits, dim=1)


def dynamic_routing(u_hat: Tensor, *, method: str = "kmeans", n_iters: int = 3, temperature: float = 1.0,
                    squash_constant: float = 1.0, detach: bool = False, eps: float = EPS) -> Routing:
    r"""Route predictions ``u_hat``: (B, n, k, d), ``u_hat[b, i, j]`` $= \hat u_{j|i}$ (see the module table).

    Logits start at zero for every call and example; the softmax runs over the k outputs.
    ``detach=True`` stops the gradient through the logits of the non-final iterations.
    ``eps`` goes under the square roots of every norm (0 for exact identities in tests).
    """
    _check_choice("method", method, METHODS)
    _check_iters(n_iters)
    _check_positive("temperature", temperature, allow_inf=True)
    _check_positive("squash_constant", squash_constant)
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    if u_hat.dim() != 4:
        raise ValueError(f"u_hat must have shape (B, n, k, d), got {tuple(u_hat.shape)}")
    B, n, k, d = u_hat.shape
    u_hat = u_hat.transpose(1, 2).contiguous()  # (B, k, n, d): fast sums over i and d (free for layer output)
    logits = u_hat.new_zeros(B, k, n)  # b_ij = 0, stored (B, k, n)
    couplings, centers = [], []
    for r in range(n_iters):
        last = r == n_iters - 1
        pred = u_hat.detach() if detach and not last else u_hat
        if r == 0:
            c = u_hat.new_full((B, k, n), 1.0 / k)  # uniform start: v_j = (1/k) Σ_i û_j|i
        else:
            c = _couple(logits.detach() if detach else logits, temperature)  # softmax over j of K b_ij
        s = torch.einsum("bji,bjid->bjd", c, pred)  # s_j = Σ_i c_ij û_j|i
        couplings.append(c)
        centers.append(s)
        if last:
            break
        if method == "kmeans":  # caps-eq-sum in the loop: only the direction of s_j is used
            agreement = torch.einsum("bjid,bjd->bji", pred, normalize(s, eps=eps))  # ⟨û_j|i, s_j/‖s_j‖⟩
            logits = agreement
        else:
            agreement = torch.einsum("bjid,bjd->bji", pred, squash(s, constant=squash_constant, eps=eps))
            logits = logits + agreement if method == "sabour" else agreement  # accumulate | assign
    return Routing(v=squash(s, constant=squash_constant, eps=eps), s=s,
                   couplings=torch.stack(couplings, 1).transpose(-1, -2), centers=torch.stack(centers, 1))


def routing_objective(u_hat: Tensor, centers: Tensor, temperature: float = 1.0) -> Tensor:
    r"""$L_K = -\frac1K\sum_i \ln\sum_j \exp(K\langle \hat u_{j|i}, s_j/\lVert s_j\rVert\rangle)$ at each centre set.

    u_hat: (B, n, k, d), centers: (B, R, k, d) → (B, R). Non-increasing along the ``kmeans`` routing.
    """
    _check_positive("temperature", temperature, allow_inf=True)
    dist = -torch.einsum("bijd,brjd->brij", u_hat, normalize(centers))  # d_ij = −⟨û_j|i, ŝ_j⟩
    return smoothed_objective(dist, temperature)


def coupling_entropy(couplings: Tensor) -> Tensor:
    r"""Mean over inputs of $-\sum_j c_{ij}\ln c_{ij}$; couplings: (..., n, k) → (...)."""
    return -torch.special.xlogy(couplings, couplings).sum(-1).mean(-1)


# ----------------------------------------------------------------------------- the layer

class CapsuleLayer(nn.Module):
    r"""n input capsules of width ``in_dim`` → ``out_caps`` capsules of width ``out_dim`` by routing.

    ``shared=True``: one $W_j$ per output, $\hat u_{j|i} = W_j u_i$ (Su's layer; any n, order-blind).
    ``shared=False``: one $W_{ji}$ per pair (Sabour et al.; needs ``n_in``; order-aware).
    Weights are Glorot-uniform over (in_dim, out_caps·out_dim), as Su's Keras kernel; no bias.
    u: (B, n, in_dim) → :class:`Routing` with v: (B, out_caps, out_dim).
    """

    def __init__(self, in_dim: int, out_caps: int, out_dim: int, *, shared: bool = True,
                 n_in: int | None = None, method: str = "kmeans", n_iters: int = 3,
                 temperature: float = 1.0, squash_constant: float = 1.0, detach: bool = False) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_caps", out_caps), ("out_dim", out_dim)):
            _check_count(name, value)
        if not shared and (isinstance(n_in, bool) or not isinstance(n_in, int) or n_in < 1):
            raise ValueError(f"n_in must be an int >= 1 when shared=False, got {n_in!r}")
        _check_choice("method", method, METHODS)
        _check_iters(n_iters)
        _check_positive("temperature", temperature, allow_inf=True)
        _check_positive("squash_constant", squash_constant)
        self.in_dim, self.out_caps, self.out_dim = in_dim, out_caps, out_dim
        self.shared, self.n_in = shared, (None if shared else n_in)
        self.method, self.n_iters, self.temperature = method, n_iters, temperature
        self.squash_constant, self.detach = squash_constant, detach
        shape = (out_caps, out_dim, in_dim) if shared else (n_in, out_caps, out_dim, in_dim)
        limit = math.sqrt(6.0 / (in_dim + out_caps * out_dim))
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-limit, limit))

    def predictions(self, u: Tensor) -> Tensor:
        r"""$\hat u_{j|i}$: (B, n, in_dim) → (B, n, out_caps, out_dim)."""
        if u.dim() != 3 or u.shape[-1] != self.in_dim:
            raise ValueError(f"u must have shape (B, n, in_dim={self.in_dim}), got {tuple(u.shape)}")
        if self.shared:
            u_hat = torch.einsum("jed,bid->bjie", self.weight, u)  # û_j|i = W_j u_i: (B, k, n, d)
        elif u.shape[1] != self.n_in:
            raise ValueError(f"u must have n_in={self.n_in} capsules (shared=False), got {u.shape[1]}")
        else:
            u_hat = torch.einsum("ijed,bid->bjie", self.weight, u)  # û_j|i = W_ji u_i: (B, k, n, d)
        return u_hat.transpose(1, 2)  # (B, n, k, d) view; dynamic_routing works in the (B, k, n, d) memory

    def forward(self, u: Tensor) -> Routing:
        return dynamic_routing(self.predictions(u), method=self.method, n_iters=self.n_iters,
                               temperature=self.temperature, squash_constant=self.squash_constant,
                               detach=self.detach)

    def extra_repr(self) -> str:
        kind = "shared W_j" if self.shared else f"W_ji, n_in={self.n_in}"
        return (f"{self.in_dim} -> {self.out_caps}x{self.out_dim}, {kind}, method={self.method}, "
                f"n_iters={self.n_iters}")
