"""Quantiser forward + backward throughput: dlnotes.vqvae.VectorQuantizer vs vector-quantize-pytorch.

Both run the classic algorithm of the paper in training mode: nearest-neighbour codes, plain
straight-through gradient, EMA codebook (decay 0.99, Laplace smoothing), commitment weight 0.25,
no dead-code expiry. The reference is configured accordingly (its defaults differ: rotation trick,
decay 0.8, commitment weight 1). Both are timed in the same run on the same inputs, alternating,
after a warm-up; the median of the repeats is reported and the ratio ours/theirs is in
throughput (vectors per second), so > 1 means ours is faster.

    python benchmarks/bench_vqvae.py            # batch 128, K = 512, D = 64, 8×8 maps (CIFAR-10 latents)
    python benchmarks/bench_vqvae.py --quick    # smaller, < 60 s on 2 cores: a smoke test that
                                                # writes nothing unless --write is given
"""
from __future__ import annotations

import statistics
import sys

import torch
from _cli import parse_args, record, time_interleaved

from dlnotes.vqvae import VectorQuantizer

GOAL = 2.0  # ours/theirs on CPU at batch 128, K = 512, D = 64 (issue 3)


def _reference(k: int, d: int):
    from vector_quantize_pytorch import VectorQuantize

    return VectorQuantize(dim=d, codebook_size=k, decay=0.99, eps=1e-5, commitment_weight=0.25,
                          rotation_trick=False, straight_through=False, kmeans_init=False,
                          threshold_ema_dead_code=0, accept_image_fmap=True)


def measure(batch: int, k: int, d: int, side: int, *, repeats: int, inner: int, warmup: int,
            device: torch.device) -> dict:
    torch.manual_seed(0)
    theirs = _reference(k, d).to(device).train()
    ours = VectorQuantizer(k, d, beta=0.25, ema=True, decay=0.99, eps=1e-5, data_init=False).to(device).train()
    ours.reset_codebook(theirs.codebook.detach().clone())
    z = (torch.randn(batch, d, side, side, device=device)).requires_grad_(True)
    weight = torch.randn(batch, d, side, side, device=device)

    def step_ours() -> None:
        out = ours(z, channel_dim=1)  # (B, D, H, W), stated: no layout guess
        ((out.quantized * weight).sum() + out.loss).backward()

    def step_theirs() -> None:
        quantized, _, loss = theirs(z)
        ((quantized * weight).sum() + loss).backward()

    steps = {"ours": step_ours, "theirs": step_theirs}
    times = time_interleaved(steps, warmup=warmup, repeats=repeats, device=device, inner=inner)
    vectors = batch * side * side
    med = {name: statistics.median(t) for name, t in times.items()}
    return {
        "batch": batch, "num_codes": k, "code_dim": d, "map_side": side, "vectors_per_step": vectors,
        "ours_ms": 1e3 * med["ours"], "theirs_ms": 1e3 * med["theirs"],
        "ours_vectors_per_s": vectors / med["ours"], "theirs_vectors_per_s": vectors / med["theirs"],
        "ratio_ours_over_theirs": med["theirs"] / med["ours"],
        "ours_ms_all": [1e3 * t for t in times["ours"]], "theirs_ms_all": [1e3 * t for t in times["theirs"]],
    }


def main(argv: list[str] | None = None) -> int:
    args, device = parse_args(__doc__.splitlines()[0], "small sizes, a few seconds (smoke test)", argv)

    if args.quick:
        settings = [dict(batch=32, k=512, d=64, side=8)]
        timing = dict(repeats=5, inner=3, warmup=2)
    else:
        settings = [dict(batch=128, k=512, d=64, side=8)]
        if device.type == "cuda":
            settings.append(dict(batch=1024, k=512, d=64, side=8))
        timing = dict(repeats=15, inner=5, warmup=5) if device.type == "cpu" else dict(repeats=30, inner=20, warmup=20)

    rows = []
    for s in settings:
        row = measure(s["batch"], s["k"], s["d"], s["side"], device=device, **timing)
        rows.append(row)
        print(f"batch {row['batch']:>5} ({row['vectors_per_step']} vectors), K = {row['num_codes']}, "
              f"D = {row['code_dim']} on {device.type}: ours {row['ours_ms']:.2f} ms, "
              f"vector-quantize-pytorch {row['theirs_ms']:.2f} ms -> ours/theirs = "
              f"{row['ratio_ours_over_theirs']:.2f}x")
    main_ratio = rows[0]["ratio_ours_over_theirs"]
    if device.type == "cpu" and not args.quick:
        verdict = "meets" if main_ratio >= GOAL else "misses"
        print(f"goal ours/theirs >= {GOAL}x on CPU at batch 128, K = 512, D = 64: {verdict} it")

    from importlib.metadata import version

    record(args, device, "vqvae", "quantiser forward+backward throughput",
           {"ratio_ours_over_theirs": main_ratio, "goal_cpu_ratio": GOAL, "settings": rows},
           config={"mode": "train, EMA, straight-through", "decay": 0.99, "commitment_weight": 0.25, **timing,
                   "reference": f"vector-quantize-pytorch {version('vector-quantize-pytorch')}"},
           notes="Ratio of median step times in one run (theirs/ours time = ours/theirs throughput).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
