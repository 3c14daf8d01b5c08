"""NVAE training-step time: eager vs torch.compile, with and without channels-last (bf16 autocast on CUDA).

One training step = forward, the objective with KL balancing and the spectral/BN penalties, backward and
an Adamax update, on dynamically binarised digits. The variants are timed in the same run, alternating,
after a warm-up; ratios are against eager fp32 (no autocast) in the default memory format.

    python benchmarks/bench_nvae.py            # the FULL config (batch 200) on the device at hand
    python benchmarks/bench_nvae.py --quick    # the QUICK config, a few steps: a smoke test
"""
from __future__ import annotations

import statistics
import sys
from dataclasses import replace

import torch
from _cli import parse_args, record, time_interleaved

from dlnotes import nvae

GOAL_GPU = 1.5  # torch.compile + bf16 over eager fp32 on a GPU (issue 13)


def make_step(cfg: nvae.NVAEConfig, device: torch.device, *, compiled: bool, channels_last: bool, bf16: bool):
    torch.manual_seed(0)
    model = nvae.NVAE(cfg).to(device).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    sr = nvae.SpectralRegularizer(model)
    opt = nvae.make_optimizer(model, cfg)
    run = torch.compile(model) if compiled else model
    gen = torch.Generator(device).manual_seed(0)
    x = torch.bernoulli(torch.rand(cfg.batch_size, 1, 28, 28, device=device), generator=gen)
    x = x.contiguous(memory_format=fmt)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = nvae.loss_terms(run, x, step=1, cfg=cfg, sr=sr, generator=gen).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> int:
    args, device = parse_args(__doc__.splitlines()[0], "the QUICK config and few repeats (smoke test)", argv)
    cfg = replace(nvae.QUICK, batch_size=16) if args.quick else nvae.FULL
    bf16 = device.type == "cuda"
    # On CPU (torch 2.13) the backward pass of this model in channels-last aborts the process
    # ("double free or corruption"), so channels-last is timed on CUDA only.
    layouts = (False, True) if device.type == "cuda" else (False,)
    variants = {"eager fp32": dict(compiled=False, channels_last=False, bf16=False)}
    for cl in layouts:
        suffix = " channels-last" if cl else ""
        if cl:
            variants["eager" + suffix] = dict(compiled=False, channels_last=True, bf16=bf16)
        if not args.quick:
            variants["compile" + suffix] = dict(compiled=True, channels_last=cl, bf16=bf16)
    if device.type != "cuda":
        print("channels-last skipped on CPU: its backward pass aborts there (torch 2.13)")
        if args.quick:  # torch.compile takes minutes to compile on a CPU: the smoke test times bf16 instead
            variants["eager bf16"] = dict(compiled=False, channels_last=False, bf16=True)
    steps = {name: make_step(cfg, device, **kw) for name, kw in variants.items()}
    timing = dict(warmup=1, repeats=3) if args.quick else dict(warmup=5, repeats=10)
    times = time_interleaved(steps, device=device, **timing)
    med = {name: statistics.median(t) for name, t in times.items()}
    base = med["eager fp32"]
    for name, t in med.items():
        print(f"{name:>24}: {1e3 * t:8.1f} ms/step, {cfg.batch_size / t:8.1f} images/s, "
              f"ratio {base / t:.2f}x over eager fp32 ({'bf16' if variants[name]['bf16'] else 'fp32'}, {device.type})")
    if device.type == "cuda" and "compile channels-last" in med and "compile" in med:
        best = base / min(med["compile"], med["compile channels-last"])
        print(f"goal compile + bf16 >= {GOAL_GPU}x eager fp32: {'meets' if best >= GOAL_GPU else 'misses'} it")
    record(args, device, "nvae", "NVAE training step: eager vs torch.compile, channels-last",
           {"ms_per_step": {k: 1e3 * v for k, v in med.items()},
            "images_per_s": {k: cfg.batch_size / v for k, v in med.items()},
            "ratio_over_eager_fp32": {k: base / v for k, v in med.items()}, "goal_gpu": GOAL_GPU},
           config={"batch_size": cfg.batch_size, "channels": cfg.channels, "groups": list(cfg.groups), **timing},
           notes="Median step times of one interleaved run; bf16 autocast on CUDA only.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
