"""Tests of dlnotes.vqvae (quantiser, VQ-VAE) against the chapter's claims and a reference.

The reference is vector-quantize-pytorch (lucidrains), a test-only dependency, configured to the
classic algorithm: plain straight-through (no rotation trick), EMA decay 0.99, commitment 0.25.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlnotes import vqvae
from dlnotes.vqvae import VQVAE, VectorQuantizer, VQVAEConfig

TINY = VQVAEConfig(hidden=8, res_hidden=4, res_blocks=1, downsamples=1, code_dim=4, num_codes=8)


def quantizer(k: int = 8, d: int = 4, *, dtype=torch.float64, seed: int = 0, **kw) -> VectorQuantizer:
    torch.manual_seed(seed)
    vq = VectorQuantizer(k, d, data_init=False, **kw).to(dtype)
    return vq


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, name", [
    (dict(num_codes=0, code_dim=4), "num_codes"),
    (dict(num_codes=8, code_dim=0), "code_dim"),
    (dict(num_codes=8, code_dim=4, beta=-0.1), "beta"),
    (dict(num_codes=8, code_dim=4, decay=1.0), "decay"),
    (dict(num_codes=8, code_dim=4, eps=0.0), "eps"),
    (dict(num_codes=8, code_dim=4, dead_code_threshold=-1.0), "dead_code_threshold"),
])
def test_constructor_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VectorQuantizer(**kwargs)


def test_forward_rejects_wrong_channels_and_non_float():
    vq = quantizer()
    with pytest.raises(ValueError, match="code_dim"):
        vq(torch.randn(2, 5, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="code_dim"):
        vq(torch.randn(7, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="floating-point"):
        vq(torch.ones(2, 4, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="channel_dim"):
        vq(torch.randn(2, 4, dtype=torch.float64), channel_dim=3)


def test_lookup_and_decode_reject_bad_indices():
    vq = quantizer(k=8)
    with pytest.raises(ValueError, match="indices"):
        vq.lookup(torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="indices"):
        vq.lookup(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="indices"):
        vq.lookup(torch.tensor([0.0, 1.0]))
    model = VQVAE(TINY)
    with pytest.raises(ValueError, match="indices"):
        model.decode_indices(torch.full((1, 4, 4), TINY.num_codes))
    with pytest.raises(ValueError, match="x must"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.ones(2, 1, 8, 8, dtype=torch.uint8))


def test_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_codes"):
        VQVAEConfig(num_codes=0)
    with pytest.raises(ValueError, match="downsamples"):
        VQVAEConfig(downsamples=-1)
    with pytest.raises(ValueError, match="dataset"):
        VQVAEConfig(dataset="auto")


@pytest.mark.parametrize("budget, dataset, image_size, channels, side", [
    ("quick", "digits", 8, 1, 4), ("quick", "mnist", 28, 1, 7), ("quick", "mnist5k", 28, 1, 7),
    ("full", "digits", 8, 1, 4), ("full", "mnist", 28, 1, 7), ("full", "mnist5k", 28, 1, 7),
    ("full", "cifar10", 32, 3, 8)])
def test_config_for_each_budget_and_data_set(budget, dataset, image_size, channels, side):
    cfg = vqvae.config_for(budget, dataset)
    assert cfg.dataset == dataset and cfg.in_channels == channels
    assert image_size // 2 ** cfg.downsamples == side and cfg.ema and cfg.beta == 0.25 and cfg.decay == 0.99
    assert cfg.prior_layers >= side - 1  # the prior sees every earlier code (tests/test_pixelcnn.py)
    out = VQVAE(cfg).eval()(torch.rand(2, channels, image_size, image_size))
    assert out.vq.indices.shape == (2, side, side) and out.reconstruction.shape == (2, channels, image_size, image_size)
    if budget == "quick":
        assert cfg.hidden <= vqvae.QUICK.hidden and cfg.num_codes == vqvae.QUICK.num_codes  # CPU-sized
    else:
        assert cfg.steps >= 5 * vqvae.QUICK.steps


def test_config_for_rejects_unknown_pairs():
    with pytest.raises(ValueError, match="budget, dataset"):
        vqvae.config_for("quick", "cifar10")  # CIFAR-10 is a full-budget experiment
    with pytest.raises(ValueError, match="budget, dataset"):
        vqvae.config_for("medium", "mnist")


def test_paper_cifar10_settings():
    paper = vqvae.PAPER_CIFAR10
    assert (paper.hidden, paper.steps, paper.lr, paper.batch_size, paper.downsamples) == (256, 250_000, 2e-4, 128, 2)
    assert vqvae.CIFAR10.steps * 10 == paper.steps and vqvae.CIFAR10.in_channels == paper.in_channels == 3


# ---------------------------------------------------------------- nearest neighbour (vq-eq-nearest, vq-eq-dist)
def test_expanded_distances_match_cdist():
    vq = quantizer(k=64, d=16)
    z = torch.randn(500, 16, dtype=torch.float64)
    ref = torch.cdist(z, vq.codebook.detach())
    torch.testing.assert_close(vq.distances(z), ref ** 2, rtol=1e-9, atol=1e-9)
    assert torch.equal(vq.nearest(z), ref.argmin(1))


def test_float32_argmin_matches_cdist_except_near_ties():
    vq = quantizer(k=64, d=16, dtype=torch.float32)
    z = torch.randn(2000, 16)
    ref = torch.cdist(z.double(), vq.codebook.detach().double())
    ours = vq.nearest(z)
    rows = (ours != ref.argmin(1)).nonzero().squeeze(1)
    gaps = ref[rows, ours[rows]] - ref[rows].min(1).values
    assert len(rows) <= 2 and bool((gaps < 1e-5).all())


def test_distances_stay_float32_under_autocast():
    vq = quantizer(k=32, d=8, dtype=torch.float32)
    z = torch.randn(256, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = vq.distances(z.bfloat16())
        out = vq(z.bfloat16())
    assert d.dtype == torch.float32
    assert torch.equal(out.indices, vq.nearest(z.bfloat16().float()))


def test_quantises_along_the_channel_axis():
    vq = quantizer(k=8, d=4)
    z = torch.randn(2, 4, 3, 5, dtype=torch.float64)  # (B, D, H, W)
    out = vq(z)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 4)  # (B·H·W, D)
    assert out.indices.shape == (2, 3, 5)
    assert torch.equal(out.indices.reshape(-1), vq.nearest(vectors))
    assert torch.equal(out.quantized, vq.codebook[out.indices].permute(0, 3, 1, 2))
    assert torch.equal(vq(z.permute(0, 2, 3, 1), channel_dim=-1).indices, out.indices)  # channels last
    with pytest.raises(ValueError, match="channel_dim"):  # 4-D input is read as (B, D, H, W) by default
        vq(z.permute(0, 2, 3, 1))


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (2, 4, 5, 4), (3, 4, 4)])
def test_ambiguous_layout_requires_channel_dim(shape):
    """D on axis 1 and on the last axis (a channels-last map with H == D): no silent guess."""
    vq = quantizer(k=8, d=4)
    z = torch.randn(*shape, dtype=torch.float64)
    if shape[1] == shape[-1] == 4:
        with pytest.raises(ValueError, match="channel_dim is required"):
            vq(z)
        with pytest.raises(ValueError, match="channel_dim is required"):
            vq.init_from_data(z)
    else:  # channels last, 4-D: also needs channel_dim (the default reads axis 1)
        with pytest.raises(ValueError, match="channel_dim=-1"):
            vq(z)
    vectors = z.movedim(-1, -1).reshape(-1, 4)
    assert torch.equal(vq(z, channel_dim=-1).indices.reshape(-1), vq.nearest(vectors))
    with pytest.raises(ValueError, match="channel_dim"):
        vq(z, channel_dim=True)


def test_model_quantises_maps_whose_side_equals_the_code_width():
    cfg = dataclasses.replace(TINY, code_dim=4, downsamples=1)
    model = VQVAE(cfg).eval()
    x = torch.rand(2, 1, 8, 8)  # a 4×4 map of width D = 4: ambiguous for the quantiser alone
    out = model(x)
    z = out.z.permute(0, 2, 3, 1).reshape(-1, 4)
    assert torch.equal(out.vq.indices.reshape(-1), model.quantizer.nearest(z))


# ---------------------------------------------------------------- straight-through (vq-eq-st, vq-eq-sg-trick)
def test_straight_through_forward_value():
    z = torch.randn(64, 4, dtype=torch.float32) * 3
    zq = torch.randn(64, 4, dtype=torch.float32)
    classic = z + (zq - z).detach()  # the post's form: equal up to rounding only
    torch.testing.assert_close(classic, zq, rtol=0, atol=1e-6)
    assert torch.equal(vqvae.straight_through(z, zq), zq)  # ours adds an exact zero


def test_decode_indices_reproduces_quantised_output_exactly_in_eval_mode():
    torch.manual_seed(0)
    model = VQVAE(dataclasses.replace(TINY, ema=True)).double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    model.train()
    model(x)  # data init and one EMA/usage update
    model.eval()
    out = model(x)
    assert torch.equal(model.quantizer.lookup(out.vq.indices, channel_dim=1), out.vq.quantized)
    assert torch.equal(model.decode_indices(out.vq.indices), out.reconstruction)
    assert torch.equal(model.encode_indices(x), out.vq.indices)
    # training mode: the EMA step moves the codebook after the codes are chosen
    model.train()
    out = model(x)
    assert not torch.equal(model.decode_indices(out.vq.indices), out.reconstruction)


def test_decoder_gradient_reaches_encoder_unchanged():
    torch.manual_seed(1)
    vq = quantizer(k=8, d=4)
    dec = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    target = torch.randn(10, 3, dtype=torch.float64)
    z = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    out = vq(z)
    ((dec(out.quantized) - target) ** 2).sum().backward()
    u = vq.codebook.detach()[out.indices].clone().requires_grad_(True)  # u = z_q
    ((dec(u) - target) ** 2).sum().backward()
    torch.testing.assert_close(z.grad, u.grad, rtol=0, atol=0)


# The trick x + sg[f(x) - x] on a ReLU (value relu(x), gradient 1) is an identity of autograd that
# involves no dlnotes code: the chapter shows it and nothing asserts it.


# ---------------------------------------------------------------- loss terms (vq-eq-commit to vq-eq-loss)
def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    parts = {"encoder": model.encoder, "decoder": model.decoder}
    out = {name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
           for name, m in parts.items()}
    g = model.quantizer.codebook.grad
    out["codebook"] = g is not None and bool(g.abs().sum() > 0)
    return out


def test_gradient_routing_of_each_loss_term():
    torch.manual_seed(2)
    model = VQVAE(TINY).double()
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    out = model(x)
    recon = ((out.reconstruction - x) ** 2).mean()
    assert _grads(model, recon) == {"encoder": True, "decoder": True, "codebook": False}
    assert _grads(model, out.vq.codebook_loss) == {"encoder": False, "decoder": False, "codebook": True}
    assert _grads(model, out.vq.commitment_loss) == {"encoder": True, "decoder": False, "codebook": False}
    torch.testing.assert_close(out.vq.loss, out.vq.codebook_loss + 0.25 * out.vq.commitment_loss)


def test_split_stop_gradient_identity_on_the_quantizer_terms():
    # The identity is calculus; what can fail is the quantiser's split of it (a stop-gradient on
    # the wrong side, or terms averaged differently): its two terms must add up to the gradient of
    # the whole mean ||z - e_k||^2 for z and for the codebook, at twice the value.
    vq = quantizer(k=8, d=4, seed=3).train()
    z = torch.randn(40, 4, dtype=torch.float64, requires_grad=True)
    out = vq(z)
    whole = ((z - vq.codebook[out.indices]) ** 2).mean()
    gz, ge = torch.autograd.grad(whole, (z, vq.codebook))
    halves = out.codebook_loss + out.commitment_loss
    hz, he = torch.autograd.grad(halves, (z, vq.codebook))
    assert ge.abs().sum() > 0 and gz.abs().sum() > 0
    torch.testing.assert_close(hz, gz, rtol=0, atol=1e-15)
    torch.testing.assert_close(he, ge, rtol=0, atol=1e-15)
    torch.testing.assert_close(halves, 2 * whole, rtol=1e-14, atol=0)


def test_losses_values_and_perplexity():
    vq = quantizer(k=8, d=4)
    z = torch.randn(50, 4, dtype=torch.float64)
    out = vq(z)
    gap = ((z - vq.codebook.detach()[out.indices]) ** 2).mean()
    torch.testing.assert_close(out.commitment_loss, gap)
    torch.testing.assert_close(out.codebook_loss, gap)
    assert int(out.counts.sum()) == 50
    assert math.isclose(float(vqvae.perplexity(torch.full((8,), 5.0))), 8.0, rel_tol=1e-6)
    assert math.isclose(float(vqvae.perplexity(torch.tensor([0.0, 7.0, 0.0]))), 1.0, rel_tol=1e-6)
    p = out.counts.double() / 50
    expected = math.exp(-sum(float(q * math.log(q)) for q in p if q > 0))
    assert math.isclose(float(out.perplexity), expected, rel_tol=1e-5)


# ---------------------------------------------------------------- EMA codebook (vq-eq-ema)
def test_ema_step_follows_the_formulas():
    vq = quantizer(k=4, d=3, ema=True, decay=0.9, eps=1e-3)
    assert "codebook" not in dict(vq.named_parameters())
    e0, n0, m0 = vq.codebook.clone(), vq.cluster_size.clone(), vq.embed_sum.clone()
    z = torch.randn(20, 3, dtype=torch.float64)
    vq.train()
    out = vq(z)
    assert float(out.codebook_loss) == 0.0
    torch.testing.assert_close(out.quantized, e0[out.indices])  # chosen with the codebook before the step
    onehot = F.one_hot(out.indices, 4).double()  # (N, K)
    n = 0.9 * n0 + 0.1 * onehot.sum(0)
    m = 0.9 * m0 + 0.1 * onehot.t() @ z
    total = n.sum()
    smoothed = (n + 1e-3) * total / (total + 4 * 1e-3)
    torch.testing.assert_close(vq.cluster_size, n)
    torch.testing.assert_close(vq.codebook, m / smoothed[:, None])


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    angles = np.arange(8) * 2 * np.pi / 8
    centres = 5 * np.stack([np.cos(angles), np.sin(angles)], 1)
    points = np.concatenate([c + 0.4 * rng.standard_normal((50, 2)) for c in centres])
    init = points[::50] + 0.5  # one start per blob, off its centre
    return points, init


def _lloyd(points, init, iters=100):
    centres = init.copy()
    for _ in range(iters):
        assign = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([points[assign == k].mean(0) for k in range(len(centres))])
    return centres


def test_ema_and_gradient_codebooks_converge_to_kmeans():
    points, init = _blobs()
    target = torch.from_numpy(_lloyd(points, init))
    z = torch.from_numpy(points)
    ema = quantizer(k=8, d=2, ema=True, decay=0.99)
    ema.reset_codebook(torch.from_numpy(init))
    ema.train()
    for _ in range(1500):
        ema(z)
    torch.testing.assert_close(ema.codebook, target, rtol=0, atol=1e-4)
    sgd = quantizer(k=8, d=2)
    sgd.reset_codebook(torch.from_numpy(init))
    opt = torch.optim.SGD(sgd.parameters(), lr=4.0)
    for _ in range(200):
        opt.zero_grad()
        sgd(z).codebook_loss.backward()
        opt.step()
    torch.testing.assert_close(sgd.codebook.detach(), target, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- VAE reading and bookkeeping
def test_code_frequency_kl_to_uniform_is_log_k_minus_log_perplexity():
    # The one-hot posterior's KL to the uniform prior is log K by algebra (the chapter shows it and
    # asserts nothing). What can be measured is the KL of a batch's code frequencies to uniform,
    # log K - log PPL: it checks the perplexity the quantiser reports against a direct computation.
    for seed, k in [(0, 8), (1, 32), (2, 512)]:
        vq = quantizer(k=k, d=4, seed=seed)
        out = vq(torch.randn(300, 4, dtype=torch.float64) * (seed + 1))
        p = out.counts.double() / out.counts.sum()
        kl = torch.special.xlogy(p, p * k).sum().item()
        assert 0 < kl < math.log(k)
        assert math.isclose(kl, math.log(k) - math.log(out.perplexity.item()), abs_tol=1e-5)


def test_bits_per_image():  # the sampling steps (49,152 -> 1,024) are tested in test_pixelcnn.py
    pixels = vqvae.pixel_bits(128, 128, 3)
    codes = vqvae.code_bits(32, 64)
    assert (pixels, codes, pixels / codes) == (393_216, 6144, 64)
    assert math.isclose(vqvae.pixel_bits(128, 128, 3) / vqvae.code_bits(32, 512), 42.67, abs_tol=0.01)
    with pytest.raises(ValueError, match="num_codes"):
        vqvae.code_bits(4, 0)


# Cross-entropy's blindness to ordinal closeness (vq-eq-ce) holds by construction (it reads only
# p[target]) and involves no dlnotes code: the chapter shows it and nothing asserts it.


# ---------------------------------------------------------------- codebook maintenance
def _on_data(codes, z):
    """Which codes coincide exactly with one of the vectors z."""
    return ((codes.detach()[:, None] - z[None]).abs().sum(-1) == 0).any(1)


def test_dead_code_restart_moves_codes_onto_batch_vectors():
    vq = quantizer(k=16, d=2, dead_code_threshold=0.5)
    vq.reset_codebook(torch.zeros(16, 2, dtype=torch.float64))
    z = torch.randn(40, 2, dtype=torch.float64) + 10
    vq.train()
    for _ in range(80):  # unused codes decay below the threshold, then move
        vq(z)
    assert int(_on_data(vq.codebook, z).sum()) == 15  # all but the one code that wins everything


def test_data_init_uses_encoder_outputs():
    vq = VectorQuantizer(8, 2).double()
    z = torch.randn(30, 2, dtype=torch.float64) * 7
    vq.train()
    vq(z)
    assert bool(vq.initialized)
    assert bool(_on_data(vq.codebook, z).all())


def test_tiny_init_leaves_dead_codes_and_restarts_revive_them():
    points, _ = _blobs(1)
    z = torch.from_numpy(points)
    results = {}
    for threshold in (0.0, 1.0):
        vq = quantizer(k=64, d=2, dead_code_threshold=threshold, seed=3)
        vq.reset_codebook(torch.empty(64, 2, dtype=torch.float64).uniform_(-1 / 64, 1 / 64))
        opt = torch.optim.Adam(vq.parameters(), lr=0.1)
        vq.train()
        for _ in range(150):
            opt.zero_grad()
            vq(z).codebook_loss.backward()
            opt.step()
        vq.eval()
        out = vq(z)
        results[threshold] = (float(out.perplexity), int((out.counts > 0).sum()), float(out.commitment_loss))
    (ppl0, used0, err0), (ppl1, used1, err1) = results[0.0], results[1.0]
    assert ppl0 < 64 / 4 and used0 <= 16  # most codes never win a vector
    assert ppl1 > 2 * ppl0 and used1 > 2 * used0 and err1 < err0 / 2


def _train_tiny(beta: float, *, vq_loss: bool = True, steps: int = 120, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    images = torch.rand(256, 1, 8, 8, generator=gen).round() * torch.rand(256, 1, 1, 1, generator=gen)
    cfg = dataclasses.replace(TINY, hidden=16, res_hidden=8, code_dim=8, num_codes=16, beta=beta)
    model = VQVAE(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for step in range(steps):
        x = images[torch.randint(256, (64,), generator=gen)]
        out = model(x)
        recon = ((out.reconstruction - x) ** 2).mean()
        opt.zero_grad()
        (recon + out.vq.loss if vq_loss else recon).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(images)
    return float(((out.reconstruction - images) ** 2).mean()), float(out.vq.commitment_loss)


def test_without_codebook_and_commitment_terms_encoder_outputs_drift():
    _, gap_with = _train_tiny(0.25, steps=60)
    _, gap_without = _train_tiny(0.25, vq_loss=False, steps=60)
    assert gap_without > 20 * gap_with


def test_reconstruction_is_robust_to_beta():
    errors = [_train_tiny(beta, steps=60)[0] for beta in (0.1, 0.25, 2.0)]
    assert max(errors) < 1.6 * min(errors)


# ---------------------------------------------------------------- model shapes and config
def test_model_shapes_follow_config():
    for cfg, size, m in [(TINY, 8, 4), (dataclasses.replace(TINY, downsamples=2, in_channels=3), 32, 8)]:
        model = VQVAE(cfg)
        out = model(torch.rand(2, cfg.in_channels, size, size))
        assert out.reconstruction.shape == (2, cfg.in_channels, size, size)
        assert out.z.shape == (2, cfg.code_dim, m, m) and out.vq.indices.shape == (2, m, m)
    assert vqvae.FULL.num_codes == 512 and vqvae.FULL.beta == 0.25 and vqvae.FULL.decay == 0.99
    blocks = [b for b in VQVAE(vqvae.FULL).encoder if isinstance(b, vqvae.model.ResidualBlock)]
    assert len(blocks) == 2 and blocks[0] is not blocks[1]  # not one shared block (zalando bug)
    assert blocks[0].body[1].weight.data_ptr() != blocks[1].body[1].weight.data_ptr()


def test_config_rejects_unknown_dataset_names_listing_them():
    with pytest.raises(ValueError, match="mnist5k"):
        VQVAEConfig(dataset="mnist10k")
    assert not hasattr(vqvae, "loss_fn")  # the chapter writes its loss out; no unused twin in the package


# ---------------------------------------------------------------- reference: vector-quantize-pytorch
def _lucidrains(**kw):
    vqp = pytest.importorskip("vector_quantize_pytorch")
    return vqp.VectorQuantize(dim=8, codebook_size=16, accept_image_fmap=True, threshold_ema_dead_code=0,
                              kmeans_init=False, rotation_trick=False, straight_through=False, **kw)


def test_matches_vector_quantize_pytorch_with_ema():
    torch.manual_seed(0)
    theirs = _lucidrains(decay=0.99, eps=1e-5, commitment_weight=0.25)
    ours = VectorQuantizer(16, 8, beta=0.25, ema=True, decay=0.99, eps=1e-5, data_init=False)
    ours.reset_codebook(theirs.codebook.detach().clone())  # N_i = 1, m_i = e_i as in theirs
    torch.testing.assert_close(ours.embed_sum, theirs._codebook.embed_avg[0])
    w = torch.randn(4, 8, 5, 5)
    for step in range(5):
        z1 = (torch.randn(4, 8, 5, 5) * 2).requires_grad_(True)
        z2 = z1.detach().clone().requires_grad_(True)
        q_theirs, idx_theirs, loss_theirs = theirs(z1)
        out = ours(z2)
        ((q_theirs * w).sum() + loss_theirs).backward()
        ((out.quantized * w).sum() + out.loss).backward()
        assert torch.equal(out.indices, idx_theirs)
        torch.testing.assert_close(out.quantized, q_theirs, rtol=0, atol=1e-6)
        torch.testing.assert_close(out.loss, loss_theirs, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(z2.grad, z1.grad, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(ours.codebook, theirs.codebook, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.cluster_size, theirs._codebook.cluster_size[0], rtol=1e-6, atol=1e-6)


def test_matches_vector_quantize_pytorch_with_gradient_codebook():
    # their learnable codebook has one weight for both halves of ||z - e||^2: compare at beta = 1
    torch.manual_seed(1)
    theirs = _lucidrains(commitment_weight=1.0, ema_update=False, learnable_codebook=True)
    ours = VectorQuantizer(16, 8, beta=1.0, data_init=False)
    ours.reset_codebook(theirs.codebook.detach().clone())
    z1 = (torch.randn(4, 8, 5, 5) * 2).requires_grad_(True)
    z2 = z1.detach().clone().requires_grad_(True)
    w = torch.randn(4, 8, 5, 5)
    q_theirs, idx_theirs, loss_theirs = theirs(z1)
    out = ours(z2)
    ((q_theirs * w).sum() + loss_theirs).backward()
    ((out.quantized * w).sum() + out.loss).backward()
    assert torch.equal(out.indices, idx_theirs)
    # same gradients, but our two stop-gradient halves count the value twice (vq-eq-split)
    torch.testing.assert_close(out.loss, 2 * loss_theirs, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(z2.grad, z1.grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours.codebook.grad, theirs._codebook.embed.grad[0], rtol=1e-5, atol=1e-7)


def test_vector_quantize_pytorch_defaults_are_not_the_classic_algorithm():
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(2)
    default = vqp.VectorQuantize(dim=8, codebook_size=16, accept_image_fmap=True)
    assert default.rotation_trick and default._codebook.decay == 0.8 and default.commitment_weight == 1.0
    ours = VectorQuantizer(16, 8, beta=1.0, ema=True, decay=0.8, data_init=False)
    ours.reset_codebook(default.codebook.detach().clone())
    z1 = (torch.randn(2, 8, 3, 3) * 2).requires_grad_(True)
    z2 = z1.detach().clone().requires_grad_(True)
    w = torch.randn(2, 8, 3, 3)
    (default(z1)[0] * w).sum().backward()
    (ours(z2).quantized * w).sum().backward()
    assert not torch.allclose(z1.grad, z2.grad, atol=1e-3)  # the rotation trick is another estimator


# ---------------------------------------------------------------- the chapter's experiment helpers
def test_vqvae_loss_scales_reconstruction_by_variance_and_keeps_beta():
    torch.manual_seed(5)
    model = VQVAE(TINY)
    x = torch.rand(4, 1, 8, 8)
    out = model(x)
    loss, recon = vqvae.vqvae_loss(out, x, 0.5)
    torch.testing.assert_close(recon, ((out.reconstruction - x) ** 2).mean())
    expected = recon / 0.5 + out.vq.codebook_loss + TINY.beta * out.vq.commitment_loss
    torch.testing.assert_close(loss, expected)
    only_recon, _ = vqvae.vqvae_loss(out, x, 0.5, vq_terms=False)
    torch.testing.assert_close(only_recon, recon / 0.5)
    with pytest.raises(ValueError, match="data_variance"):
        vqvae.vqvae_loss(out, x, 0.0)


def test_train_vqvae_learns_and_is_capped_under_smoke(monkeypatch):
    images = torch.rand(64, 1, 8, 8).round()
    cfg = dataclasses.replace(TINY, batch_size=16, lr=3e-3)
    monkeypatch.setenv("DLNOTES_SMOKE", "1")
    _, capped, _ = vqvae.train_vqvae(cfg, images, 50, progress=False)
    assert capped.steps[-1] == vqvae.SMOKE_STEPS
    monkeypatch.setenv("DLNOTES_SMOKE", "0")
    model, history, snaps = vqvae.train_vqvae(cfg, images, 60, progress=False, snapshot_every=20)
    assert history.steps[-1] == 60 and [s[0] for s in snaps] == [1, 20, 40, 60]
    assert history.metrics["recon_mse"][-1] < history.metrics["recon_mse"][0]
    ev = vqvae.evaluate(model, images, chunk=10)
    assert ev.indices.shape == (64, 4, 4) and 0 < ev.used <= 1 and 1 <= ev.perplexity <= TINY.num_codes
    torch.testing.assert_close(ev.reconstruction, ev.mean.clamp(0, 1))
    assert torch.equal(vqvae.encode_all(model, images, chunk=7), ev.indices)


def test_unigram_bits_is_the_smoothed_cross_entropy():
    train_codes = torch.tensor([[0, 0, 0, 1]])
    test_codes = torch.tensor([[0, 2]])
    bits, freq = vqvae.unigram_bits(train_codes, test_codes, 3)
    torch.testing.assert_close(freq, torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64) / 7)
    assert math.isclose(bits, -(math.log2(4 / 7) + math.log2(1 / 7)) / 2)


def test_train_prior_and_bits_per_code():
    cfg = dataclasses.replace(TINY, prior_channels=8, prior_layers=3, prior_steps=5, batch_size=8)
    codes = torch.randint(TINY.num_codes, (20, 4, 4))
    prior, history = vqvae.train_prior(cfg, codes, progress=False)
    assert history.steps[-1] == 5 and not prior.training
    with torch.no_grad():
        assert math.isclose(vqvae.bits_per_code(prior, codes, chunk=6), prior.nll(codes).item(), rel_tol=1e-5)
