"""NT2, NT8 and NT9 checked inside dlnotes.nvae.NVAE (the formula-level versions are in test_nvae.py)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dlnotes import nvae

TINY = nvae.NVAEConfig(channels=4, preprocess=1, post_cells=0, groups=(1, 2), latent_channels=2, steps=10,
                       batch_size=8)


def _images(n: int = 8) -> torch.Tensor:
    return torch.bernoulli(torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("residual", [True, False])
def test_zero_posterior_head_switches_groups_off_only_when_residual(residual):
    """NT2 in the model: Δμ = 0, log Δσ = 0 (the post_head's last conv zeroed) gives q = p when residual."""
    torch.manual_seed(0)
    model = nvae.NVAE(replace(TINY, residual=residual)).eval()
    with torch.no_grad():
        for head in model.post_head:
            head[-1].weight.zero_()
            head[-1].bias.zero_()
    out = model(_images(), generator=torch.Generator().manual_seed(0))
    if residual:
        assert out.kl.abs().max().item() < 1e-5
        assert torch.allclose(out.log_q, out.log_p, atol=1e-3)
    else:  # q = N(0, 1.01²) for every group: equal to the top prior only, not to the learned lower priors
        assert out.kl[:, 0].abs().max().item() < 1e-5
        assert out.kl[:, 1:].min().item() > 1e-3
        assert (out.log_q - out.log_p).abs().min().item() > 1e-3


@pytest.mark.parametrize("kept", [1, 2])
def test_temperature_scales_the_first_free_group(kept):
    """NT9 below the top: with z_<l fixed, group l is μ_p + t σ_p ε, so z(1) − z(0.6) = z(0.6) − z(0.2) ≠ 0."""
    torch.manual_seed(0)
    model = nvae.NVAE(TINY).eval()
    fixed = model.generate(4, generator=torch.Generator().manual_seed(5)).zs[:kept]
    z = {t: model.generate(4, temperature=t, fixed=fixed, generator=torch.Generator().manual_seed(7)).zs[kept]
         for t in (0.2, 0.6, 1.0)}
    upper, lower = z[1.0] - z[0.6], z[0.6] - z[0.2]
    assert upper.abs().mean().item() > 0.05  # the step itself is not zero
    assert torch.allclose(upper, lower, atol=1e-5)
    for t in (0.2, 0.6, 1.0):  # the kept groups are used as given
        assert all(torch.equal(a, b) for a, b in zip(fixed, model.generate(4, temperature=t, fixed=fixed).zs))


def test_readjust_bn_resets_statistics_left_by_training():
    """NT8: after train-mode forwards on data, readjust_bn's running means are the sampling batches' own."""
    torch.manual_seed(0)
    model = nvae.NVAE(TINY).train()
    with torch.no_grad():
        for _ in range(2):  # data statistics in the running averages, as after training
            model(_images(16), generator=torch.Generator().manual_seed(2))
    model.eval()
    before = model.generate(4, generator=torch.Generator().manual_seed(9)).probs
    bn = model.post[0].branch[0]  # a decoder BN (TINY has no post cells: the Up's BN)
    seen = []
    hook = bn.register_forward_hook(lambda m, i, o: seen.append(i[0].mean((0, 2, 3)).detach()))
    nvae.readjust_bn(model, batches=5, batch_size=16, temperature=0.7, generator=torch.Generator().manual_seed(0))
    hook.remove()
    assert len(seen) == 5 and not model.training
    assert torch.allclose(bn.running_mean, torch.stack(seen).mean(0), atol=1e-5)  # fails without the reset
    after = model.generate(4, generator=torch.Generator().manual_seed(9)).probs
    assert (after - before).abs().max().item() > 1e-3  # the samples change
