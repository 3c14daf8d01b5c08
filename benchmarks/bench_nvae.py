"""NVAE training-step time: eager vs torch.compile, with and without channels-last (bf16 autocast on CUDA).

One training step = forward, the objective with KL balancing and the spectral/BN penalties, backward and
an Adamax update, on dynamically binarised digits. The variants are timed in the same run, alternating,
after a warm-up; ratios are against eager fp32 (no autocast) in the default memory format, measured in
the same run. The first call of a compiled step (tracing and code generation) is timed separately and
excluded from the step times.

On CUDA every variant runs at the FULL config (batch 200). On a CPU, where inductor generates and compiles
C++ for every kernel (minutes for the first call; cached afterwards under the inductor cache directory),
the run is split so that it ends in about two minutes once that cache is warm: images/s at the FULL
config in eager fp32 with a batch of 16, and eager vs torch.compile at the QUICK config (its batch of 32).
Channels-last is timed only where its backward pass works: with torch 2.13's CPU build a stride-2 1×1
convolution's backward in channels-last crashed the process (exit status -11) on an earlier host, and ran on
the host of the recorded CPU run (AVX-512); the script probes it in a child process first, and the record
says whether channels-last was timed and, if not, why (``channels_last_untimed_reason``).

    python benchmarks/bench_nvae.py            # the device at hand (add --write to record a CPU run)
    python benchmarks/bench_nvae.py --quick    # the QUICK config, a few steps, no compile: a smoke test
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import replace

import torch
from _cli import parse_args, record, sync, time_interleaved

from dlnotes import nvae

GOAL_GPU = 1.5  # torch.compile + bf16 over eager fp32 on a GPU (issue 13)
CPU_FULL_BATCH = 16  # the FULL config's batch on a CPU (200 on CUDA)

_CHANNELS_LAST_PROBE = """
import torch
torch.set_num_threads(1)
dev = torch.device({device!r})
x = torch.randn(8, 4, 32, 32, device=dev).contiguous(memory_format=torch.channels_last).requires_grad_()
conv = torch.nn.Conv2d(4, 8, 1, stride=2).to(dev, memory_format=torch.channels_last)
conv(x).sum().backward()
"""


def channels_last_backward_works(device: torch.device) -> tuple[bool, str]:
    """Run a stride-2 1×1 convolution's backward in channels-last in a child process (it may crash).

    Returns (it worked, what happened: the exit status and, on a CPU, torch's CPU capability, since the
    crash depends on the host).
    """
    done = subprocess.run([sys.executable, "-c", _CHANNELS_LAST_PROBE.format(device=str(device))],
                          capture_output=True, text=True, timeout=120)
    what = f"exit status {done.returncode}"
    if device.type == "cpu":
        what += f", CPU capability {torch.backends.cpu.get_cpu_capability()}"
    return done.returncode == 0, what


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


def measure(cfg: nvae.NVAEConfig, variants: dict[str, dict], device: torch.device, *, warmup: int,
            repeats: int, label: str) -> dict:
    steps, first_call_s = {}, {}
    for name, kw in variants.items():
        steps[name] = make_step(cfg, device, **kw)
        if kw["compiled"]:  # the first call traces and generates code: timed on its own
            sync(device)
            start = time.perf_counter()
            steps[name]()
            sync(device)
            first_call_s[name] = time.perf_counter() - start
            print(f"{label}: first call of {name!r} (compilation) took {first_call_s[name]:.1f} s")
    times = time_interleaved(steps, device=device, warmup=warmup, repeats=repeats)
    med = {name: statistics.median(t) for name, t in times.items()}
    base = med["eager fp32"]
    for name, t in med.items():
        print(f"{label} {name:>22}: {1e3 * t:8.1f} ms/step, {cfg.batch_size / t:7.1f} images/s, "
              f"ratio {base / t:.2f}x over eager fp32 "
              f"({'bf16' if variants[name]['bf16'] else 'fp32'}, {device.type}, batch {cfg.batch_size})")
    return {"batch_size": cfg.batch_size, "channels": cfg.channels, "groups": list(cfg.groups),
            "warmup": warmup, "repeats": repeats,
            "ms_per_step": {k: 1e3 * v for k, v in med.items()},
            "images_per_s": {k: cfg.batch_size / v for k, v in med.items()},
            "ratio_over_eager_fp32": {k: base / v for k, v in med.items()},
            "first_call_s": first_call_s}


def main(argv: list[str] | None = None) -> int:
    args, device = parse_args(__doc__.splitlines()[0], "the QUICK config and few repeats (smoke test)", argv)
    cuda = device.type == "cuda"
    bf16 = cuda
    cl_ok, cl_why = channels_last_backward_works(device)
    layouts = (False, True) if cl_ok else (False,)
    if not cl_ok:
        print(f"channels-last skipped on {device.type}: a stride-2 1x1 convolution's backward in "
              f"channels-last crashed a child process ({cl_why}; torch {torch.__version__})")
    if not cuda:  # inductor's layout optimisation turns convolutions channels-last: the same crash
        import torch._inductor.config as inductor_config

        inductor_config.layout_optimization = cl_ok
    eager = dict(compiled=False, channels_last=False, bf16=False)
    runs: dict[str, dict] = {}
    if args.quick:  # no compile: the smoke test must take seconds
        variants = {"eager fp32": eager, "eager bf16": dict(eager, bf16=True)}
        if cl_ok:
            variants["eager channels-last"] = dict(eager, channels_last=True, bf16=bf16)
        runs["quick"] = measure(replace(nvae.QUICK, batch_size=16), variants, device, warmup=1, repeats=3,
                                label="QUICK")
    else:
        variants = {"eager fp32": eager}
        for cl in layouts:
            suffix = " channels-last" if cl else ""
            if cl or bf16:
                variants["eager" + suffix + (" bf16" if bf16 else "")] = dict(eager, channels_last=cl, bf16=bf16)
            variants["compile" + suffix + (" bf16" if bf16 else "")] = dict(compiled=True, channels_last=cl,
                                                                             bf16=bf16)
        if cuda:
            runs["full"] = measure(nvae.FULL, variants, device, warmup=5, repeats=10, label="FULL")
        else:
            print(f"CPU: FULL config eager fp32 with batch {CPU_FULL_BATCH} (200 on CUDA); eager vs "
                  f"torch.compile at the QUICK config (batch {nvae.QUICK.batch_size})")
            runs["full"] = measure(replace(nvae.FULL, batch_size=CPU_FULL_BATCH), {"eager fp32": eager}, device,
                                   warmup=1, repeats=3, label="FULL")
            runs["quick"] = measure(nvae.QUICK, variants, device, warmup=2, repeats=8, label="QUICK")
    if cuda and not args.quick:
        compiled = [k for k in runs["full"]["ratio_over_eager_fp32"] if k.startswith("compile")]
        best = max(runs["full"]["ratio_over_eager_fp32"][k] for k in compiled)
        print(f"goal compile + bf16 >= {GOAL_GPU}x eager fp32: {'meets' if best >= GOAL_GPU else 'misses'} it "
              f"({best:.2f}x)")
    record(args, device, "nvae", "NVAE training step: eager vs torch.compile, channels-last",
           {"runs": runs, "channels_last_timed": cl_ok, "goal_gpu": GOAL_GPU,
            "channels_last_probe": cl_why,
            "channels_last_untimed_reason": None if cl_ok else (
                f"a stride-2 1x1 convolution's backward in channels-last crashed a child process "
                f"({cl_why}, torch {torch.__version__})")},
           config={"full_batch": runs.get("full", {}).get("batch_size"), "bf16": bf16,
                   "inductor_layout_optimization": cl_ok or cuda},
           notes="Median step times of one interleaved run per config; bf16 autocast on CUDA only. "
                 "first_call_s is the compiled step's first call (tracing + code generation; on a CPU it "
                 "is far shorter when inductor's cache already holds the kernels). "
                 + ("" if cl_ok else f"Channels-last not timed: its backward crashed a child process "
                                     f"({cl_why}, torch {torch.__version__})."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
