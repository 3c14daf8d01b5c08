"""The discretised Gaussian likelihood that turns a squared-error decoder into bits per dimension."""
import itertools
import math

import pytest
import torch
from scipy.stats import norm

from dlnotes import likelihood


@pytest.mark.parametrize("levels", [2, 17, 256])
@pytest.mark.parametrize("mean, scale", [(0.5, 0.1), (-0.3, 0.02), (1.7, 0.5), (0.21, 1e-4), (0.5, 30.0)])
def test_probabilities_of_all_levels_sum_to_one(levels, mean, scale):
    grid = torch.arange(levels, dtype=torch.float64) / (levels - 1)
    nll = likelihood.discretized_gaussian_nll(grid, torch.full_like(grid, mean), scale, levels)
    assert torch.isfinite(nll).all() or scale < 1e-3  # far bins of a tiny sigma may underflow to -inf log mass
    assert abs(torch.exp(-nll).sum().item() - 1) < 1e-9


def test_matches_scipy_bin_masses_including_far_tails():
    levels = 256
    x = torch.tensor([0.0, 10 / 255, 128 / 255, 250 / 255, 1.0], dtype=torch.float64)
    mean = torch.tensor([0.9, 0.02, 0.5, 0.01, 0.0], dtype=torch.float64)
    scale = 0.02  # x = 250/255 and 1 sit about 48 sigma above their means: naive differences give 0
    half = 0.5 / 255
    expected = []
    for xi, mi in zip(x.tolist(), mean.tolist()):
        lo = -math.inf if xi == 0 else (xi - half - mi) / scale
        hi = math.inf if xi == 1 else (xi + half - mi) / scale
        if lo >= 0:
            mass = norm.logsf(lo) + math.log(-math.expm1(norm.logsf(hi) - norm.logsf(lo)))
        else:
            mass = norm.logcdf(hi) + math.log(-math.expm1(norm.logcdf(lo) - norm.logcdf(hi)))
        expected.append(-mass)
    got = likelihood.discretized_gaussian_nll(x, mean, scale, levels)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)
    assert got[3] > 1000  # far in the tail, yet finite


def test_broad_gaussian_puts_its_mass_in_the_two_end_bins():
    x = torch.tensor([0.0, 0.5, 1.0])
    nll = likelihood.discretized_gaussian_nll(x, torch.full_like(x, 0.5), 1e4, levels=3)
    # the end bins reach to -inf and +inf: a very broad Gaussian gives each about half, the middle bin almost nothing
    assert abs(nll[1].item() - (-math.log(norm.cdf(0.5 / 2 / 1e4) - norm.cdf(-0.5 / 2 / 1e4)))) < 1e-6
    assert abs(nll[0].item() - math.log(2)) < 1e-3 and abs(nll[2].item() - math.log(2)) < 1e-3


def test_fit_scale_picks_the_best_candidate():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (4000,)).double() / 255
    mean = x + 0.03 * torch.randn_like(x)
    candidates = [0.005, 0.01, 0.02, 0.03, 0.05, 0.1]
    best = likelihood.fit_scale(x, mean, 256, candidates)
    costs = [likelihood.discretized_gaussian_nll(x, mean, s).mean().item() for s in candidates]
    assert best == candidates[costs.index(min(costs))] == 0.03
    assert abs(likelihood.fit_scale(x, mean) - 0.03) < 0.003  # default log-spaced grid


def test_bound_is_a_sub_probability_over_every_image():
    """sum over all images x of 2^(-bits(x)) <= 1: the bound never claims more probability than exists."""
    levels, pixels = 3, 3
    codes = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.9, 1.0, 1.1]], dtype=torch.float64)  # decoder means
    prior = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    scale = 0.3
    images = torch.tensor(list(itertools.product(range(levels), repeat=pixels)), dtype=torch.float64) / (levels - 1)
    nearest = torch.cdist(images, codes).argmin(1)  # a deterministic "encoder"
    recon = likelihood.discretized_gaussian_nll(images, codes[nearest], scale, levels).sum(1)  # nats per image
    code = -torch.log2(prior[nearest])
    bits = recon / math.log(2) + code
    total = torch.exp2(-bits).sum().item()
    assert 0.5 < total < 1  # a bound, not an equality: the other codes' share of each image is dropped
    assert abs(likelihood.bits_per_dim(recon, code, pixels) - bits.mean().item() / pixels) < 1e-12
    # marginalising over every code instead of taking the encoder's gives exactly 1
    joint = sum(torch.exp(-likelihood.discretized_gaussian_nll(images, codes[k].expand_as(images), scale,
                                                               levels).sum(1)) * prior[k] for k in range(3))
    assert abs(joint.sum().item() - 1) < 1e-12


@pytest.mark.parametrize("call, name", [
    (lambda: likelihood.discretized_gaussian_nll(torch.tensor([0.5]), torch.tensor([0.5]), 0.1, levels=1), "levels"),
    (lambda: likelihood.discretized_gaussian_nll(torch.tensor([1.2]), torch.tensor([0.5]), 0.1), "x must lie in"),
    (lambda: likelihood.discretized_gaussian_nll(torch.tensor([0.3]), torch.tensor([0.5]), 0.1, levels=3), "grid"),
    (lambda: likelihood.discretized_gaussian_nll(torch.tensor([1]), torch.tensor([0.5]), 0.1), "floating-point"),
    (lambda: likelihood.discretized_gaussian_nll(torch.tensor([0.5]), torch.tensor([0.5]), 0.0, levels=3), "scale"),
    (lambda: likelihood.fit_scale(torch.tensor([0.5]), torch.tensor([0.5]), 3, []), "candidates"),
    (lambda: likelihood.bits_per_dim(1.0, 1.0, 0), "dims"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
