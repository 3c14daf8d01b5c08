"""dlnotes.nvae: the residual KL, spectral penalty, schedules, the model's structure and bad input."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dlnotes import nvae

f64 = dict(dtype=torch.float64)
TINY = nvae.NVAEConfig(channels=4, preprocess=1, post_cells=0, groups=(1, 2), latent_channels=2, steps=10,
                       batch_size=8)


def test_residual_kl_matches_torch_and_ignores_the_prior_mean():
    g = torch.Generator().manual_seed(0)
    mu, dmu = torch.randn(1000, generator=g, **f64), torch.randn(1000, generator=g, **f64)
    sigma = torch.rand(1000, generator=g, **f64) * 2 + 0.1
    dsig = torch.rand(1000, generator=g, **f64) * 2 + 0.1
    ours = nvae.residual_normal_kl(dmu, dsig, sigma)
    ref = kl_divergence(Normal(mu + dmu, sigma * dsig), Normal(mu, sigma))
    assert torch.allclose(ours, ref, atol=1e-6, rtol=0)
    shifted = kl_divergence(Normal(mu + 3.7 + dmu, sigma * dsig), Normal(mu + 3.7, sigma))
    assert torch.allclose(shifted, ours, atol=1e-9)
    dmu.requires_grad_(True)
    nvae.residual_normal_kl(dmu, dsig, sigma).sum().backward()
    assert torch.allclose(dmu.grad, dmu.detach() / sigma ** 2)


def test_identity_posterior_has_zero_kl():
    sigma = torch.rand(50, **f64) * 3 + 0.01
    kl = nvae.residual_normal_kl(torch.zeros(50, **f64), torch.ones(50, **f64), sigma)
    assert kl.abs().max() == 0
    assert nvae.residual_normal_kl(torch.tensor(0.1), torch.tensor(1.0), torch.tensor(1.0)) > 0


def test_generic_kl_and_soft_clamp():
    g = torch.Generator().manual_seed(1)
    a, b, c, d = (torch.randn(100, generator=g, **f64) for _ in range(4))
    ref = kl_divergence(Normal(a, b.exp()), Normal(c, d.exp()))
    assert torch.allclose(nvae.normal_kl(a, b.exp(), c, d.exp()), ref, atol=1e-10)
    x = torch.linspace(-20, 20, 1001, **f64)  # tanh rounds to ±1 in float64 beyond |x| ≈ 90
    y = nvae.soft_clamp(x)
    assert y.abs().max() < 5 and torch.allclose(nvae.soft_clamp(x * 1e-3), x * 1e-3, atol=1e-6)


def test_power_iteration_converges_to_the_spectral_norm():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(32, 16, 3, 3, generator=g)
    u = torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0)
    v = torch.nn.functional.normalize(torch.randn(144, generator=g), dim=0)
    s, u, v = nvae.power_iteration(w, u, v, 50)
    ref = torch.linalg.matrix_norm(w.reshape(32, -1), 2)
    assert abs(s.item() - ref.item()) / ref.item() < 1e-3
    s_bad, _, _ = nvae.power_iteration(w, torch.ones(32) / 32 ** 0.5, torch.ones(144) / 12, 0)
    assert abs(s_bad.item() - ref.item()) / ref.item() > 1e-2  # the check can fail without iterations


def test_spectral_regularizer_gradient_and_bn_penalty():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    sr = nvae.SpectralRegularizer(model)
    pen = sr.penalty(0.1)
    pen.backward()
    assert torch.allclose(pen, 0.1 * torch.linalg.matrix_norm(model[0].weight.reshape(4, -1), 2), rtol=1e-3)
    assert model[0].weight.grad.abs().sum() > 0
    model[1].weight.data = torch.tensor([1.0, -3.0, 2.0, 0.5])
    assert nvae.bn_penalty(model, 0.5).item() == pytest.approx(1.5)


def test_warmup_and_balancing():
    assert nvae.kl_warmup(0, 1000) == pytest.approx(1e-4)
    assert nvae.kl_warmup(150, 1000) == pytest.approx((150 - 0.1) / 300)
    assert nvae.kl_warmup(301, 1000) == 1.0 and nvae.kl_warmup(299, 1000) < 1.0
    alphas = nvae.group_alphas((2, 4))
    assert torch.allclose(alphas, torch.tensor([1.0, 1, 2, 2, 2, 2]))
    kl = torch.rand(8, 6, requires_grad=True) * 10
    c = nvae.balance_coefficients(kl, alphas, 0.5)
    assert c.mean().item() == pytest.approx(1.0) and not c.requires_grad and c.std() > 0
    assert torch.equal(nvae.balance_coefficients(kl, alphas, 1.0), torch.ones(6))


def test_groups_rule_and_latent_count():
    assert nvae.groups_per_scale(5, 16, minimum=4) == (4, 4, 4, 8, 16)
    assert nvae.groups_per_scale(2, 10) == (5, 10)
    assert sum(nvae.groups_per_scale(5, 16, minimum=4)) == 36
    sides = (8, 16, 32, 64, 128)
    assert sum(g * s * s for g, s in zip((4, 4, 4, 8, 16), sides)) * 20 == 6_005_760
    cfg = nvae.NVAEConfig(groups=(1, 2), latent_channels=3)
    assert nvae.latent_count(cfg) == 3 * (1 * 8 * 8 + 2 * 16 * 16)


def test_kl_chain_rule_two_group_linear_gaussian():
    # q: z1 ~ N(m, s²), z2 | z1 ~ N(a z1 + b, t²); p: the same form with other constants.
    q = dict(m=0.7, s=0.8, a=1.5, b=-0.3, t=0.6)
    p = dict(m=-0.2, s=1.3, a=-0.4, b=0.5, t=1.1)

    def joint(d):
        mean = torch.tensor([d["m"], d["a"] * d["m"] + d["b"]], **f64)
        cov = torch.tensor([[d["s"] ** 2, d["a"] * d["s"] ** 2],
                            [d["a"] * d["s"] ** 2, d["a"] ** 2 * d["s"] ** 2 + d["t"] ** 2]], **f64)
        return torch.distributions.MultivariateNormal(mean, cov)

    closed = kl_divergence(joint(q), joint(p)).item()
    kl1 = kl_divergence(Normal(torch.tensor(q["m"], **f64), q["s"]), Normal(torch.tensor(p["m"], **f64), p["s"])).item()
    # E_q(z1) KL2: the means differ by (a_q − a_p) z1 + (b_q − b_p), whose square has a closed expectation
    da, db = q["a"] - p["a"], q["b"] - p["b"]
    mean_sq = da ** 2 * (q["s"] ** 2 + q["m"] ** 2) + 2 * da * db * q["m"] + db ** 2
    r = q["t"] / p["t"]
    kl2 = 0.5 * (mean_sq / p["t"] ** 2 + r ** 2 - 2 * math.log(r) - 1)
    assert abs(closed - (kl1 + kl2)) < 1e-10
    assert abs(closed - kl1) > 0.1  # the second group matters


def test_top_down_sees_x_only_through_z():
    torch.manual_seed(0)
    model = nvae.NVAE(TINY).eval()
    x = (torch.rand(4, 1, 28, 28) > 0.5).float().requires_grad_(True)
    out = model(x)
    zs = [z.detach() for z in out.zs]
    logits = model.top_down(4, fixed=zs)[0]
    assert torch.allclose(logits, out.logits, atol=1e-5)
    other = torch.rand(4, 1, 28, 28)
    logits_other = model.top_down(4, feats=model.encode_features(other), fixed=zs)[0]
    assert torch.allclose(logits_other, logits, atol=1e-5)
    grad, = torch.autograd.grad(model.top_down(4, feats=model.encode_features(x), fixed=zs)[0].sum(), x,
                                allow_unused=True)
    assert grad is None or grad.abs().max() == 0
    assert out.kl.shape == (4, 3) and out.recon.shape == (4,)


def test_importance_weights_match_the_elbo_terms():
    torch.manual_seed(0)
    model = nvae.NVAE(TINY).eval()
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    torch.manual_seed(5)
    out = model(x)
    torch.manual_seed(5)
    logw = model.log_importance_weights(x, 1)
    assert logw.shape == (1, 3)
    assert torch.allclose(logw[0], -(out.recon + out.log_q - out.log_p), atol=1e-3)
    assert model.log_importance_weights(x, 5).shape == (5, 3)


def test_importance_weights_run_the_bottom_up_pass_once_per_image():
    from dlnotes import vae

    torch.manual_seed(0)
    model = nvae.NVAE(TINY).eval()
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    seen = []
    hook = model.stem.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    with torch.no_grad():
        logw = model.log_importance_weights(x, 7)
        lp = vae.importance_log_likelihood(model, x, k=6, chunk_size=4)  # two chunks of samples
    hook.remove()
    assert logw.shape == (7, 3) and torch.isfinite(logw).all()
    assert seen == [3, 3, 3]  # B images per call, never k·B
    assert lp.shape == (3,) and torch.isfinite(lp).all()
    with pytest.raises(ValueError, match="k must be"):
        model.log_importance_weights(x, True)


def test_temperature_scales_the_top_group():
    model = nvae.NVAE(TINY).eval()
    s1 = model.generate(4, temperature=1.0, generator=torch.Generator().manual_seed(3))
    s6 = model.generate(4, temperature=0.6, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(s6.zs[0], 0.6 * s1.zs[0], atol=1e-6)  # top prior is N(0, 1.01²)
    assert s1.probs.shape == (4, 1, 28, 28)


def test_readjust_bn_matches_sampling_statistics():
    torch.manual_seed(0)
    model = nvae.NVAE(TINY)
    bn = model.post[0].branch[0] if TINY.post_cells == 0 else None
    seen = []
    hook = bn.register_forward_hook(lambda m, i, o: seen.append(i[0].mean((0, 2, 3)).detach()))
    nvae.readjust_bn(model, batches=5, batch_size=16, temperature=0.7, generator=torch.Generator().manual_seed(0))
    hook.remove()
    assert len(seen) == 5 and not model.training
    assert torch.allclose(bn.running_mean, torch.stack(seen).mean(0), atol=1e-5)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="groups"):
        nvae.NVAEConfig(num_scales=2, groups=(2,))
    with pytest.raises(ValueError, match="image_size"):
        nvae.NVAEConfig(image_size=30, pad=0)
    with pytest.raises(ValueError, match="temperature"):
        nvae.NVAE(TINY).generate(2, temperature=0.0)
    with pytest.raises(ValueError, match="delta_sigma"):
        nvae.residual_normal_kl(torch.zeros(2), torch.tensor([1.0, -1.0]), torch.ones(2))
    with pytest.raises(ValueError, match="x must be"):
        nvae.NVAE(TINY)(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="k must"):
        nvae.NVAE(TINY).log_importance_weights(torch.zeros(2, 1, 28, 28), 0)


def test_weight_norm_keeps_the_function_and_normalises_the_weights():
    torch.manual_seed(0)
    plain = nvae.NVAE(TINY).eval()
    torch.manual_seed(0)
    normed = nvae.NVAE(replace(TINY, weight_norm=True)).eval()
    convs = [m for m in normed.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(nvae.is_weight_normed(m) for m in convs)
    assert not any(nvae.is_weight_normed(m) for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    assert nvae.apply_weight_norm(normed) == 0  # already done: nothing changes
    x = (torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    zs = [torch.randn(2, *z.shape[1:]) for z in plain(x).zs]
    assert torch.allclose(plain.top_down(2, fixed=zs)[0], normed.top_down(2, fixed=zs)[0], atol=1e-5)
    conv = convs[3]
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    assert g.shape == (v.shape[0], 1, 1, 1)
    with torch.no_grad():
        v.mul_(3.0)  # the direction's length does not matter, only g does
        assert torch.allclose(conv.weight.flatten(1).norm(dim=1), g.flatten(), atol=1e-5)
        g.mul_(2.0)
        assert torch.allclose(conv.weight.flatten(1).norm(dim=1), g.flatten(), atol=1e-5)
    sr = nvae.SpectralRegularizer(normed, init_iters=200)
    pen = sr.penalty(1.0)
    exact = sum(torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2) for m in convs)
    assert abs(pen.item() - exact.item()) / exact.item() < 1e-3  # SR on the normalised weights
    pen.backward()
    assert g.grad is not None and g.grad.abs().sum() > 0 and v.grad.abs().sum() > 0


def test_warm_vectors_need_few_iterations_after_a_small_weight_change():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(32, 144, generator=g)
    cold_u = torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0)
    cold_v = torch.nn.functional.normalize(torch.randn(144, generator=g), dim=0)
    _, u, v = nvae.power_iteration(w, cold_u, cold_v, 200)  # converged on w
    w2 = w + 0.01 * torch.randn(32, 144, generator=g)  # one optimiser step later
    exact = torch.linalg.matrix_norm(w2, 2).item()
    warm, _, _ = nvae.power_iteration(w2, u, v, 4)
    cold, _, _ = nvae.power_iteration(w2, cold_u, cold_v, 4)
    assert abs(warm.item() - exact) / exact < 1e-4
    assert abs(cold.item() - exact) / exact > 1e-3  # from cold, 4 iterations are not enough


def test_train_returns_its_spectral_regularizer():
    cfg = replace(TINY, steps=3, batch_size=4)
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model, _ = nvae.train(cfg, images, seed=0)
    assert isinstance(model.spectral, nvae.SpectralRegularizer) and model.spectral.calls == 3
    assert "spectral" not in "".join(model.state_dict())


def test_one_group_with_more_latent_than_feature_channels():
    cfg = nvae.NVAEConfig(channels=2, preprocess=1, post_cells=0, num_scales=1, groups=(1,), latent_channels=3,
                          expand=2, kernel=3)
    model = nvae.NVAE(cfg)  # the top state has 4 channels, the latent map 3 (so 6 prior parameters)
    out = model((torch.rand(2, 1, 28, 28) > 0.5).float())
    assert out.zs[0].shape == (2, 3, 16, 16) and out.kl.shape == (2, 1) and torch.isfinite(out.kl).all()
    assert model.generate(2).zs[0].shape == (2, 3, 16, 16)
