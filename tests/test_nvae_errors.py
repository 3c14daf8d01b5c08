"""Bad input to dlnotes.nvae raises ValueError naming the parameter (one case per check)."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from dlnotes import nvae

CFG = nvae.NVAEConfig(channels=2, preprocess=1, post_cells=0, groups=(1, 1), latent_channels=2, expand=2,
                      kernel=3, steps=4, batch_size=4)


def _model() -> nvae.NVAE:
    torch.manual_seed(0)
    return nvae.NVAE(CFG)


def _regularizer() -> nvae.SpectralRegularizer:
    return nvae.SpectralRegularizer(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1)))


CASES = {
    # schedule.py
    "kl_warmup total_steps=0": (lambda: nvae.kl_warmup(0, 0), "total_steps"),
    "kl_warmup portion=0": (lambda: nvae.kl_warmup(0, 10, portion=0), "portion"),
    "kl_warmup portion=NaN": (lambda: nvae.kl_warmup(0, 10, portion=math.nan), "portion"),
    "kl_warmup const_portion=-0.1": (lambda: nvae.kl_warmup(0, 10, const_portion=-0.1), "const_portion"),
    "kl_warmup min_coeff=0": (lambda: nvae.kl_warmup(0, 10, min_coeff=0), "min_coeff"),
    "group_alphas (0,)": (lambda: nvae.group_alphas((0,)), "groups"),
    "group_alphas ()": (lambda: nvae.group_alphas(()), "groups"),
    "group_alphas (1.5,)": (lambda: nvae.group_alphas((1.5,)), "groups"),
    "balance kl shape": (lambda: nvae.balance_coefficients(torch.ones(2, 3), torch.ones(2), 0.5), "kl"),
    "balance kl 3-d": (lambda: nvae.balance_coefficients(torch.ones(2, 2, 2), torch.ones(2), 0.5), "kl"),
    "balance alphas <= 0": (lambda: nvae.balance_coefficients(torch.ones(2), torch.tensor([1.0, 0.0]), 0.5),
                            "alphas"),
    "balance beta NaN": (lambda: nvae.balance_coefficients(torch.ones(2), torch.ones(2), math.nan), "beta"),
    "groups_per_scale num_scales=0": (lambda: nvae.groups_per_scale(0, 4), "num_scales"),
    "groups_per_scale finest=0": (lambda: nvae.groups_per_scale(2, 0), "finest_groups"),
    "groups_per_scale minimum=0": (lambda: nvae.groups_per_scale(2, 4, minimum=0), "minimum"),
    "groups_per_scale num_scales=2.0": (lambda: nvae.groups_per_scale(2.0, 4), "num_scales"),
    # spectral.py
    "power_iteration iters=-1": (lambda: nvae.power_iteration(torch.ones(2, 3), torch.ones(2), torch.ones(3), -1),
                                 "iters"),
    "power_iteration u shape": (lambda: nvae.power_iteration(torch.ones(2, 3), torch.ones(3), torch.ones(3), 1),
                                "u and v"),
    "SpectralRegularizer nn.Linear": (lambda: nvae.SpectralRegularizer(nn.Linear(2, 2)), "model"),
    "SpectralRegularizer iters=-1": (lambda: nvae.SpectralRegularizer(nn.Conv2d(1, 1, 1), iters=-1), "iters"),
    "SpectralRegularizer init_iters=-1": (lambda: nvae.SpectralRegularizer(nn.Conv2d(1, 1, 1), init_iters=-1),
                                          "init_iters"),
    "SR load_state_dict length": (lambda: _regularizer().load_state_dict(
        {"u": [torch.ones(2)], "v": [torch.ones(9)], "calls": 1}), "state"),
    "SR load_state_dict shapes": (lambda: _regularizer().load_state_dict(
        {"u": [torch.ones(2), torch.ones(3)], "v": [torch.ones(9), torch.ones(2)], "calls": 1}), "state"),
    # kl.py
    "residual_normal_kl prior_sigma=0": (lambda: nvae.residual_normal_kl(0.0, 1.0, 0.0), "prior_sigma"),
    "residual_normal_kl delta_sigma=-1": (lambda: nvae.residual_normal_kl(0.0, -1.0, 1.0), "delta_sigma"),
    "soft_clamp bound=0": (lambda: nvae.soft_clamp(torch.ones(2), bound=0), "bound"),
    "soft_clamp bound=NaN": (lambda: nvae.soft_clamp(torch.ones(2), bound=math.nan), "bound"),
    "soft_clamp bound=inf": (lambda: nvae.soft_clamp(torch.ones(2), bound=math.inf), "bound"),
    # cells.py, weight_norm.py
    "DecoderCell kernel=4": (lambda: nvae.DecoderCell(4, kernel=4), "kernel"),
    "DecoderCell expand=0": (lambda: nvae.DecoderCell(4, expand=0), "expand"),
    "EncoderCell channels=0": (lambda: nvae.EncoderCell(0), "channels"),
    "SqueezeExcite reduction=0": (lambda: nvae.SqueezeExcite(4, reduction=0), "reduction"),
    "Down c_out=0": (lambda: nvae.Down(4, 0), "c_out"),
    "Up c_in=0": (lambda: nvae.Up(0, 4), "c_in"),
    "apply_weight_norm not a module": (lambda: nvae.apply_weight_norm([nn.Conv2d(1, 1, 1)]), "module"),
    # model.py
    "NVAEConfig kernel=4": (lambda: replace(CFG, kernel=4), "kernel"),
    "NVAEConfig kl_warmup=0": (lambda: replace(CFG, kl_warmup=0), "kl_warmup"),
    "NVAEConfig channels=True": (lambda: replace(CFG, channels=True), "channels"),
    "readjust_bn batch_size=1": (lambda: nvae.readjust_bn(_model(), batches=1, batch_size=1), "batch_size"),
    "generate n=0": (lambda: _model().generate(0), "n"),
    "generate temperature=-1": (lambda: _model().generate(2, temperature=-1.0), "temperature"),
    "generate temperature=NaN": (lambda: _model().generate(2, temperature=math.nan), "temperature"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_value_error_naming_the_parameter(case):
    call, name = CASES[case]
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_good_input_still_passes():
    """The new checks accept what the chapter and the configs use."""
    assert nvae.kl_warmup(1, 10) == pytest.approx((1 - 1e-3) / 3)
    assert nvae.group_alphas((5, 10)).shape == (15,)
    assert nvae.groups_per_scale(5, 16, minimum=4) == (4, 4, 4, 8, 16)
    assert nvae.soft_clamp(torch.zeros(1)).item() == 0.0
    reg = _regularizer()
    reg.load_state_dict(reg.state_dict())
    assert nvae.DecoderCell(4, expand=2, kernel=3)(torch.zeros(2, 4, 4, 4)).shape == (2, 4, 4, 4)
