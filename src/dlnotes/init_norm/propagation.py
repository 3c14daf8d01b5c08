"""Signal propagation at initialisation: deep MLPs, linear residual toys and Transformer stacks.

``log_norm_drift`` measures how far the norm of a vector drifts through a product of square random layers
(Gaussian vs orthogonal); ``mlp_moments`` measures the forward second moments mean(h_l²) and the backward moments
mean((∂L/∂h_l)²) through a plain MLP; ``post_norm_toy`` / ``pre_norm_toy`` run the linear residual
recursions behind in-eq-post-unrolled and in-eq-pre-unrolled; ``stack_profile`` measures a
``TransformerStack`` at init (mean(x_l²), cos(x_0, x_l), cos(x_l, x_{l+1}), per-block gradient norms).
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from dlnotes.init_norm.activations import RescaledActivation, activation_fn
from dlnotes.init_norm.blocks import TransformerStack
from dlnotes.init_norm.sampling import init_linear_

__all__ = ["log_norm_drift", "mlp_moments", "post_norm_toy", "pre_norm_toy", "stack_profile", "row_cosine",
           "sorting_batch", "attention_peaks"]


def _act(name: str):
    if name == "scaled-sigmoid":
        return RescaledActivation("sigmoid")
    if name == "centered-sigmoid":
        return RescaledActivation("sigmoid", center=True)
    return activation_fn(name)


@torch.no_grad()
def log_norm_drift(depth: int, n: int = 256, vectors: int = 500, rule: str = "lecun", *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Std over ``vectors`` inputs x ~ N(0, I_n) of log(‖h_l‖/‖x‖), h_l = W_l ⋯ W_1 x, for l = 1 … ``depth``.

    One draw of the n × n layers W_l by ``rule`` (float64), shared by all inputs. For Gaussian rules the
    log-norm performs a random walk over layers: std ≈ √(l/(2n)) while l ≪ n; an orthogonal W_l keeps every
    norm, so the std is rounding noise. Returns a float64 tensor of shape (depth,) (the last entry is the
    drift after ``depth`` layers); draws from ``generator`` in the order x, W_1, …, W_depth.
    """
    for name, value in (("depth", depth), ("n", n), ("vectors", vectors)):
        if not isinstance(value, int) or value < (2 if name == "vectors" else 1):
            raise ValueError(f"{name} must be an int >= {2 if name == 'vectors' else 1}, got {value!r}")
    h = torch.randn(vectors, n, generator=generator, dtype=torch.float64)
    x_norm = h.norm(dim=1)
    out = []
    for _ in range(depth):
        h = h @ init_linear_(torch.empty(n, n, dtype=torch.float64), rule, generator=generator).T
        out.append((h.norm(dim=1) / x_norm).log().std().item())
    return torch.tensor(out, dtype=torch.float64)


def mlp_moments(activation: str = "relu", rule: str = "he", *, gain: float = 1.0, depth: int = 50,
                width: int = 512, batch: int = 1024, seed: int = 0) -> dict[str, torch.Tensor]:
    """Forward ``mean(h_l²)`` for l = 0 … depth and backward ``mean(g_l²)`` (g_l = ∂L/∂h_l, L = Σ h_depth · r).

    h_0 ~ N(0, 1) of shape (batch, width) is read as a pre-activation, and every layer, the first included, is
    h_{l+1} = W_l φ(h_l), no bias, W_l drawn by ``rule`` × ``gain``: the first layer sees the activation's
    convention too (a linear first layer would let He's factor 2 double mean(h_1²)). Activations:
    ``ACTIVATIONS`` names plus ``scaled-sigmoid``, ``centered-sigmoid``. Returns float64 tensors ``forward``,
    ``backward`` and ``activation_mean`` (mean of φ(h_l), the layer's output before the next matrix), each of
    shape (depth + 1,). Draws from a generator seeded by ``seed`` in the order h_0, W_0 … W_{depth−1}, r.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    if gain < 0:
        raise ValueError(f"gain must be non-negative, got {gain!r}")
    gen = torch.Generator().manual_seed(seed)
    act = _act(activation)
    h = torch.randn(batch, width, generator=gen).requires_grad_(True)
    hs = [h]
    for _ in range(depth):
        w = init_linear_(torch.empty(width, width), rule, gain, generator=gen)
        h = act(h) @ w.T
        h.retain_grad()
        hs.append(h)
    (h * torch.randn(h.shape, generator=gen)).sum().backward()
    f64 = dict(dtype=torch.float64)
    fwd = torch.tensor([x.detach().pow(2).mean().item() for x in hs], **f64)
    bwd = torch.tensor([x.grad.pow(2).mean().item() for x in hs], **f64)
    with torch.no_grad():
        means = torch.tensor([act(x.detach()).mean().item() for x in hs], **f64)
    return {"forward": fwd, "backward": bwd, "activation_mean": means}


def row_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine between matching rows of a and b, (..., d) each."""
    return F.cosine_similarity(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]), dim=-1).mean().item()


def _ln(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:])


@torch.no_grad()
def post_norm_toy(d: int = 1024, depth: int = 16, *, batch: int = 64, seed: int = 0) -> torch.Tensor:
    """Coefficient of x_0 in x_l for x_{t+1} = LN(x_t + x_t W_t), W_t iid N(0, 1/d): ⟨x_l, x_0⟩/⟨x_0, x_0⟩.

    Returns shape (depth + 1,); in-eq-post-unrolled predicts 2^(−l/2).
    """
    gen = torch.Generator().manual_seed(seed)
    x0 = _ln(torch.randn(batch, d, generator=gen, dtype=torch.float64))
    x, out = x0, [1.0]
    for _ in range(depth):
        w = torch.randn(d, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
        x = _ln(x + x @ w)
        out.append(((x * x0).sum() / (x0 * x0).sum()).item())
    return torch.tensor(out, dtype=torch.float64)


@torch.no_grad()
def pre_norm_toy(d: int = 1024, depth: int = 64, *, batch: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """x_{t+1} = x_t + LN(x_t) W_t: ``second_moment`` mean(x_t²) (t = 0 … depth; prediction t + 1) and
    ``one_minus_cos`` 1 − cos(x_{t−1}, x_t) for t = 1 … depth (prediction 1 − √(t/(t+1)))."""
    gen = torch.Generator().manual_seed(seed)
    x = _ln(torch.randn(batch, d, generator=gen, dtype=torch.float64))
    moments, gaps = [x.pow(2).mean().item()], []
    for _ in range(depth):
        w = torch.randn(d, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
        new = x + _ln(x) @ w
        gaps.append(1 - row_cosine(x, new))
        x = new
        moments.append(x.pow(2).mean().item())
    return {"second_moment": torch.tensor(moments, dtype=torch.float64),
            "one_minus_cos": torch.tensor(gaps, dtype=torch.float64)}


def sorting_batch(batch: int, seq_len: int = 16, vocab: int = 16, *,
                  generator: torch.Generator | None = None, device: torch.device | str = "cpu"):
    """Random tokens (batch, seq_len) and their sorted version as per-position targets."""
    x = torch.randint(0, vocab, (batch, seq_len), generator=generator)
    return x.to(device), x.sort(dim=1).values.to(device)


def stack_profile(norm: str, n_layers: int, *, d_model: int = 64, n_heads: int = 4, batch: int = 128,
                  seq_len: int = 16, vocab: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """A ``TransformerStack`` at init on one sorting batch, LeCun init.

    Returns ``second_moment`` mean(x_l²) and ``cos0`` cos(x_0, x_l) (l = 0 … L), ``cos_next``
    cos(x_l, x_{l+1}) (l = 0 … L−1) and ``grad_norm``: the norm of all weight-matrix gradients of each block.
    """
    torch.manual_seed(seed)
    model = TransformerStack(vocab, seq_len, d_model, n_heads, n_layers, norm=norm)
    gen = torch.Generator().manual_seed(seed + 1)
    x, y = sorting_batch(batch, seq_len, vocab, generator=gen)
    logits, xs = model(x, states=True)
    F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1)).backward()
    grads = [math.sqrt(sum(p.grad.pow(2).sum().item() for p in b.parameters() if p.dim() == 2 and p.grad is not None))
             for b in model.blocks]
    xs = [s.detach() for s in xs]
    f64 = dict(dtype=torch.float64)
    return {"second_moment": torch.tensor([s.pow(2).mean().item() for s in xs], **f64),
            "cos0": torch.tensor([row_cosine(xs[0], s) for s in xs], **f64),
            "cos_next": torch.tensor([row_cosine(a, b) for a, b in zip(xs, xs[1:])], **f64),
            "grad_norm": torch.tensor(grads, **f64)}


@torch.no_grad()
def attention_peaks(model: TransformerStack, tokens: torch.Tensor) -> torch.Tensor:
    """Largest attention probability of every softmax row, per block: (L, B · heads · n).

    tokens: (B, n). The attention input of block l is x_l (Post-Norm and the norm-free forms) or
    LN(x_l) (Pre-Norm forms); the logits use the block's own scale, as in its forward pass.
    """
    _, xs = model(tokens, states=True)
    peaks = []
    for block, x in zip(model.blocks, xs):
        h = block.norm1(x) if block.norm in ("pre", "pre-ramp") else x
        b, n, _ = h.shape
        q, k, _ = block.qkv(h).view(b, n, 3, block.n_heads, block.d_head).permute(2, 0, 3, 1, 4)
        probs = torch.softmax(q @ k.transpose(-1, -2) * block.attn_scale, dim=-1)
        peaks.append(probs.amax(-1).reshape(-1))
    return torch.stack(peaks)
