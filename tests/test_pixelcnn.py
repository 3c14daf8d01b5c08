"""Tests of dlnotes.vqvae.pixelcnn: causality without a blind spot, likelihood, sampling, completion."""
from __future__ import annotations

import math

import pytest
import torch

from dlnotes.vqvae.pixelcnn import MaskedPixelCNN, PixelCNN, dependence, down_shift, right_shift


def prior(k: int = 6, *, layers: int = 4, seed: int = 0, **kw) -> PixelCNN:
    torch.manual_seed(seed)
    return PixelCNN(k, channels=8, layers=layers, **kw).double()


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_codes=0), "num_codes"),
    (dict(num_codes=4, channels=0), "channels"),
    (dict(num_codes=4, layers=0), "layers"),
    (dict(num_codes=4, kernel=4), "kernel"),
])
def test_constructor_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PixelCNN(**kwargs)


def test_bad_indices_and_sampling_options_are_rejected():
    model = prior(k=6)
    with pytest.raises(ValueError, match="indices"):
        model(torch.full((1, 3, 3), 6))
    with pytest.raises(ValueError, match="indices"):
        model(torch.full((1, 3, 3), -1))
    with pytest.raises(ValueError, match="indices"):
        model(torch.zeros(1, 3, 3))  # float
    with pytest.raises(ValueError, match="indices"):
        model(torch.zeros(3, 3, dtype=torch.long))  # no batch axis
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, (3, 3), temperature=0.0)
    with pytest.raises(ValueError, match="n must"):
        model.sample(0, (3, 3))


def test_shifts():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    assert torch.equal(down_shift(x)[0, 0], torch.tensor([[0.0, 0, 0], [0, 1, 2], [3, 4, 5]]))
    assert torch.equal(right_shift(x)[0, 0], torch.tensor([[0.0, 0, 1], [0, 3, 4], [0, 6, 7]]))


@torch.no_grad()
def _sees(model: PixelCNN, m: int, k: int) -> torch.Tensor:
    """sees[t, s]: the logits at raster position t change when the code at position s changes."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randint(k, (1, m, m), generator=gen)
    logits = model(base)[0]  # (K, m, m)
    sees = torch.zeros(m * m, m * m, dtype=torch.bool)
    for s in range(m * m):
        changed = base.clone()
        changed.view(-1)[s] = (changed.view(-1)[s] + 1) % k
        delta = (model(changed)[0] - logits).abs().amax(0).view(-1)  # (m·m,)
        sees[:, s] = delta > 0  # float64: a position the code cannot reach gives bit-identical logits
    return sees


def test_logits_depend_on_every_earlier_code_and_on_no_later_one():
    """Raster order: position t sees exactly the positions s < t (causal, and no blind spot)."""
    m, k = 4, 6
    sees = _sees(prior(k=k, layers=4), m, k)
    assert torch.equal(sees, torch.ones(m * m, m * m, dtype=torch.bool).tril(-1))


@pytest.mark.parametrize("m", [4, 7])
def test_an_m_by_m_map_needs_m_minus_1_layers_to_see_every_earlier_code(m):
    """Each 3×3 layer reaches one more row up and column sideways; a shallower stack stays causal but short."""
    k = 5
    earlier = torch.ones(m * m, m * m, dtype=torch.bool).tril(-1)
    deep, shallow = _sees(prior(k=k, layers=m - 1), m, k), _sees(prior(k=k, layers=m - 2), m, k)
    assert torch.equal(deep, earlier)
    assert not (shallow & ~earlier).any() and (earlier & ~shallow).any()


def test_nll_in_bits_and_uniform_prior():
    k = 8
    model = prior(k=k)
    indices = torch.randint(k, (3, 4, 4))
    logits = model(indices)
    expected = -torch.log_softmax(logits, 1).gather(1, indices[:, None]).mean() / math.log(2)
    torch.testing.assert_close(model.nll(indices), expected)
    torch.nn.init.zeros_(model.head[-1].weight)
    torch.nn.init.zeros_(model.head[-1].bias)
    assert math.isclose(model.nll(indices).item(), math.log2(k), rel_tol=1e-12)  # uniform: log2 K bits


def test_sampling_is_reproducible_and_reports_its_log_probability():
    k = 5
    model = prior(k=k)
    a = model.sample(4, (3, 4), generator=torch.Generator().manual_seed(1))
    b = model.sample(4, (3, 4), generator=torch.Generator().manual_seed(1))
    assert a.indices.shape == (4, 3, 4) and a.indices.dtype == torch.long
    assert torch.equal(a.indices, b.indices)
    assert int(a.indices.min()) >= 0 and int(a.indices.max()) < k
    log_p = torch.log_softmax(model(a.indices), 1).gather(1, a.indices[:, None]).sum((1, 2, 3))
    torch.testing.assert_close(a.log_prob, log_p.float(), rtol=1e-5, atol=1e-5)


def test_sampling_takes_one_network_pass_per_code():
    """Ancestral sampling of an m × n map costs m·n network passes (Su's CelebA: 1,024, not 49,152)."""
    model = prior(k=4, layers=2)
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    model.sample(3, (3, 5), generator=torch.Generator().manual_seed(0))
    assert len(calls) == 3 * 5 and all(shape == (3, 4, 3, 5) for shape in calls)


def test_trained_prior_beats_uniform_and_samples_repeated_rows():
    """Maps whose rows repeat one code: a trained prior needs far fewer than log2 K bits per code."""
    k, m = 8, 4
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = PixelCNN(k, channels=16, layers=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        maps = torch.randint(k, (32, m, 1), generator=gen).expand(32, m, m)
        opt.zero_grad()
        model.nll(maps).backward()
        opt.step()
    held_out = torch.randint(k, (64, m, 1), generator=gen).expand(64, m, m)
    with torch.no_grad():
        bits = float(model.nll(held_out))
    assert bits < 0.5 * math.log2(k)  # the true entropy is log2(8) / 4 = 0.75 bits per code
    samples = model.sample(16, (m, m), generator=gen).indices
    constant_rows = (samples == samples[:, :, :1]).all(2).float().mean()
    uniform = torch.randint(k, (16, m, m), generator=gen)
    assert float(constant_rows) > 0.8 > float((uniform == uniform[:, :, :1]).all(2).float().mean())


def test_dependence_matches_the_one_at_a_time_check_and_rejects_bad_maps():
    m, k = 4, 6
    model = prior(k=k, layers=3).eval()
    codes = torch.randint(k, (1, m, m), generator=torch.Generator().manual_seed(0))
    assert torch.equal(dependence(model, codes), _sees(model, m, k))
    with pytest.raises(ValueError, match="codes"):
        dependence(model, codes[0])


def test_masked_pixelcnn_is_causal_but_has_a_blind_spot_up_and_to_the_right():
    """The original single masked stack never sees codes above and to the right, however deep."""
    m, k = 7, 5
    torch.manual_seed(0)
    masked = MaskedPixelCNN(k, channels=8, layers=12).double().eval()
    codes = torch.randint(k, (1, m, m), generator=torch.Generator().manual_seed(1))
    sees = dependence(masked, codes)
    earlier = torch.ones(m * m, m * m, dtype=torch.bool).tril(-1)
    assert not (sees & ~earlier).any()  # causal
    t = 3 * m + 3  # centre: row 3, column 3
    row = sees[t].view(m, m)
    assert not row[2, 5:].any() and not row[1, 6]  # the blind spot, up and to the right
    assert row[2, :5].all() and row[0].all()  # everything else earlier is seen
    gated = dependence(prior(k=k, layers=m - 1).eval(), codes)
    assert torch.equal(gated, earlier)
    with pytest.raises(ValueError, match="mask"):
        from dlnotes.vqvae.pixelcnn import MaskedConv2d
        MaskedConv2d(2, 2, 3, mask="C")


def test_completion_keeps_the_given_codes_and_samples_the_rest():
    k = 5
    model = prior(k=k).eval()
    given = torch.randint(k, (4, 3, 4), generator=torch.Generator().manual_seed(2))
    start = 6
    a = model.sample(4, (3, 4), given=given, start=start, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.indices.view(4, -1)[:, :start], given.view(4, -1)[:, :start])
    log_p = torch.log_softmax(model(a.indices), 1).gather(1, a.indices[:, None]).view(4, -1)[:, start:].sum(1)
    torch.testing.assert_close(a.log_prob, log_p.float(), rtol=1e-5, atol=1e-5)
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(1))
    model.sample(4, (3, 4), given=given, start=start, generator=torch.Generator().manual_seed(3))
    assert len(calls) == 12 - start  # one pass per sampled code only
    with pytest.raises(ValueError, match="given"):
        model.sample(4, (3, 4), start=2)
    with pytest.raises(ValueError, match="start"):
        model.sample(4, (3, 4), given=given, start=13)
    with pytest.raises(ValueError, match="given must have shape"):
        model.sample(2, (3, 4), given=given, start=2)
