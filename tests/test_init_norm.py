"""dlnotes.init_norm: references (PyTorch modules, closed forms) and the chapter's claims at small sizes."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlnotes import init_norm as inn


# --- sampling ---------------------------------------------------------------------------------------------
def test_truncation_factor_closed_form():
    assert inn.truncation_factor(2.0) == pytest.approx(0.7737413, abs=1e-7)
    assert 1 / math.sqrt(inn.truncation_factor(2.0)) == pytest.approx(1.1368472, abs=1e-6)
    assert inn.truncation_factor(10.0) == pytest.approx(1.0, abs=1e-12)


def test_uniform_and_truncated_moments():
    gen = torch.Generator().manual_seed(0)
    u = inn.uniform_matched((10**6,), mean=0.5, std=2.0, generator=gen)
    assert u.var().item() / 4.0 == pytest.approx(1.0, rel=0.01) and u.mean().item() == pytest.approx(0.5, abs=0.01)
    t = inn.trunc_normal_tf((10**6,), std=1.0, generator=gen)
    assert t.var().item() == pytest.approx(0.7737, rel=0.005) and t.abs().max() < 2.0
    tc = inn.trunc_normal_tf((10**6,), std=3.0, compensate=True, generator=gen)
    assert tc.var().item() / 9.0 == pytest.approx(1.0, rel=0.01)


def test_torch_trunc_normal_bounds_are_absolute():
    gen = torch.Generator().manual_seed(0)
    loose = inn.trunc_normal_torch((10**6,), std=0.02, generator=gen)
    assert loose.std().item() == pytest.approx(0.02, rel=0.005)  # not truncated at all
    bert = inn.trunc_normal_torch((10**6,), std=0.02, a=-0.04, b=0.04, generator=gen)
    assert bert.std().item() == pytest.approx(0.02 * math.sqrt(inn.truncation_factor(2)), rel=0.005)
    assert bert.std().item() / (1 / math.sqrt(768)) == pytest.approx(0.49, abs=0.01)  # BERT's 0.02


def test_rules_and_bad_input():
    assert inn.rule_std("xavier", 100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert inn.rule_std("he", 50, 10) == pytest.approx(0.2)
    w = inn.init_linear_(torch.empty(256, 256), "orthogonal")
    assert torch.allclose(w @ w.T, torch.eye(256), atol=1e-5)
    with pytest.raises(ValueError, match="gain"):
        inn.rule_std("lecun", 10, 10, gain=-1.0)
    with pytest.raises(ValueError, match="rule"):
        inn.rule_std("kaiming", 10, 10)


def test_second_moment_rule_needs_no_zero_mean():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 512, generator=gen).abs()
    w = inn.init_linear_(torch.empty(8192, 512), "lecun", generator=gen)  # many outputs: the mean part of
    y = x @ w.T                                                             # y_j varies from unit to unit
    assert x.mean().item() > 0.7
    assert y.pow(2).mean().item() / x.pow(2).mean().item() == pytest.approx(1.0, abs=0.04)


# --- activations ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value", [("sigmoid", 0.2933790), ("tanh", 0.3942945), ("relu", 0.5),
                                         ("gelu", 0.4252215), ("silu", 0.3557755), ("linear", 1.0)])
def test_activation_second_moments(name, value):
    assert inn.second_moment(name) == pytest.approx(value, abs=1e-6)


def test_selu_constants_match_torch():
    lam, alpha = inn.selu_constants()
    assert lam == pytest.approx(1.0507010, abs=1e-6) and alpha == pytest.approx(1.6732632, abs=1e-6)
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    ours = torch.where(x > 0, lam * x, lam * alpha * torch.expm1(x))
    assert torch.allclose(ours, torch.selu(x), atol=1e-6)


def test_rescaled_sigmoid_keeps_depth_20_mlp_near_one():
    # width 512, batch 256, seeds 0-5: centred max |m - 1| 0.018-0.026; uncentred median 0.95-1.02, max
    # 1.07-1.14; plain sigmoid at l = 20 0.26-0.29 (seed 0 runs here)
    kw = dict(depth=20, width=512, batch=256)
    centred = inn.mlp_moments("centered-sigmoid", "lecun", **kw)["forward"]
    assert (centred[1:] - 1).abs().max() < 0.05
    # uncentred: the shared mean 1/2 makes one draw of W fluctuate from layer to layer, without drift
    plain = inn.mlp_moments("scaled-sigmoid", "lecun", **kw)["forward"]
    assert abs(plain[1:].median().item() - 1) < 0.15 and plain[1:].max() < 1.5
    bare = inn.mlp_moments("sigmoid", "lecun", **kw)["forward"]
    assert bare[-1] < 0.4  # no rescaling: stuck at E[sigmoid(z)^2]-like values below 1


def test_he_keeps_relu_lecun_halves_and_a_gain_of_1_1_grows():
    # width 512, batch 256, depth 20, seeds 0-5: He h_1/h_0 0.956-1.025 (a linear first layer drawn by He's
    # rule would give 2), min/h_0 0.52-0.82, max/h_0 1.00-1.40; LeCun log2 slope -1.037 to -1.005;
    # He x 1.1 per-layer factor 1.180-1.206 (1.21 predicted)
    kw = dict(depth=20, width=512, batch=256)
    he = inn.mlp_moments("relu", "he", **kw)["forward"]
    assert abs(he[1] / he[0] - 1) < 0.1
    assert he.min() > 0.5 * he[0] and he.max() < 2 * he[0]
    lecun = inn.mlp_moments("relu", "lecun", **kw)["forward"]
    slope = math.log2(lecun[-1] / lecun[0]) / 20  # every layer, the first included, halves
    assert slope == pytest.approx(-1.0, abs=0.1)
    hot = inn.mlp_moments("relu", "he", gain=1.1, **kw)["forward"]
    assert (hot[-1] / hot[0]).item() ** (1 / 20) == pytest.approx(1.21, abs=0.05)


def test_selu_network_keeps_mean_zero_and_second_moment_one():
    # width 512, batch 256, depth 50, seeds 0-5: mean(h_50^2) 0.972-1.038, worst layer |m - 1| <= 0.043,
    # largest |mean selu(h_l)| 0.0087-0.0135
    r = inn.mlp_moments("selu", "lecun", depth=50, width=512, batch=256)
    assert abs(r["forward"][-1] - 1) < 0.1 and (r["forward"] - 1).abs().max() < 0.1
    assert r["activation_mean"].abs().max() < 0.03
    relu = inn.mlp_moments("relu", "he", depth=5, width=64, batch=64)["activation_mean"]
    assert relu.min() > 0.2  # the check can fail: ReLU's outputs have mean ~0.4


def test_gelu_gain_is_an_unstable_balance():
    g = inn.gain("gelu")
    assert inn.layer_factor("gelu", 1.0) == pytest.approx(1.0, abs=1e-9)
    assert inn.layer_factor("gelu", 1e3) == pytest.approx(g * g * 0.5, rel=1e-3)  # GELU ~ ReLU for large inputs
    assert inn.layer_factor("gelu", 1e-3) == pytest.approx(g * g * 0.25, rel=1e-3)  # gelu(x) ~ x/2 near 0
    for s in (0.1, 3.0, 30.0):
        assert inn.layer_factor("relu", s) == pytest.approx(1.0, abs=1e-9)  # positively homogeneous
    # width 512, batch 256, depth 50, seeds 0-5: mean(h_50^2) 45-376 (seed 0: 75)
    gelu = inn.mlp_moments("gelu", "lecun", gain=g, depth=50, width=512, batch=256)["forward"]
    assert gelu[-1] > 10 * gelu[0]
    with pytest.raises(ValueError, match="scale"):
        inn.layer_factor("gelu", 0.0)


# --- attention and norms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("masked", [False, True])
def test_attention_equals_sdpa(masked):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 16, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = None
    if masked:
        mask = torch.rand(7, 7, generator=gen) > 0.4
        mask.fill_diagonal_(True)
    for scale in (None, 1.0, 0.05):
        ours = inn.attention(q, k, v, scale=scale, mask=mask)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        assert (ours - ref).abs().max().item() < 1e-12


def test_unscaled_softmax_saturates_with_d_and_scaled_does_not():
    gen = torch.Generator().manual_seed(0)
    unscaled = [inn.attention_row_stats(d, 128, "unscaled", generator=gen)["max_prob"].median().item()
                for d in (16, 256)]
    scaled = [inn.attention_row_stats(d, 128, "sqrt", generator=gen)["max_prob"].median().item() for d in (16, 256)]
    assert unscaled[1] > 0.9 > 0.7 > unscaled[0]
    assert abs(scaled[0] - scaled[1]) < 0.02 and max(scaled) < 0.1
    with pytest.raises(ValueError, match="mode"):
        inn.logit_scale("half", 4, 4)


def test_softmax_jacobian_and_saturated_fraction_against_d():
    p = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=torch.float64)
    for row, norm in zip(p, inn.softmax_jacobian_norm(p)):
        assert norm.item() == pytest.approx(torch.linalg.matrix_norm(torch.diag(row) - torch.outer(row, row)).item())
    assert inn.softmax_jacobian_norm(p)[1].item() == 0  # one-hot: no gradient at all
    # the chapter's numbers (128 keys, 1000 rows): rows with max-prob > 0.99 about 1/6 at d = 64
    # (0.05-0.35 asserted there), most of them at d = 1024; the median Jacobian collapses with d
    gen = torch.Generator().manual_seed(0)
    stats = {d: inn.attention_row_stats(d, 128, "unscaled", rows=1000, generator=gen) for d in (16, 64, 1024)}
    frac = {d: (s["max_prob"] > 0.99).float().mean().item() for d, s in stats.items()}
    assert 0.05 < frac[64] < 0.35 and frac[1024] > 0.5 and frac[16] < frac[64]
    assert stats[1024]["jacobian"].median() < 1e-2 < 0.1 < stats[16]["jacobian"].median()


def test_rmsnorm_matches_torch_and_layernorm_on_centred_rows():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 9, 32, generator=gen)
    ours, ref = inn.RMSNorm(32, eps=1e-6), nn.RMSNorm(32, eps=1e-6)
    with torch.no_grad():
        g = torch.rand(32, generator=gen) + 0.5
        ours.weight.copy_(g)
        ref.weight.copy_(g)
    assert (ours(x) - ref(x)).abs().max().item() < 1e-6
    xc = x - x.mean(-1, keepdim=True)
    assert torch.allclose(inn.rms_norm(xc, eps=1e-5), F.layer_norm(xc, (32,), eps=1e-5), atol=1e-5)
    shifted = x + 3.0
    assert torch.allclose(F.layer_norm(shifted, (32,)), F.layer_norm(x, (32,)), atol=1e-4)
    assert not torch.allclose(inn.rms_norm(shifted), inn.rms_norm(x), atol=1e-2)


# --- blocks -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_from_torch_equivalence(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 96, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first)
    block = inn.TransformerBlock.from_torch(layer)
    assert block.norm == ("pre" if norm_first else "post")
    x = torch.randn(3, 11, 64)
    for mode in (layer.train, layer.eval):
        mode()
        block.train(layer.training)
        assert (block(x) - layer(x)).abs().max().item() <= 1e-6
    allowed = torch.rand(11, 11) > 0.3
    allowed.fill_diagonal_(True)
    assert (block(x, mask=allowed) - layer(x, src_mask=~allowed)).abs().max().item() <= 1e-6
    # gradients agree too
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    block(xa).square().sum().backward()
    layer(xb).square().sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
    assert torch.allclose(block.ff1.weight.grad, layer.linear1.weight.grad, atol=1e-4)


def test_from_torch_rejects_unsupported_layers():
    with pytest.raises(ValueError, match="batch_first"):
        inn.TransformerBlock.from_torch(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu"))
    with pytest.raises(ValueError, match="GELU"):
        inn.TransformerBlock.from_torch(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True))
    with pytest.raises(ValueError, match="dropout"):
        inn.TransformerBlock.from_torch(nn.TransformerEncoderLayer(16, 2, 32, activation="gelu", batch_first=True))


def test_block_bad_input():
    with pytest.raises(ValueError, match="n_heads"):
        inn.TransformerBlock(30, 4)
    with pytest.raises(ValueError, match="norm"):
        inn.TransformerBlock(32, 4, norm="sandwich")
    with pytest.raises(ValueError, match="param"):
        inn.TransformerBlock(32, 4, param="ntp")
    with pytest.raises(ValueError, match="advance_ramp"):
        inn.TransformerBlock(32, 4, norm="pre").advance_ramp(0.1)


def test_ntk_block_computes_the_standard_function_at_init():
    torch.manual_seed(0)
    std = inn.TransformerBlock(32, 4, norm="pre", param="standard")
    torch.manual_seed(0)
    ntk = inn.TransformerBlock(32, 4, norm="pre", param="ntk")
    x = torch.randn(2, 5, 32)
    assert (std(x) - ntk(x)).abs().max().item() < 1e-5
    assert ntk.ff1.weight.std().item() == pytest.approx(1.0, rel=0.05)


def test_ntk_adam_equivalence_needs_rescaled_lr_and_eps():
    m = 256
    gen = torch.Generator().manual_seed(0)
    w_ntk = torch.randn(m, 1, generator=gen, dtype=torch.float64)
    x, y = torch.randn(64, m, generator=gen, dtype=torch.float64), torch.randn(64, 1, generator=gen, dtype=torch.float64)

    def run(w0, mult, lr, eps):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr, eps=eps)
        for _ in range(3):
            opt.zero_grad()
            ((x @ w) * mult - y).pow(2).mean().backward()
            opt.step()
        return (x @ w.detach()) * mult

    ntk = run(w_ntk, m ** -0.5, 1e-2, 1e-8)
    std = run(w_ntk / m ** 0.5, 1.0, 1e-2 / m ** 0.5, 1e-8 * m ** 0.5)
    naive = run(w_ntk / m ** 0.5, 1.0, 1e-2, 1e-8)
    assert (ntk - std).abs().max().item() < 1e-10
    assert (ntk - naive).abs().max().item() > 1e-2

    def run_sgd(w0, mult, lr):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.SGD([w], lr=lr)
        for _ in range(3):
            opt.zero_grad()
            ((x @ w) * mult - y).pow(2).mean().backward()
            opt.step()
        return (x @ w.detach()) * mult

    # SGD: standard-parameterisation gradients are sqrt(m) times larger, so the rate is eta / m
    sgd_ntk = run_sgd(w_ntk, m ** -0.5, 0.1)
    assert (sgd_ntk - run_sgd(w_ntk / m ** 0.5, 1.0, 0.1 / m)).abs().max().item() < 1e-10
    assert (sgd_ntk - run_sgd(w_ntk / m ** 0.5, 1.0, 0.1 / m ** 0.5)).abs().max().item() > 1e-2


def test_first_adam_step_against_width_ntk_vs_standard():
    widths = (32, 128, 512)
    steps = inn.first_adam_step(widths, lr=1e-2, seed=0)
    ntk, std, rescaled = (steps[s] for s in ("ntk", "standard", "standard-rescaled"))
    hidden_ntk, hidden_std = ntk["relative_update"][:, 1], std["relative_update"][:, 1]
    # NTK: every weight O(1), so one step is the same fraction of the matrix at every width (≈ 1.25 lr)
    assert hidden_ntk.max() / hidden_ntk.min() < 1.1 and hidden_ntk.mean().item() == pytest.approx(0.0125, rel=0.05)
    # standard at the same rate: weights √width times smaller, relative change ∝ √width
    assert (hidden_std[-1] / hidden_std[0]).item() == pytest.approx(4.0, rel=0.1)
    # the per-layer rescaled rate and eps give the NTK model exactly
    for key in ("relative_update", "output_change"):
        assert (ntk[key] - rescaled[key]).abs().max().item() < 1e-12
    # both outputs move more as the width grows, the naive standard one faster
    growth_ntk = ntk["output_change"][-1] / ntk["output_change"][0]
    growth_std = std["output_change"][-1] / std["output_change"][0]
    assert 1.5 < growth_ntk < growth_std / 1.5
    with pytest.raises(ValueError, match="widths"):
        inn.first_adam_step((0, 32))
    with pytest.raises(ValueError, match="lr"):
        inn.first_adam_step((32,), lr=-1.0)


def test_adam_first_step_is_lr_times_sign():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(1000, generator=gen, dtype=torch.float64).requires_grad_(True)
    sign = torch.randn(1000, generator=gen, dtype=torch.float64).sign()
    g = sign * torch.logspace(-4, 2, 1000, dtype=torch.float64)
    w0 = w.detach().clone()
    opt = torch.optim.Adam([w], lr=1e-2, eps=1e-12)
    w.grad = g
    opt.step()
    assert torch.allclose(w.detach() - w0, -1e-2 * g.sign(), rtol=1e-6, atol=0)


def test_deepnorm_constants():
    a, b = inn.deepnorm_constants(12)
    assert a == pytest.approx(2.213, abs=1e-3) and b == pytest.approx(0.319, abs=1e-3)
    a, b = inn.deepnorm_constants(100, kind="decoder")
    assert a == pytest.approx(200 ** 0.25) and b == pytest.approx(800 ** -0.25)
    ed = inn.deepnorm_constants(6, kind="encoder-decoder", n_decoder_layers=6)
    assert ed["alpha_encoder"] == pytest.approx(0.81 * (6 ** 5) ** (1 / 16))
    assert ed["beta_encoder"] == pytest.approx(0.87 * (6 ** 5) ** (-1 / 16))
    assert ed["alpha_decoder"] == pytest.approx(18 ** 0.25) and ed["beta_decoder"] == pytest.approx(72 ** -0.25)
    assert inn.admin_omega(24) == pytest.approx(2.601, abs=1e-3)
    with pytest.raises(ValueError, match="kind"):
        inn.deepnorm_constants(6, kind="bidirectional")
    with pytest.raises(ValueError, match="n_layers"):
        inn.deepnorm_constants(0)


def test_deepnorm_block_init_gains():
    block = inn.TransformerBlock(64, 4, norm="deepnorm", n_layers=12)
    _, beta = inn.deepnorm_constants(12)
    xavier = math.sqrt(2 / (64 + 64))  # per d × d map of the fused qkv
    assert block.alpha == pytest.approx(inn.deepnorm_constants(12)[0])
    assert block.qkv.weight[:64].std().item() == pytest.approx(xavier, rel=0.1)
    assert block.qkv.weight[128:].std().item() == pytest.approx(beta * xavier, rel=0.1)


# --- stacks at init ---------------------------------------------------------------------------------------
def test_post_and_pre_norm_linear_toys():
    coef = inn.post_norm_toy(d=512, depth=6)
    assert all(abs(coef[l].item() - 2 ** (-l / 2)) < 0.03 for l in range(1, 7))
    pre = inn.pre_norm_toy(d=512, depth=16)
    assert torch.allclose(pre["second_moment"], torch.arange(1, 18, dtype=torch.float64), rtol=0.05)
    t = torch.arange(1, 17, dtype=torch.float64)
    assert torch.allclose(pre["one_minus_cos"], 1 - (t / (t + 1)).sqrt(), rtol=0.1)


def test_rezero_is_identity_at_init_with_gradient_only_on_gates():
    torch.manual_seed(0)
    model = inn.TransformerStack(16, 16, 32, 4, 3, norm="rezero")
    x, y = inn.sorting_batch(8)
    logits, xs = model(x, states=True)
    assert all(torch.equal(xs[0], s) for s in xs)
    F.cross_entropy(logits.reshape(-1, 16), y.reshape(-1)).backward()
    for block in model.blocks:
        assert all(p.grad is None or p.grad.abs().max() == 0 for n, p in block.named_parameters() if n != "gate")
        assert block.ff1.weight.grad is not None
        assert (block.gate.grad.abs() > 0).all()


def test_norm_placement_profiles():
    post, pre = inn.stack_profile("post", 12, batch=32), inn.stack_profile("pre", 12, batch=32)
    deep, none = inn.stack_profile("deepnorm", 12, batch=32), inn.stack_profile("none", 6, batch=32)
    assert pre["second_moment"][-1] > 4 * pre["second_moment"][0]      # grows about +1 per block
    assert post["cos0"][-1] < 0.3 < 0.9 < deep["cos0"][-1]              # Post-LN washes x0 out, DeepNorm keeps it
    assert none["second_moment"][-1] > 100 * none["second_moment"][0]   # unnormalised stack explodes
    assert post["grad_norm"][-1] > 2 * pre["grad_norm"][-1]             # Post-LN's top gradient is larger
    assert pre["grad_norm"][0] > pre["grad_norm"][-1]                   # Pre-LN: larger at the bottom
    assert deep["grad_norm"].max() / deep["grad_norm"].min() < 1.2      # DeepNorm: uniform


def test_ramp_gate_advances_and_saturates():
    model = inn.TransformerStack(16, 16, 32, 4, 2, norm="pre-ramp")
    for _ in range(7):
        model.advance_ramp(0.2)
    assert all(torch.equal(b.gate, torch.ones(2)) for b in model.blocks)


# --- μP ---------------------------------------------------------------------------------------------------
def _digits(n=128):
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    x = torch.tensor(d.data[:n], dtype=torch.float32)
    return (x - x.mean(0)) / (x.std(0) + 1e-6), torch.tensor(d.target[:n])


def _chapter_batch():
    """The coordinate check's batch as the chapter builds it: the first 128 mnist5k training digits, standardised."""
    from dlnotes import data
    try:
        d = data.load_images("train", dataset="mnist5k", verbose=False)
    except data.DatasetUnavailable as err:
        pytest.skip(f"mnist5k unavailable: {err}")
    x = d.images[:128].reshape(128, -1).float()
    return (x - x.mean(0)) / (x.std(0) + 1e-3), torch.as_tensor(d.labels[:128]).long()


def test_coord_check_sp_jumps_then_settles_and_mup_stays_flat():
    # The chapter's claim, on its data (mnist5k, batch 128, widths 64-1024, Adam 1e-2), step t = forward pass
    # after t updates. Seeds 0, 1, 2 (seed 0 runs here): SP last hidden layer, max/min over widths after one
    # update 21.4, 18.4, 27.5, after three 1.57, 1.26, 3.06; logits after one update 161, 138, 121, after
    # three 6.8, 6.0, 3.7; the width-1024 model's logits fall from 14.4, 16.1, 16.1 to 5.0, 5.2, 2.8.
    # muP, hidden layers, worst step: 1.18, 1.13, 1.20.
    x, y = _chapter_batch()
    widths = (64, 256, 1024)
    sp = inn.coord_check(x, y, widths, param="sp", steps=4)  # (widths, steps, layers)
    mup = inn.coord_check(x, y, widths, param="mup", steps=4)
    sp_spread = sp.max(0).values / sp.min(0).values  # (steps, layers)
    assert sp_spread[1, -2] > 10 and sp_spread[1, -1] > 50  # the first update: far from flat
    assert sp_spread[3, -1] < 0.2 * sp_spread[1, -1]  # then Adam pulls the wide models back
    assert sp[-1, 3, -1] < 0.6 * sp[-1, 1, -1]  # the widest model's logits shrink over steps 1-3
    mup_spread = mup.max(0).values / mup.min(0).values
    assert mup_spread[:, :-1].max() < 1.3


def test_coord_check_agrees_with_mup_package():
    # tasks.py installs mup (constraints.txt's pin) with --no-deps and removes it again when it does not
    # import; its "mup: ..." line in the install log says why it is missing
    mup = pytest.importorskip("mup", reason="mup is not installed (see the 'mup:' line of tasks.py's install)")
    x, y = _digits(64)
    base, width = 64, 256

    class MuMLP(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.inp, self.hidden = nn.Linear(64, w), nn.ModuleList([nn.Linear(w, w), nn.Linear(w, w)])
            self.readout = mup.MuReadout(w, 10, readout_zero_init=True)

        def forward(self, v):
            h = F.relu(self.inp(v))
            for lin in self.hidden:
                h = F.relu(lin(h))
            return self.readout(h)

    ref = MuMLP(width)
    mup.set_base_shapes(ref, MuMLP(base), delta=MuMLP(2 * base))
    torch.manual_seed(0)
    ours = inn.MLP(64, width, 10, param="mup", base_width=base)
    with torch.no_grad():
        for a, b in ((ours.inp, ref.inp), (ours.hidden[0], ref.hidden[0]), (ours.hidden[1], ref.hidden[1])):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    opt_ref = mup.MuAdam(ref.parameters(), lr=1e-2)
    opt_ours = torch.optim.Adam(inn.mup_param_groups(ours, 1e-2))
    for _ in range(4):
        for model, opt in ((ref, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert (ours(x) - ref(x)).abs().max().item() < 1e-4


def test_coord_check_agrees_with_mup_get_coord_data():
    """Our coordinate check against mup's own (``mup.get_coord_data``, MuAdam, fixed batch) on the same MLP
    and weights: mean |activation| of every ReLU output and of the logits, widths 64 and 256, steps 1-4."""
    mup = pytest.importorskip("mup", reason="mup is not installed (see the 'mup:' line of tasks.py's install)")
    from mup.coord_check import get_coord_data

    x, y = _digits(64)
    base, widths, steps = 64, (64, 256), 4

    class MuMLP(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.inp, self.hidden = nn.Linear(64, w), nn.ModuleList([nn.Linear(w, w), nn.Linear(w, w)])
            self.acts = nn.ModuleList(nn.ReLU() for _ in range(3))  # one module per recorded activation
            self.readout = mup.MuReadout(w, 10, readout_zero_init=True)

        def forward(self, v):
            h = self.acts[0](self.inp(v))
            for lin, act in zip(self.hidden, self.acts[1:]):
                h = act(lin(h))
            return self.readout(h)

    def lazy(width):
        def build():
            ref = MuMLP(width)
            mup.set_base_shapes(ref, MuMLP(base), delta=MuMLP(2 * base))
            torch.manual_seed(0)  # the weights of inn.coord_check's seed-0 model
            ours = inn.MLP(64, width, 10, param="mup", base_width=base)
            with torch.no_grad():
                for a, b in ((ours.inp, ref.inp), (ours.hidden[0], ref.hidden[0]), (ours.hidden[1], ref.hidden[1])):
                    b.weight.copy_(a.weight)
                    b.bias.copy_(a.bias)
            return ref
        return build

    names = ["acts.0", "acts.1", "acts.2", "readout"]
    df = get_coord_data({w: lazy(w) for w in widths}, [(x, y)], optimizer="adam", lr=1e-2, nsteps=steps,
                        cuda=False, show_progress=False, filter_module_by_name=lambda n: n in names)
    theirs = torch.zeros(len(widths), steps, len(names), dtype=torch.float64)
    for row in df.itertuples():
        theirs[widths.index(row.width), row.t - 1, names.index(row.module)] = row.l1
    ours = inn.coord_check(x, y, widths, param="mup", steps=steps, lr=1e-2)
    assert (theirs[:, 1:, -1] > 0).all()  # the logits move after the first step
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-7)


def test_gaussian_matrix_keeps_fixed_norms_but_is_no_isometry():
    gen = torch.Generator().manual_seed(0)
    n = 256
    w = torch.randn(n, n, generator=gen, dtype=torch.float64) / math.sqrt(n)
    x = torch.randn(2000, n, generator=gen, dtype=torch.float64)
    r = (x @ w.T).norm(dim=1) / x.norm(dim=1)
    assert abs(r.mean().item() - 1) < 0.01 and r.std().item() * math.sqrt(2 * n) == pytest.approx(1, abs=0.15)
    sv = torch.linalg.svdvals(w)
    assert sv.min() < 0.1 and sv.max() > 2 - 3 * n ** (-2 / 3)
    tall = torch.randn(4096, 64, generator=gen, dtype=torch.float64) / math.sqrt(4096)
    sv = torch.linalg.svdvals(tall)  # Marchenko–Pastur edges 1 ± sqrt(64/4096)
    assert 0.85 < sv.min() < 0.9 and 1.1 < sv.max() < 1.15
    for n in (64, 1024):  # two random vectors: cosine with mean 0 and std 1/sqrt(n)
        v = torch.randn(2000, n, generator=gen, dtype=torch.float64)
        cos = F.cosine_similarity(v[:1000], v[1000:], dim=1)
        assert abs(cos.mean().item()) < 3 / math.sqrt(1000 * n)
        assert cos.std().item() * math.sqrt(n) == pytest.approx(1, abs=0.1)


def test_log_norm_drift_random_walk_vs_orthogonal():
    n = 128
    gauss = inn.log_norm_drift(16, n, 500, "lecun", generator=torch.Generator().manual_seed(0))
    orth = inn.log_norm_drift(16, n, 500, "orthogonal", generator=torch.Generator().manual_seed(0))
    assert gauss.shape == orth.shape == (16,)
    ratio = gauss / torch.sqrt(torch.arange(1, 17, dtype=torch.float64) / (2 * n))
    # measured / sqrt(L/2n), seeds 0-5 at n = 128: L = 1 0.97-1.03, L = 4 0.97-1.05, L = 16 0.92-1.14
    assert ratio[[0, 3, 15]].min() > 0.8 and ratio[[0, 3, 15]].max() < 1.25
    # growth from L = 1 to 16 (sqrt(16) = 4 predicted): seeds 0-2 gave 3.9, 4.4, 3.7
    assert 3 < gauss[15] / gauss[0] < 5
    assert orth.max() < 1e-13  # measured <= 8e-16 (rounding) through 64 layers, n = 16-256
    # the notebook's draws: the same generator stream as drawing x, then W_1 ... W_L by hand
    gen, ref = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    h = torch.randn(50, 32, generator=ref, dtype=torch.float64)
    x_norm = h.norm(dim=1)
    for _ in range(3):
        h = h @ inn.init_linear_(torch.empty(32, 32, dtype=torch.float64), "lecun", generator=ref).T
    assert inn.log_norm_drift(3, 32, 50, generator=gen)[-1].item() == (h.norm(dim=1) / x_norm).log().std().item()
    for bad in ({"depth": 0}, {"n": 0}, {"vectors": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            inn.log_norm_drift(**{"depth": 2, **bad})


def test_drift_figure_has_a_frame_per_width():
    from dlnotes.init_norm import figures
    fig = figures.drift_figure((16, 64), depth=8, vectors=100)
    assert len(fig.frames) == 2 and len(fig.layout.sliders[0].steps) == 2
    names = [t.name for t in fig.frames[1].data]
    assert any("Gaussian" in s for s in names) and any("orthogonal" in s for s in names)
    pred = fig.frames[1].data[1].y
    assert pred[-1] == pytest.approx((8 / 128) ** 0.5, abs=1e-5)


def test_t5_init_gives_the_scaled_logits():
    gen = torch.Generator().manual_seed(0)
    d_model, d_kv = 512, 64
    x = F.layer_norm(torch.randn(128, d_model, generator=gen, dtype=torch.float64), (d_model,))
    w_q, w_k = (torch.randn(d_model, d_kv, generator=gen, dtype=torch.float64) / math.sqrt(d_model) for _ in range(2))
    standard = (x @ w_q) @ (x @ w_k).T / math.sqrt(d_kv)
    t5 = (x @ (w_q / math.sqrt(d_kv))) @ (x @ w_k).T
    assert (standard - t5).abs().max().item() < 1e-12
    assert t5.var().item() == pytest.approx(1.0, abs=0.1)
    unscaled = (x @ w_q) @ (x @ w_k).T
    assert unscaled.var().item() == pytest.approx(d_kv, rel=0.1)


# --- attention scale in the deep stack, μP learning-rate transfer (issue 14 follow-up) ------------------

def test_build_stack_attention_modes():
    cfg = inn.QUICK
    tokens, _ = inn.sorting_batch(8, generator=torch.Generator().manual_seed(0))
    peaks = {}
    for mode in inn.ATTENTION_MODES:
        torch.manual_seed(0)
        model = inn.build_stack(cfg, "pre", attention=mode, n_layers=3, d_model=64, n_heads=1)
        peaks[mode] = inn.attention_peaks(model, tokens)
        assert peaks[mode].shape == (3, 8 * 1 * 16)
        assert ((peaks[mode] > 1 / 16 - 1e-6) & (peaks[mode] <= 1 + 1e-6)).all()
    # T5's init gives the scaled logits at init; without either the rows saturate
    assert torch.allclose(peaks["t5"], peaks["sqrt"], atol=1e-5)
    assert peaks["unscaled"].median() > 0.75 > 0.35 > peaks["sqrt"].median()
    with pytest.raises(ValueError, match="attention"):
        inn.build_stack(cfg, "pre", attention="cosine")


def test_attention_peaks_post_norm_uses_the_raw_state():
    torch.manual_seed(0)
    model = inn.TransformerStack(16, 16, 32, 2, 2, norm="post")
    tokens, _ = inn.sorting_batch(4, generator=torch.Generator().manual_seed(1))
    peaks = inn.attention_peaks(model, tokens)
    _, xs = model(tokens, states=True)
    block = model.blocks[0]
    q, k, _ = block.qkv(xs[0]).view(4, 16, 3, 2, 16).permute(2, 0, 3, 1, 4)
    probs = torch.softmax(q @ k.transpose(-1, -2) / 4.0, dim=-1)
    assert torch.allclose(peaks[0], probs.amax(-1).reshape(-1), atol=1e-6)


def test_train_sorting_checks_batch_and_attention():
    with pytest.raises(ValueError, match="batch"):
        inn.train_sorting(inn.QUICK, "pre", steps=1, batch=0)
    with pytest.raises(ValueError, match="attention"):
        inn.train_sorting(inn.QUICK, "pre", steps=1, attention="none")
    run = inn.train_sorting(inn.QUICK, "pre", steps=2, n_layers=1, batch=4, attention="t5")
    assert len(run.losses) == 2 and math.isfinite(run.final_loss)


def test_lr_sweep_shape_seeds_and_bad_input():
    x, y = _digits(32)
    one = inn.lr_sweep(x, y, (16, 32), (1e-3, 1e-2), param="mup", steps=2, seeds=(0,))
    two = inn.lr_sweep(x, y, (16, 32), (1e-3, 1e-2), param="mup", steps=2, seeds=(0, 1))
    other = inn.lr_sweep(x, y, (16, 32), (1e-3, 1e-2), param="mup", steps=2, seeds=(1,))
    assert one.shape == (2, 2) and torch.allclose(two, (one + other) / 2)
    assert (one < math.log(10) + 1).all()  # a few steps from a zero readout stay near chance or below
    with pytest.raises(ValueError, match="steps"):
        inn.lr_sweep(x, y, (16,), (1e-3,), steps=0)
    with pytest.raises(ValueError, match="lrs"):
        inn.lr_sweep(x, y, (16,), (-1e-3,))


def test_best_lr_drifts_with_width_in_sp_not_in_mup():
    x, y = _digits(128)
    log2_lrs = (-12, -10, -8, -6, -4)
    lrs = tuple(2.0 ** k for k in log2_lrs)
    drift = {}
    for p in ("sp", "mup"):
        best = inn.lr_sweep(x, y, (32, 128, 512), lrs, param=p, steps=10).argmin(1)
        drift[p] = (best.max() - best.min()).item()
    # seeds 0, 1, 2: SP best grid index 4, 3, 2 over the widths (drift 2 grid steps), muP 3, 3, 3
    assert drift["sp"] >= 2 and drift["mup"] == 0


def test_retrieval_unscaled_attention_starts_worse_but_learns():
    # 100 steps, d = 64, seeds 0, 1, 2 (seed 0 here): mean loss of the first 20 steps unscaled 10.9, 10.2, 9.5
    # vs scaled 2.60, 2.50, 2.44 (ratio 3.9-4.2); unscaled last 20 0.95, 0.83, 0.74 (0.08-0.09 of its first 20)
    unscaled = inn.retrieval_losses(64, "unscaled", steps=100)
    scaled = inn.retrieval_losses(64, "sqrt", steps=100)
    assert unscaled.shape == scaled.shape == (100,)
    assert unscaled[:20].mean() > 3 * scaled[:20].mean()
    assert unscaled[-20:].mean() < 0.15 * unscaled[:20].mean()  # it learns: no frozen softmax
    with pytest.raises(ValueError, match="mode"):
        inn.retrieval_losses(64, "t5")
    with pytest.raises(ValueError, match="steps"):
        inn.retrieval_losses(64, "sqrt", steps=0)
