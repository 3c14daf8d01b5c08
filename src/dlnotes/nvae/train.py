r"""Training NVAE: the objective (N7), Adamax with warm-up and cosine decay, checkpoints, resume, DDP.

One process: ``python -m dlnotes.nvae.train --budget quick``. Several GPUs (or CPU processes) through
PyTorch's own launcher: ``torchrun --standalone --nproc_per_node=2 -m dlnotes.nvae.train --budget full``
(NCCL on GPUs, gloo on CPUs; each rank sees its own shard through a ``DistributedSampler``, seeds
``seed + rank``, and only rank 0 logs and writes checkpoints). Checkpoints are written atomically and read
with ``weights_only=True`` onto the CPU (generator states must stay CPU byte tensors; the model, optimizer and
spectral vectors move to the run's device as they load). Resuming from one continues the run bit for bit on a
CPU; on a GPU it continues the same schedule, but deterministic GPU algorithms are not switched on, so the
numbers may differ in the last bits.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DistributedSampler

from dlnotes.nvae.model import NVAE, NVAEConfig
from dlnotes.nvae.schedule import balance_coefficients, group_alphas, kl_warmup
from dlnotes.nvae.spectral import SpectralRegularizer, bn_penalty
from dlnotes.train import History

__all__ = ["QUICK", "FULL", "Loss", "loss_terms", "lr_at", "make_optimizer", "binarize", "train", "main"]

#: CPU, about a minute on 2 cores: 4 channels, 2 scales (8×8, 16×16 maps) × 2 groups of 4 latent channels;
#: no weight norm (the chapter's quick thresholds were calibrated without it).
QUICK = NVAEConfig(channels=4, preprocess=1, post_cells=0, groups=(2, 2), latent_channels=4, steps=300,
                   batch_size=32, lr=1e-2)
#: One GPU: the official MNIST latent layout and knobs (2 scales, 5 + 10 groups, 20 latent channels, 32 channels,
#: 2 cells per group, SE, residual posterior, weight-normalised convs, SR λ = 1e-2, KL warm-up 30%), batch 200 and
#: 60 epochs instead of 400. Not official: one EncoderCell + Down per preprocessing block and one Up + DecoderCell
#: per postprocessing block (official: 3 cells per block), and a learning-rate warm-up over lr_warmup = 5% of the
#: steps (official: 5 epochs). Latent maps 4×4 and 8×8 (MNIST padded to 32, two stride-2 preprocessing blocks), as the paper's.
FULL = NVAEConfig(channels=32, preprocess=2, post_cells=1, groups=(5, 10), latent_channels=20, cells_per_group=2,
                  steps=18_000, batch_size=200, lr=1e-2, weight_norm=True, channels_last=True)


class Loss(NamedTuple):
    loss: Tensor  # scalar to minimise: recon + β Σ c_l KL_l + penalties
    nelbo: Tensor  # scalar: recon + Σ KL_l (β = 1, c = 1), nats per image
    recon: Tensor  # scalar, nats per image
    kl: Tensor  # (L,) mean KL per group, nats per image
    beta: float


def binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Dynamic binarisation: each pixel ~ Bernoulli(grey value). x: (B, C, H, W) in [0, 1]."""
    return torch.bernoulli(x, generator=generator)


def lr_at(step: int, cfg: NVAEConfig) -> float:
    """Linear warm-up over ``lr_warmup`` of the steps, then cosine from ``lr`` to ``lr_min``."""
    warm = int(cfg.lr_warmup * cfg.steps)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    frac = (step - warm) / max(cfg.steps - warm, 1)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(frac, 1.0)))


def make_optimizer(model: nn.Module, cfg: NVAEConfig) -> torch.optim.Adamax:
    return torch.optim.Adamax(model.parameters(), lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay)


def loss_terms(model: nn.Module, x: Tensor, *, step: int, cfg: NVAEConfig, sr: SpectralRegularizer | None,
               generator: torch.Generator | None = None) -> Loss:
    """The training objective (N7) on binary images x: (B, C, H, W); ``model`` may be DDP-wrapped."""
    out = model(x, generator=generator)
    beta = kl_warmup(step, cfg.steps, portion=cfg.kl_warmup)
    kl_mean = out.kl.mean(0)  # (L,)
    coeff = (balance_coefficients(out.kl, group_alphas(cfg.groups), beta) if cfg.balance
             else torch.ones_like(kl_mean))
    recon = out.recon.mean()
    loss = recon + beta * (coeff * kl_mean).sum()
    if cfg.sr_lambda > 0 and sr is not None:
        net = model.module if hasattr(model, "module") else model
        loss = loss + sr.penalty(cfg.sr_lambda) + bn_penalty(net, cfg.sr_lambda).to(loss.device)
    return Loss(loss, recon + kl_mean.sum(), recon.detach(), kl_mean.detach(), beta)


def _save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write leaves the old checkpoint and no half file
        raise


@functools.lru_cache(maxsize=8)  # one order per (rank, epoch); a few kept for the DDP test's reference loop
def _epoch_order(n: int, world: int, rank: int, seed: int, epoch: int) -> Tensor:
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler))


def _batch_indices(n: int, cfg: NVAEConfig, step: int, *, rank: int, world: int, seed: int) -> Tensor:
    """Indices of this rank's batch at ``step``: epoch-wise DistributedSampler order, ragged tail dropped.

    The order of an epoch is built once and cached (rebuilding the sampler's permutation of 60,000 indices
    cost 15.5 ms a step)."""
    per_rank = len(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=True))
    per_epoch = per_rank // cfg.batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the {per_rank} images of one rank")
    order = _epoch_order(n, world, rank, seed, step // per_epoch)
    start = (step % per_epoch) * cfg.batch_size
    return order[start:start + cfg.batch_size].clone()


def train(cfg: NVAEConfig, images: Tensor, *, seed: int = 0, device: torch.device | str = "cpu",
          stop_at: int | None = None, checkpoint: str | os.PathLike | None = None, resume: bool = False,
          checkpoint_every: int = 0, log_every: int = 10, progress: bool = False,
          model: NVAE | None = None) -> tuple[NVAE, History]:
    """Train (or continue training) an NVAE on grey images (N, C, H, W) in [0, 1]; return it and its history.

    Runs steps [start, stop_at) of a ``cfg.steps`` schedule (start = 0, or the checkpoint's step with
    ``resume``). Inside ``torchrun`` (``WORLD_SIZE`` > 1, process group initialised) it trains with DDP.
    The returned model carries the run's :class:`SpectralRegularizer` as ``model.spectral``: its
    persistent vectors u, v after the last step (40 power iterations at the start, 4 per step after).
    """
    device = torch.device(device)
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    rank = dist.get_rank() if world > 1 else 0
    stop_at = cfg.steps if stop_at is None else stop_at
    if not 0 < stop_at <= cfg.steps:
        raise ValueError(f"stop_at must be in 1..{cfg.steps}, got {stop_at!r}")
    torch.manual_seed(seed)  # the same initial weights on every rank
    net = (model or NVAE(cfg)).to(device)
    if cfg.channels_last and device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    sr = SpectralRegularizer(net, seed=seed)
    optimizer = make_optimizer(net, cfg)
    gen = torch.Generator(device).manual_seed(seed + rank)  # noise and binarisation of this rank
    start, path = 0, Path(checkpoint) if checkpoint else None
    if resume and path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)  # generator states: CPU ByteTensors
        if state["config"] != asdict(cfg):
            changed = sorted(k for k in set(state["config"]) | set(asdict(cfg))
                             if state["config"].get(k) != asdict(cfg).get(k))
            raise ValueError(f"config differs from the checkpoint's in {changed} ({path}); resume with the "
                             "config that wrote it, or start a new run")
        if state["step"] >= stop_at:
            raise ValueError(f"stop_at must exceed the checkpoint's step {state['step']} ({path}), got {stop_at!r}")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sr.load_state_dict(state["sr"])
        gen.set_state(state["generators"][rank])
        start = state["step"]
    if world > 1:
        if device.type == "cuda":  # BN statistics over all GPUs, as in the paper's multi-GPU runs
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        ddp = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        ddp = net
    history, running = History(), {}
    from tqdm.auto import tqdm

    bar = tqdm(range(start, stop_at), desc="NVAE", disable=not progress or rank != 0, leave=False)
    net.train()
    for step in bar:
        idx = _batch_indices(len(images), cfg, step, rank=rank, world=world, seed=seed)
        x = binarize(images[idx].to(device), gen)
        if cfg.channels_last and device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            terms = loss_terms(ddp, x, step=step, cfg=cfg, sr=sr, generator=gen)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()
        values = {"loss": terms.loss.item(), "nelbo": terms.nelbo.item(), "recon": terms.recon.item(),
                  "beta": terms.beta, **{f"kl{l}": v for l, v in enumerate(terms.kl.tolist())}}
        for k, v in values.items():
            running.setdefault(k, []).append(v)
        done = step + 1
        if done % log_every == 0 or done == stop_at:
            history.log(done, {k: sum(v) / len(v) for k, v in running.items()})
            running = {}
            bar.set_postfix(nelbo=f"{history.last('nelbo'):.1f}")
        if path is not None and ((checkpoint_every and done % checkpoint_every == 0) or done == stop_at):
            gens = [gen.get_state()]
            if world > 1:
                gens = [None] * world
                dist.all_gather_object(gens, ddp_state := gen.get_state())
                del ddp_state
            if rank == 0:
                _save_atomic({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "sr": sr.state_dict(),
                              "step": done, "generators": [g.cpu() for g in gens], "config": asdict(cfg)}, path)
    net.eval()
    net.spectral = sr  # a plain attribute: not a submodule, not in the state dict
    return net, history


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m dlnotes.nvae.train`` or under ``torchrun`` (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=("quick", "full"), default="quick")
    parser.add_argument("--steps", type=int, default=None, help="override the config's total steps")
    parser.add_argument("--checkpoint", default="nvae-checkpoint.pt")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    from dlnotes import data

    cfg = QUICK if args.budget == "quick" else FULL
    if args.steps:
        cfg = replace(cfg, steps=args.steps)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        rank = dist.get_rank() if world > 1 else 0
        images = data.load_images("train").images
        _, history = train(cfg, images, seed=args.seed, device=device, checkpoint=args.checkpoint,
                           resume=args.resume, checkpoint_every=args.checkpoint_every, log_every=100)
        if rank == 0:
            bn = "SyncBatchNorm" if world > 1 and device.type == "cuda" else "per-rank BatchNorm"
            print(f"trained {cfg.steps} steps on {world} process(es), {device.type}, {bn}; "
                  f"last NELBO {history.last('nelbo'):.2f} nats")
    finally:
        if world > 1:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
