"""dlnotes.init_norm.sorting: the chapter's experiment at the quick size, and its cost probe."""
from __future__ import annotations

import pytest
import torch

from dlnotes import init_norm as inn


def test_post_ln_stalls_where_pre_ln_learns_at_the_quick_size():
    # seeds 0, 1, 2 at the quick size (8 blocks of width 32, lr 3e-3, 150 steps, no warm-up):
    # Post-LN 2.70-2.78 (chance ln 16 = 2.77), Pre-LN 0.63-0.69; the chapter's quick thresholds
    torch.set_num_threads(1)
    post = inn.train_sorting(inn.QUICK, "post", seed=0)
    pre = inn.train_sorting(inn.QUICK, "pre", seed=0)
    assert post.final_loss > 2.5 and pre.final_loss < 0.85
    assert pre.accuracy > post.accuracy + 0.3


def test_budgets_differ_in_size_and_full_is_the_briefs():
    full, quick = inn.FULL, inn.QUICK
    assert (full.n_layers, full.d_model, full.n_heads, full.lr, full.batch, full.steps) == (12, 64, 4, 1e-3, 64, 200)
    assert (full.warmup, full.ramp_steps, full.seeds) == (50, 100, (0, 1, 2))
    assert quick.n_layers * quick.d_model < full.n_layers * full.d_model


def test_seconds_per_step_grows_with_size_and_checks_steps():
    small = inn.seconds_per_step(inn.QUICK, steps=3)
    assert small > 0
    big = inn.seconds_per_step(inn.FULL, steps=3)
    assert big > small  # 12 blocks of width 64 and twice the batch cost more than 8 of width 32
    with pytest.raises(ValueError, match="steps"):
        inn.seconds_per_step(inn.QUICK, steps=0)
