"""Transformer block forward + backward: dlnotes.init_norm.TransformerBlock vs nn.TransformerEncoderLayer.

Our block is loaded from the PyTorch layer with ``TransformerBlock.from_torch`` (same weights, GELU,
dropout 0, batch_first), so both compute the same function; the script checks that first. Both are
timed in the same run on the same inputs, alternating, after a warm-up; the median of the repeats is
reported, and the ratio is ours/torch in *time* per step, so < 1 means ours is faster (goal <= 1.2,
issue 14). Post-Norm and Pre-Norm (``norm_first``) are both measured.

    python benchmarks/bench_init_norm.py            # batch 32, 128 tokens, d_model 512, 8 heads
    python benchmarks/bench_init_norm.py --quick    # batch 8, 64 tokens, d_model 128: a smoke test
                                                    # that writes nothing unless --write is given
"""
from __future__ import annotations

import statistics
import sys

import torch
from _cli import parse_args, record, time_interleaved
from torch import nn

from dlnotes.init_norm import TransformerBlock

GOAL = 1.2  # ours/torch time per forward+backward step (issue 14)


def measure(batch: int, seq: int, d_model: int, heads: int, norm_first: bool, *, repeats: int, inner: int,
            warmup: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0, activation="gelu",
                                        batch_first=True, norm_first=norm_first).to(device).train()
    ours = TransformerBlock.from_torch(theirs).train()
    x = torch.randn(batch, seq, d_model, device=device)
    weight = torch.randn(batch, seq, d_model, device=device)
    with torch.no_grad():
        gap = (ours(x) - theirs(x)).abs().max().item()
    if gap > 1e-4:
        raise RuntimeError(f"the two blocks disagree by {gap:.2e}; the timing would compare different functions")

    def step(module):
        def run() -> None:
            module.zero_grad(set_to_none=True)
            (module(x) * weight).sum().backward()
        return run

    times = time_interleaved({"ours": step(ours), "torch": step(theirs)}, warmup=warmup, repeats=repeats,
                             device=device, inner=inner)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"batch": batch, "seq_len": seq, "d_model": d_model, "heads": heads,
            "norm": "pre" if norm_first else "post", "max_abs_gap": gap,
            "ours_ms": 1e3 * med["ours"], "torch_ms": 1e3 * med["torch"],
            "ratio_ours_over_torch_time": med["ours"] / med["torch"],
            "ours_ms_all": [1e3 * t for t in times["ours"]], "torch_ms_all": [1e3 * t for t in times["torch"]]}


def main(argv: list[str] | None = None) -> int:
    args, device = parse_args(__doc__.splitlines()[0], "small sizes, a few seconds (smoke test)", argv)
    if args.quick:
        size = dict(batch=8, seq=64, d_model=128, heads=4)
        timing = dict(repeats=5, inner=3, warmup=2)
    else:
        size = dict(batch=32, seq=128, d_model=512, heads=8)
        timing = dict(repeats=15, inner=3, warmup=3) if device.type == "cpu" else dict(repeats=30, inner=20,
                                                                                          warmup=20)
    rows = []
    for norm_first in (False, True):
        row = measure(**size, norm_first=norm_first, device=device, **timing)
        rows.append(row)
        print(f"{row['norm']}-norm block, batch {row['batch']} x {row['seq_len']} tokens, d_model "
              f"{row['d_model']}, {row['heads']} heads on {device.type}: ours {row['ours_ms']:.2f} ms, "
              f"nn.TransformerEncoderLayer {row['torch_ms']:.2f} ms -> ours/torch time = "
              f"{row['ratio_ours_over_torch_time']:.2f} (outputs differ by {row['max_abs_gap']:.1e})")
    worst = max(r["ratio_ours_over_torch_time"] for r in rows)
    if not args.quick:
        print(f"goal ours/torch time <= {GOAL}: {'meets' if worst <= GOAL else 'misses'} it (worst {worst:.2f})")
    record(args, device, "init_norm", "Transformer block forward+backward time",
           {"ratio_ours_over_torch_time": worst, "goal_ratio": GOAL, "settings": rows},
           config={**size, **timing, "reference": f"torch {torch.__version__} nn.TransformerEncoderLayer"},
           notes="Ratio of median step times in one run (ours/torch time; < 1 means ours is faster); "
                 "worst of Post-Norm and Pre-Norm.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
