"""dlnotes.init_norm.sorting: the chapter's experiment at the size of issue 14, its budgets, the cost probe."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from dlnotes import init_norm as inn

SORTING_FIELDS = ("n_layers", "d_model", "n_heads", "lr", "batch", "steps", "warmup", "ramp_steps")


def test_post_ln_stalls_where_pre_ln_learns_at_the_issues_size():
    # seeds 0, 1, 2 at 12 blocks of width 64, lr 1e-3, 200 steps, no warm-up, CPU, one thread
    # (benchmarks/results/init_norm-cpu.json): Post-LN 2.57-2.78 (chance ln 16 = 2.77), accuracy
    # 0.07-0.16; Pre-LN 0.15-0.16, accuracy 0.95-0.97; the chapter's thresholds (seed 0, ~25 s)
    torch.set_num_threads(1)
    post = inn.train_sorting(inn.QUICK, "post", seed=0)
    pre = inn.train_sorting(inn.QUICK, "pre", seed=0)
    assert post.final_loss > 2.3 and pre.final_loss < 0.3
    assert pre.accuracy > post.accuracy + 0.6


def test_quick_and_full_share_the_issues_size_and_differ_in_seeds():
    full, quick = inn.FULL, inn.QUICK
    issue = dict(n_layers=12, d_model=64, n_heads=4, lr=1e-3, batch=64, steps=200, warmup=50, ramp_steps=100)
    assert {f: getattr(quick, f) for f in SORTING_FIELDS} == issue
    assert {f: getattr(full, f) for f in SORTING_FIELDS} == issue
    assert quick.seeds == (0,) and full.seeds == (0, 1, 2)


def _small_stack(norm="pre", seed=0):
    cfg = dataclasses.replace(inn.QUICK, n_layers=5, d_model=16, n_heads=2, eval_size=64)
    torch.manual_seed(seed)
    return cfg, inn.build_stack(cfg, norm)


def _loss(model, cfg, run_blocks):
    gen = torch.Generator().manual_seed(30_000)  # swap_test's probe batch for seed 0
    x, y = inn.sorting_batch(cfg.eval_size, cfg.seq_len, cfg.vocab, generator=gen)
    with torch.no_grad():
        h = run_blocks(model.tok(x) + model.pos[: x.shape[1]])
        logits = model.head(model.final_norm(h))
    return torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1)).item()


def test_swap_test_branch_swaps_the_input_and_delete_removes_a_block():
    cfg, model = _small_stack()
    blocks = list(model.blocks)

    def plain(h, skip=None):
        for i, b in enumerate(blocks):
            h = h if i == skip else b(h)
        return h

    base = _loss(model, cfg, plain)
    delete = inn.swap_test(model, cfg, mode="delete")
    branch = inn.swap_test(model, cfg, mode="branch")
    assert delete.shape == branch.shape == (4,)
    for t in range(4):
        assert delete[t].item() == pytest.approx(_loss(model, cfg, lambda h: plain(h, skip=t)) - base, abs=1e-5)

        def swapped(h, t=t):  # x_{t+2} = x_{t+1} + F_{t+1}(Norm x_t) for Pre-Norm
            states = [h]
            for i, b in enumerate(blocks):
                if i == t + 1:
                    states.append(states[-1] + b(states[-2]) - states[-2])
                else:
                    states.append(b(states[-1]))
            return states[-1]

        assert branch[t].item() == pytest.approx(_loss(model, cfg, swapped) - base, abs=1e-5)
    assert (branch - delete).abs().max() > 1e-3  # two different probes
    with pytest.raises(ValueError, match="mode"):
        inn.swap_test(model, cfg, mode="swap")


def test_swap_test_is_zero_for_identity_blocks():
    cfg, model = _small_stack("rezero")  # gates 0: every block is the identity
    for mode in inn.SWAP_MODES:
        assert inn.swap_test(model, cfg, mode=mode).abs().max() < 1e-6
