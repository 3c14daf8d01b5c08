"""Routing forward + backward: dlnotes' CapsuleLayer against a per-example loop and a broadcasting reference.

    python benchmarks/bench_capsules.py [--quick] [--device cpu|cuda] [--write]

Two MNIST-sized capsule layers, batch 128, 3 routing iterations, float32:

* ``shared``: Su's layer, 64 input capsules of width 128 (an 8×8×128 map) → 10 × 16, one W_j per output,
  the post's routing (``kmeans``);
* ``full``: Sabour et al.'s layer, 1152 primary capsules of width 8 → 10 × 16, one W_ji per pair,
  Sabour routing (accumulated logits).

Per layer, three implementations do the same work (predictions, routing, squash; then the gradient of
``sum(v²)`` with respect to the inputs and the weights): ours (einsum), a per-example Python loop, and a
straightforward reference written the way many ports do it (weights broadcast to every example and
input, ``matmul`` of 5-D tensors, element-wise products summed over axes). They are checked to agree,
timed interleaved after a warm-up, and the medians compared. The default run writes
``benchmarks/results/capsules-<device type>.json``; ``--quick`` (< 60 s on 2 cores) writes nothing unless
``--write`` is given.
"""
from __future__ import annotations

import statistics
import sys
from dataclasses import asdict, dataclass

import torch
from _cli import parse_args, record, time_interleaved

from dlnotes.capsules import CapsuleLayer, normalize, squash


@dataclass(frozen=True)
class LayerShape:
    name: str
    n_in: int  # input capsules
    in_dim: int
    shared: bool  # W_j (True) or W_ji (False)
    method: str


@dataclass(frozen=True)
class BenchConfig:
    batch: int
    n_iters: int
    repeats: int  # timed runs per implementation (median reported)
    warmup: int


LAYERS = (LayerShape("shared", 64, 128, True, "kmeans"), LayerShape("full", 1152, 8, False, "sabour"))
OUT_CAPS, OUT_DIM = 10, 16
QUICK = BenchConfig(batch=32, n_iters=3, repeats=3, warmup=1)
DEFAULT = BenchConfig(batch=128, n_iters=3, repeats=7, warmup=2)
GPU = BenchConfig(batch=128, n_iters=3, repeats=30, warmup=5)


def _route_one(u_hat: torch.Tensor, method: str, n_iters: int) -> torch.Tensor:
    """One example, the post's table as written. u_hat: (n, k, d) → v: (k, d)."""
    n, k, _ = u_hat.shape
    b = torch.zeros(n, k, dtype=u_hat.dtype, device=u_hat.device)
    for r in range(n_iters):
        c = torch.softmax(b, dim=1)  # over outputs
        s = (c.unsqueeze(-1) * u_hat).sum(0)  # (k, d)
        if r == n_iters - 1:
            break
        target = normalize(s) if method == "kmeans" else squash(s)
        agreement = (u_hat * target.unsqueeze(0)).sum(-1)  # (n, k)
        b = agreement if method == "kmeans" else b + agreement
    return squash(s)


def naive_loop(layer: CapsuleLayer, u: torch.Tensor) -> torch.Tensor:
    """Per-example loop: predictions by matmul, then routing, one example at a time."""
    out = []
    for x in u:  # x: (n, in_dim)
        if layer.shared:
            u_hat = torch.matmul(layer.weight.unsqueeze(0), x[:, None, :, None]).squeeze(-1)  # (n, k, d)
        else:
            u_hat = torch.matmul(layer.weight, x[:, None, :, None]).squeeze(-1)
        out.append(_route_one(u_hat, layer.method, layer.n_iters))
    return torch.stack(out)


def broadcast_reference(layer: CapsuleLayer, u: torch.Tensor) -> torch.Tensor:
    """Batched, the common port style: weights expanded over batch (and inputs), 5-D matmul, sums over axes."""
    B, n, _ = u.shape
    w = layer.weight if not layer.shared else layer.weight.unsqueeze(0).expand(n, *layer.weight.shape)
    w = w.unsqueeze(0).expand(B, *w.shape)  # (B, n, k, d, in_dim)
    u_hat = torch.matmul(w, u[:, :, None, :, None]).squeeze(-1)  # (B, n, k, d)
    b = torch.zeros(B, n, layer.out_caps, 1, dtype=u.dtype, device=u.device)
    for r in range(layer.n_iters):
        c = torch.softmax(b, dim=2)
        s = (c * u_hat).sum(dim=1, keepdim=True)  # (B, 1, k, d)
        if r == layer.n_iters - 1:
            break
        target = normalize(s) if layer.method == "kmeans" else squash(s)
        agreement = (u_hat * target).sum(-1, keepdim=True)
        b = agreement if layer.method == "kmeans" else b + agreement
    return squash(s.squeeze(1))


def _fwd_bwd(fn, layer: CapsuleLayer, u: torch.Tensor):
    def run():
        x = u.clone().requires_grad_(True)
        v = fn(layer, x)
        return torch.autograd.grad(v.pow(2).sum(), (x, layer.weight))
    return run


def bench_layer(shape: LayerShape, cfg: BenchConfig, device: torch.device) -> dict:
    torch.manual_seed(0)
    layer = CapsuleLayer(shape.in_dim, OUT_CAPS, OUT_DIM, shared=shape.shared, n_in=shape.n_in,
                         method=shape.method, n_iters=cfg.n_iters).to(device)
    u = torch.relu(torch.randn(cfg.batch, shape.n_in, shape.in_dim, device=device))  # ReLU features
    ours = lambda lay, x: lay(x).v  # noqa: E731
    impls = {"ours": ours, "naive_loop": naive_loop, "reference": broadcast_reference}
    with torch.no_grad():  # same answer first
        expected = ours(layer, u)
        gaps = {name: (fn(layer, u) - expected).abs().max().item() for name, fn in impls.items()}
    if max(gaps.values()) > 1e-4:
        raise RuntimeError(f"implementations disagree on {shape.name}: {gaps}")
    runs = {name: _fwd_bwd(fn, layer, u) for name, fn in impls.items()}
    times = time_interleaved(runs, warmup=cfg.warmup, repeats=cfg.repeats, device=device)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        "median_s": med,
        "ratio_ours_over_naive_loop": med["ours"] / med["naive_loop"],
        "ratio_ours_over_reference": med["ours"] / med["reference"],
        "max_abs_difference": max(gaps.values()),
        "shape": asdict(shape),
    }


def main(argv: list[str] | None = None) -> int:
    args, device = parse_args(__doc__.splitlines()[0], "batch 32, few repeats: a smoke test", argv)
    cfg = QUICK if args.quick else (GPU if device.type == "cuda" else DEFAULT)
    metrics = {}
    for shape in LAYERS:
        m = bench_layer(shape, cfg, device)
        metrics[shape.name] = m
        print(f"{shape.name}: batch {cfg.batch}, {shape.n_in} x {shape.in_dim} -> {OUT_CAPS} x {OUT_DIM}, "
              f"{'W_j' if shape.shared else 'W_ji'}, {shape.method}, {cfg.n_iters} iterations, on {device}")
        for name, seconds in m["median_s"].items():
            print(f"  {name:>11}: {seconds * 1e3:9.2f} ms (forward + backward)")
        print(f"  ratio ours/naive loop: {m['ratio_ours_over_naive_loop']:.3f}; "
              f"ours/reference: {m['ratio_ours_over_reference']:.3f} (goal <= 1.0)")
    record(args, device, "capsules", "capsules: routing forward+backward, ours vs naive loop vs broadcast reference",
           metrics, config=asdict(cfg),
           notes="median wall time of forward + backward (grad of sum(v^2) wrt inputs and W)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
