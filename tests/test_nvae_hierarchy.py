"""dlnotes.nvae.hierarchy: the measure of what each group encodes, on a stub whose answer is known."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from dlnotes import nvae


class Stub:
    """Two 'groups' whose posterior sample is the image itself; a sample averages the kept groups
    (the source image) and, for every group not kept, a fresh uniform-noise image."""

    groups = 2

    def __call__(self, x, generator=None):
        return SimpleNamespace(zs=[x.clone() for _ in range(self.groups)])

    def generate(self, n, *, fixed, temperature=1.0, generator=None):
        shape = fixed[0].shape if fixed else (n, *self.x_shape)
        parts = list(fixed) + [torch.rand(shape, generator=generator) for _ in range(self.groups - len(fixed))]
        return SimpleNamespace(probs=torch.stack(parts).mean(0))


def test_profile_matches_the_known_answer_of_the_stub():
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((16, 1, 28, 28), 0.5), generator=g)  # pixel variance 1/4
    stub = Stub()
    stub.x_shape = x.shape[1:]
    prof = nvae.hierarchy_profile(stub, x, draws=64, generator=g)
    assert prof.keep == [0, 1, 2]
    # k = 2: the sample is the source image; k = 1: (x + U)/2, correlation sd(x) / sqrt(var x + 1/12);
    # k = 0: independent of x
    expected = [0.0, 0.5 / math.sqrt(0.25 + 1 / 12), 1.0]
    assert torch.allclose(prof.similarity, torch.tensor(expected), atol=0.02)
    assert prof.baseline.abs().max() < 0.02  # another image's pixels are independent of every sample
    # std across draws of the mean of m uniform images, m = groups not kept
    expected_std = [math.sqrt(1 / 12 / 2), math.sqrt(1 / 12) / 2, 0.0]
    assert torch.allclose(prof.diversity, torch.tensor(expected_std), atol=0.01)


def test_profile_on_an_nvae_keeping_every_group_is_deterministic():
    cfg = nvae.NVAEConfig(channels=4, preprocess=1, post_cells=0, groups=(1, 2), latent_channels=2)
    torch.manual_seed(0)
    model = nvae.NVAE(cfg).eval()
    x = torch.bernoulli(torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    prof = nvae.hierarchy_profile(model, x, draws=3, generator=torch.Generator().manual_seed(0))
    assert prof.keep == [0, 1, 2, 3] and prof.similarity.shape == (4,)
    assert prof.diversity[-1] < 1e-6 < prof.diversity[0]  # all kept: reconstructions, no spread


def test_pixel_correlation_and_bad_input():
    a = torch.rand(3, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(nvae.pixel_correlation(a, 2 * a + 1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(nvae.pixel_correlation(a, -a), -torch.ones(3, dtype=torch.float64))
    assert nvae.pixel_correlation(a, torch.ones_like(a)).abs().max() == 0  # constant image
    with pytest.raises(ValueError, match="a and b"):
        nvae.pixel_correlation(a, a[:2])
    stub = Stub()
    with pytest.raises(ValueError, match="draws"):
        nvae.hierarchy_profile(stub, a, draws=1)
    with pytest.raises(ValueError, match="x must"):
        nvae.hierarchy_profile(stub, a[:1], draws=2)
