"""Wall time of dlnotes' integrated gradients against captum's, same model, inputs and steps, one run.

    python benchmarks/bench_integrated_gradients.py [--quick] [--device cpu|cuda]

Both sides do the same work: attributions for N examples with S Gauss–Legendre steps plus the
per-example completeness gap (captum: ``return_convergence_delta=True``). The cost floor is one
forward and one backward pass over all S·N path points. Timings alternate between the two
implementations (warm-up first), and the medians are compared. The default run writes
``benchmarks/results/integrated_gradients-<device type>.json``; ``--quick`` (a smoke test, < 60 s
on 2 cores) writes nothing unless ``--write`` is given.
"""
from __future__ import annotations

import statistics
import sys
from dataclasses import asdict, dataclass

import torch
from _cli import parse_args, record, time_interleaved
from torch import nn

from dlnotes.integrated_gradients import integrated_gradients


@dataclass(frozen=True)
class BenchConfig:
    batch: int  # N examples attributed in one call
    n_steps: int  # S path points per example
    image_size: int  # MNIST-sized inputs (1, H, W)
    internal_batch_size: int  # the chunked variant evaluates at most this many path points at once
    repeats: int  # timed runs per implementation (median reported)
    warmup: int


QUICK = BenchConfig(batch=4, n_steps=16, image_size=28, internal_batch_size=32, repeats=3, warmup=1)
DEFAULT = BenchConfig(batch=16, n_steps=50, image_size=28, internal_batch_size=200, repeats=15, warmup=2)
GPU = BenchConfig(batch=64, n_steps=50, image_size=28, internal_batch_size=800, repeats=15, warmup=3)


def make_model(seed: int = 0) -> nn.Module:
    """A small MNIST CNN, the kind the chapter attributes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    ).eval()


def run(cfg: BenchConfig, device: torch.device) -> dict:
    from captum.attr import IntegratedGradients  # test/benchmark-only dependency

    model = make_model().to(device)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(cfg.batch, 1, cfg.image_size, cfg.image_size, generator=gen).to(device)
    target = torch.randint(0, 10, (cfg.batch,), generator=gen).to(device)
    captum_ig = IntegratedGradients(model)

    def ours(chunk=None):
        return integrated_gradients(model, x, 0.0, target=target, n_steps=cfg.n_steps,
                                    internal_batch_size=chunk)

    def theirs(chunk=None):
        return captum_ig.attribute(x, 0.0, target=target, n_steps=cfg.n_steps, internal_batch_size=chunk,
                                   return_convergence_delta=True)

    # Same answer first: a benchmark of two different computations would mean nothing.
    a, (b, delta) = ours(), theirs()
    rel = ((a.attributions - b).abs().max() / b.abs().max()).item()
    if rel > 1e-5:
        raise RuntimeError(f"ours and captum disagree (relative difference {rel:.2e})")

    points = torch.rand(cfg.batch * cfg.n_steps, *x.shape[1:], generator=gen).to(device)
    rows = target.repeat(cfg.n_steps)

    def floor():  # one forward + backward over all S·N path points, nothing else
        p = points.clone().requires_grad_(True)
        torch.autograd.grad(model(p).gather(1, rows[:, None]).sum(), p)

    variants = {
        "ours": ours, "captum": theirs, "floor": floor,
        "ours_chunked": lambda: ours(cfg.internal_batch_size),
        "captum_chunked": lambda: theirs(cfg.internal_batch_size),
    }
    times = time_interleaved(variants, warmup=cfg.warmup, repeats=cfg.repeats, device=device)
    med = {name: statistics.median(t) for name, t in times.items()}
    paired = statistics.median(a / b for a, b in zip(times["ours"], times["captum"]))
    return {
        "median_s": med,
        "median_paired_ratio_ours_over_captum": paired,  # robust to drift: ratio within each repeat
        "ratio_ours_over_captum": med["ours"] / med["captum"],
        "ratio_chunked_ours_over_captum": med["ours_chunked"] / med["captum_chunked"],
        "ratio_ours_over_floor": med["ours"] / med["floor"],
        "max_relative_difference": rel,
        "path_points": cfg.batch * cfg.n_steps,
    }


def main(argv: list[str] | None = None) -> int:
    args, device = parse_args(__doc__.splitlines()[0], "small sizes, a few seconds", argv)
    cfg = QUICK if args.quick else (GPU if device.type == "cuda" else DEFAULT)
    metrics = run(cfg, device)
    med = metrics["median_s"]
    print(f"integrated gradients, {cfg.batch} inputs x {cfg.n_steps} steps on {device}")
    for name, seconds in med.items():
        print(f"  {name:>15}: {seconds * 1e3:8.2f} ms")
    print(f"  ratio ours/captum: {metrics['ratio_ours_over_captum']:.3f} (goal <= 1.0; median of paired "
          f"ratios {metrics['median_paired_ratio_ours_over_captum']:.3f}); "
          f"chunked ({cfg.internal_batch_size} points): {metrics['ratio_chunked_ours_over_captum']:.3f}; "
          f"ours/floor: {metrics['ratio_ours_over_floor']:.3f}")
    record(args, device, "integrated_gradients", "integrated_gradients: ours vs captum", metrics,
           config=asdict(cfg), notes="median wall time; both return attributions and the completeness gap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
