"""dlnotes.nvae.train: bit-for-bit resume, and DDP on CPU (gloo) equal to one process averaging the ranks."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dlnotes import nvae
from dlnotes.nvae.train import _batch_indices

CFG = nvae.NVAEConfig(channels=2, preprocess=1, post_cells=0, groups=(1, 1), latent_channels=2, expand=2,
                      kernel=3, steps=4, batch_size=4, lr=1e-2, lr_warmup=0.25)


def _images(n: int = 32) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_resume_continues_bit_for_bit(tmp_path):
    images = _images()
    full, _ = nvae.train(CFG, images, seed=0)
    ckpt = tmp_path / "ckpt.pt"
    nvae.train(CFG, images, seed=0, stop_at=2, checkpoint=ckpt)
    assert ckpt.exists() and not (tmp_path / "ckpt.pt.tmp").exists()
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    resumed, history = nvae.train(CFG, images, seed=0, checkpoint=ckpt, resume=True)
    assert history.steps == [4]  # only steps 3 and 4 ran
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    other, _ = nvae.train(CFG, images, seed=1)
    assert not torch.equal(other.h0, full.h0)  # a different run does differ


def _worker(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model, _ = nvae.train(CFG, _images(), seed=0, stop_at=3)
        torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _reference(steps: int, world: int = 2) -> nvae.NVAE:
    """One process that sees every rank's batch, computes its loss separately and averages the losses."""
    images, seed = _images(), 0
    torch.manual_seed(seed)
    model = nvae.NVAE(CFG)
    sr = nvae.SpectralRegularizer(model, seed=seed)
    optimizer = nvae.make_optimizer(model, CFG)
    gens = [torch.Generator().manual_seed(seed + r) for r in range(world)]
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = nvae.lr_at(step, CFG)
        losses = []
        for r in range(world):  # BN statistics per rank's batch, as under DDP
            idx = _batch_indices(len(images), CFG, step, rank=r, world=world, seed=seed)
            x = nvae.binarize(images[idx], gens[r])
            losses.append(nvae.loss_terms(model, x, step=step, cfg=CFG, sr=None, generator=gens[r]).loss)
        loss = torch.stack(losses).mean() + sr.penalty(CFG.sr_lambda) + nvae.bn_penalty(model, CFG.sr_lambda)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ddp_on_cpu_matches_one_process_averaging_the_ranks(tmp_path):
    init = f"file://{tmp_path}/rendezvous"
    mp.spawn(_worker, args=(2, init, str(tmp_path)), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    reference = _reference(steps=3).state_dict()
    for name, value in states[0].items():
        if "running" in name or "num_batches" in name:
            continue  # BN buffers: per rank under DDP
        assert torch.equal(value, states[1][name]), f"ranks differ in {name}"
        assert torch.allclose(value, reference[name], atol=1e-5, rtol=1e-4), f"{name} differs from the reference"
    single, _ = nvae.train(CFG, _images(), seed=0, stop_at=3)  # one rank alone sees other batches
    assert not torch.allclose(single.h0, states[0]["h0"], atol=1e-6)


def test_train_rejects_bad_stop_and_batch():
    with pytest.raises(ValueError, match="stop_at"):
        nvae.train(CFG, _images(), stop_at=5)
    with pytest.raises(ValueError, match="batch_size"):
        nvae.train(replace(CFG, batch_size=64), _images())


def test_checkpoint_loads_onto_the_cpu_with_weights_only(tmp_path, monkeypatch):
    """Generator states must reach ``set_state`` as CPU ByteTensors, also when the run is on a GPU."""
    images, ckpt = _images(), tmp_path / "ckpt.pt"
    nvae.train(CFG, images, seed=0, stop_at=2, checkpoint=ckpt)
    calls, real_load = [], torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)  # the module train.py uses
    nvae.train(CFG, images, seed=0, checkpoint=ckpt, resume=True)
    assert len(calls) == 1
    assert calls[0].get("map_location") == "cpu" and calls[0].get("weights_only") is True


def test_failed_checkpoint_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    """A save that dies half-way (disk full, killed job) must leave the previous checkpoint loadable."""
    images, ckpt = _images(), tmp_path / "ckpt.pt"
    nvae.train(CFG, images, seed=0, stop_at=2, checkpoint=ckpt)
    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as handle:  # keep the first half of what was written, then fail
            handle.truncate(os.path.getsize(f) // 2)
        raise OSError("no space left on device")

    monkeypatch.setattr(torch, "save", half_save)  # the module train.py uses
    with pytest.raises(OSError, match="no space"):
        nvae.train(CFG, images, seed=0, checkpoint=ckpt, resume=True)
    monkeypatch.undo()
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_resume_rejects_another_config_and_a_finished_run(tmp_path):
    images, ckpt = _images(), tmp_path / "ckpt.pt"
    nvae.train(CFG, images, seed=0, stop_at=2, checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"config differs .*'steps'"):
        nvae.train(replace(CFG, steps=5), images, seed=0, checkpoint=ckpt, resume=True)
    with pytest.raises(ValueError, match="stop_at must exceed the checkpoint's step 2"):
        nvae.train(CFG, images, seed=0, stop_at=2, checkpoint=ckpt, resume=True)
    assert torch.load(ckpt, weights_only=True)["step"] == 2  # neither touched the checkpoint


def test_learning_rate_schedule():
    """Linear warm-up over lr_warmup·steps, then cosine from lr down to lr_min, never rising again."""
    cfg = replace(CFG, steps=1000, lr=1e-2, lr_min=1e-4, lr_warmup=0.05)  # 50 warm-up steps
    lrs = [nvae.lr_at(step, cfg) for step in range(cfg.steps)]
    assert lrs[0] == pytest.approx(cfg.lr / 50)  # the first step already moves
    assert lrs[24] == pytest.approx(cfg.lr / 2)
    assert lrs[49] == pytest.approx(cfg.lr) and lrs[50] == pytest.approx(cfg.lr)  # end of warm-up: the peak
    assert all(b > a for a, b in zip(lrs[:49], lrs[1:50]))  # rising through the warm-up
    assert all(b <= a for a, b in zip(lrs[50:], lrs[51:]))  # non-increasing after it
    assert lrs[525] == pytest.approx((cfg.lr + cfg.lr_min) / 2, rel=1e-2)  # half-way down the cosine
    assert lrs[-1] == pytest.approx(cfg.lr_min, rel=1e-3)
    assert min(lrs) >= cfg.lr_min
    no_warmup = replace(cfg, lr_warmup=0.0)
    assert nvae.lr_at(0, no_warmup) == pytest.approx(cfg.lr)


def _uncached_batch_indices(n, cfg, step, *, rank, world, seed):
    """The former _batch_indices: a fresh DistributedSampler at every step."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    per_epoch = len(sampler) // cfg.batch_size
    sampler.set_epoch(step // per_epoch)
    return torch.tensor(list(sampler))[(step % per_epoch) * cfg.batch_size:][:cfg.batch_size]


@pytest.mark.parametrize("world", [1, 2])
def test_cached_epoch_order_gives_the_same_batches(world):
    """35 images, batch 4: 8 steps an epoch on one rank (4 on each of two); steps 0-19 cross epoch boundaries."""
    for rank in range(world):
        seen = []
        for step in range(20):
            idx = _batch_indices(35, CFG, step, rank=rank, world=world, seed=3)
            assert torch.equal(idx, _uncached_batch_indices(35, CFG, step, rank=rank, world=world, seed=3)), step
            seen.append(idx)
        per_epoch = 8 // world
        first, second = torch.cat(seen[:per_epoch]), torch.cat(seen[per_epoch:2 * per_epoch])
        assert len(set(first.tolist())) == len(first)  # no index twice within an epoch
        assert not torch.equal(first, second)  # a new order each epoch
