"""dlnotes.init_norm: the synthetic Markov language and the μP / SP Transformer language model."""
from __future__ import annotations

import math

import pytest
import torch

from dlnotes import init_norm as inn


def test_markov_language_table_stationarity_and_entropy_rate():
    lang = inn.MarkovLanguage(16, concentration=0.2, seed=3)
    assert torch.allclose(lang.table.sum(-1), torch.ones(16, 16, dtype=torch.float64))
    moved = torch.einsum("ab,abc->bc", lang.pairs, lang.table)
    assert torch.allclose(moved, lang.pairs, atol=1e-10)
    # the loss of the true table on sampled targets with two tokens of context averages to the entropy rate
    x = lang.sample(4000, 12, generator=torch.Generator().manual_seed(0))
    nll = -lang.table[x[:, :-2], x[:, 1:-1], x[:, 2:]].log()
    se = nll.std().item() / math.sqrt(nll.numel())
    assert abs(nll.mean().item() - lang.entropy_rate()) < 4 * se
    assert lang.entropy_rate() < 0.8 * lang.uniform_loss()  # peaked rows: something to learn


def test_markov_language_bad_input():
    with pytest.raises(ValueError, match="vocab"):
        inn.MarkovLanguage(1)
    with pytest.raises(ValueError, match="concentration"):
        inn.MarkovLanguage(8, concentration=0.0)
    with pytest.raises(ValueError, match="seq_len"):
        inn.MarkovLanguage(8).sample(2, 2)


def test_lm_is_causal():
    torch.manual_seed(0)
    model = inn.TransformerLM(16, 12, 32, n_heads=4, param="sp", base_width=32)
    x = torch.randint(0, 16, (3, 12))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % 16
    out_x, out_y = model(x), model(y)
    assert torch.allclose(out_x[:, :7], out_y[:, :7], atol=1e-6)
    assert (out_x[:, 7:] - out_y[:, 7:]).abs().max() > 1e-3


def test_mup_equals_sp_at_the_base_width_and_scales_above_it():
    torch.manual_seed(0)
    sp = inn.TransformerLM(16, 10, 32, n_heads=4, param="sp", base_width=32)
    torch.manual_seed(0)
    mup = inn.TransformerLM(16, 10, 32, n_heads=4, param="mup", base_width=32)
    with torch.no_grad():
        mup.head.weight.copy_(sp.head.weight)  # the only difference at the base width: the readout's init
    x = torch.randint(0, 16, (2, 10))
    assert torch.allclose(sp(x), mup(x), atol=1e-6)
    wide = inn.TransformerLM(16, 10, 128, n_heads=4, param="mup", base_width=32)
    assert wide.blocks[0].attn_scale == pytest.approx(math.sqrt(8) / 32)  # 1/d_head, matched at the base
    groups = inn.mup_param_groups(wide, 1e-2)
    assert [g["lr"] for g in groups] == pytest.approx([1e-2 / 4, 1e-2])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in wide.parameters())
    assert len(groups[0]["params"]) == 4 * len(wide.blocks)


def test_mup_lm_logit_updates_stay_flat_in_width_and_grow_in_sp():
    lang = inn.MarkovLanguage(16, seed=0)
    tokens = inn.lm_batches(lang, 3, 16, 12)
    change = {}
    for p in ("sp", "mup"):
        for width in (32, 256):
            torch.manual_seed(0)
            model = inn.TransformerLM(16, 12, width, n_heads=4, param=p, base_width=32)
            opt = torch.optim.Adam(inn.mup_param_groups(model, 1e-2))
            before = model(tokens[0]).detach()
            for x in tokens:
                loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 16), x.roll(-1, 1).reshape(-1))
                opt.zero_grad()
                loss.backward()
                opt.step()
            change[p, width] = (model(tokens[0]).detach() - before).abs().mean().item()
    # logit change after 3 steps, width 256 / width 32, seeds 0, 1, 2 (language and model):
    # SP 2.95, 3.37, 3.92; muP 1.07, 0.91, 0.82
    assert change["sp", 256] / change["sp", 32] > 2.0
    assert 0.5 < change["mup", 256] / change["mup", 32] < 2.0


def test_lm_lr_sweep_shape_seeds_and_bad_input():
    lang = inn.MarkovLanguage(8, seed=0)
    kw = dict(steps=2, batch=4, seq_len=6, n_layers=1, base_width=16)
    one = inn.lm_lr_sweep(lang, (16, 32), (1e-3, 1e-2), param="mup", seeds=(0,), **kw)
    two = inn.lm_lr_sweep(lang, (16, 32), (1e-3, 1e-2), param="mup", seeds=(0, 1), **kw)
    other = inn.lm_lr_sweep(lang, (16, 32), (1e-3, 1e-2), param="mup", seeds=(1,), **kw)
    assert one.shape == (2, 2) and torch.allclose(two, (one + other) / 2)
    assert torch.isfinite(one).all()
    with pytest.raises(ValueError, match="lrs"):
        inn.lm_lr_sweep(lang, (16,), (0.0,), **kw)
    with pytest.raises(ValueError, match="param"):
        inn.TransformerLM(8, 6, 16, param="ntk")
    with pytest.raises(ValueError, match="steps"):
        inn.train_lm(lang, 16, 1e-3, steps=0)
