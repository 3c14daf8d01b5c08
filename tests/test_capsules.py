"""Capsule routing as K-Means: squash, soft K-Means, the three routings, the post's claims, bad input.

References: scikit-learn's Lloyd K-Means, a NumPy transcription of the post's routing table with
explicit loops over examples, inputs and outputs (float64), autograd's gradcheck, hand-made cases.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlnotes import capsules as cp

TIGHT = 1e-10  # float64 agreement between two implementations of the same formula


def blobs(seed: int = 0, per: int = 30, spread: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Three 2-D Gaussian blobs (float64) and an initial centre near one point of each."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    u = (means[:, None] + spread * torch.randn(3, per, 2, dtype=torch.float64, generator=gen)).reshape(-1, 2)
    return u, u[[0, per, 2 * per]] + 0.3


def random_u_hat(b=3, n=20, k=5, d=4, scale=1.0, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(b, n, k, d, dtype=torch.float64, generator=gen)


# ----------------------------------------------------------------------------- squash

def textbook_squash(v: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    n2 = (v * v).sum(-1, keepdim=True)
    return n2 / (c + n2) * v / n2.sqrt()


def test_squash_matches_eq1_away_from_zero_and_keeps_direction():
    v = torch.randn(50, 7, dtype=torch.float64) * torch.logspace(-2, 2, 50, dtype=torch.float64)[:, None]
    for c in (1.0, 0.5):
        out = cp.squash(v, constant=c, eps=0.0)
        assert (out - textbook_squash(v, c)).abs().max() < TIGHT
        cos = torch.nn.functional.cosine_similarity(out, v, dim=-1)
        assert (cos > 1 - 1e-12).all()


def test_squash_length_below_one_monotone_and_half_constant_is_longer():
    lengths = torch.linspace(0, 50, 2001, dtype=torch.float64)
    v = lengths[:, None] * torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    out1 = cp.safe_norm(cp.squash(v, constant=1.0), eps=0.0)
    out_half = cp.safe_norm(cp.squash(v, constant=0.5), eps=0.0)
    assert (out1 < 1).all() and (out_half < 1).all()
    assert (out1.diff() > 0).all()  # ℓ²/(c + ℓ²) increases with ℓ
    assert (out_half[1:] > out1[1:]).all()  # c = 0.5 gives longer outputs for every ℓ > 0
    big = cp.squash(torch.full((3, 16), 1e3, dtype=torch.float64))  # ℓ = 4000 (ℓ ≳ 1e8 rounds to 1)
    assert (cp.safe_norm(big, eps=0.0) < 1).all()


def test_squash_is_finite_at_zero_with_tiny_gradient():
    v = torch.zeros(4, 16, dtype=torch.float64, requires_grad=True)
    out = cp.squash(v)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.isfinite(v.grad).all()
    assert v.grad.abs().max() <= math.sqrt(cp.EPS)  # Jacobian √ε/(c+ε)·I: zero up to the ε
    assert torch.isfinite(cp.normalize(torch.zeros(3))).all()


def test_squash_respects_dim():
    v = torch.randn(5, 3, 4, dtype=torch.float64)
    assert torch.allclose(cp.squash(v, dim=1), cp.squash(v.transpose(1, 2)).transpose(1, 2), atol=1e-14)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_squash_rejects_bad_constant(bad):
    with pytest.raises(ValueError, match="constant"):
        cp.squash(torch.ones(3), constant=bad)


# ----------------------------------------------------------------------------- soft K-Means

def test_hard_kmeans_is_lloyd_as_in_scikit_learn():
    from sklearn.cluster import KMeans

    u, init = blobs()
    hard = cp.soft_kmeans(u, 3, temperature=math.inf, n_iters=20, init=init)
    ref = KMeans(3, init=init.numpy(), n_init=1, max_iter=20, tol=0.0, algorithm="lloyd").fit(u.numpy())
    assert np.abs(ref.cluster_centers_ - hard.centers.numpy()).max() < TIGHT


def test_soft_kmeans_approaches_hard_as_temperature_grows():
    u, init = blobs()
    hard = cp.soft_kmeans(u, 3, temperature=math.inf, n_iters=20, init=init).centers
    gaps = [(cp.soft_kmeans(u, 3, temperature=K, n_iters=20, init=init).centers - hard).abs().max().item()
            for K in (1.0, 10.0, 1e3)]
    assert gaps[0] > 1e-3  # K = 1 is visibly soft
    assert gaps[0] > gaps[1] > gaps[2] or gaps[2] == 0.0
    assert gaps[2] <= 1e-8  # K = 10³: Lloyd's centres


def test_normalized_dot_large_temperature_is_the_hard_sum_hand_case():
    # k=2, n=3, d=2: centres point along x and y; points 0, 2 side with x, point 1 with y.
    u = torch.tensor([[2.0, 0.5], [0.1, 1.0], [1.0, -0.3]], dtype=torch.float64)
    init = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    one = cp.soft_kmeans(u, 2, distance="normalized_dot", temperature=1e4, n_iters=1, init=init)
    expected = torch.stack([u[0] + u[2], u[1]])
    assert (one.centers - expected).abs().max() < 1e-12
    hard = cp.soft_kmeans(u, 2, distance="normalized_dot", temperature=math.inf, n_iters=1, init=init)
    assert torch.equal(hard.centers, expected)


def test_normalized_dot_large_temperature_equals_argmax_sums_random():
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(40, 3, dtype=torch.float64, generator=gen)
    init = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    out = cp.soft_kmeans(u, 4, distance="normalized_dot", temperature=1e4, n_iters=1, init=init).centers
    owner = (u @ (init / init.norm(dim=1, keepdim=True)).T).argmax(1)
    expected = torch.stack([u[owner == j].sum(0) for j in range(4)])
    assert (out - expected).abs().max() < 1e-10


@pytest.mark.parametrize("distance", cp.DISTANCES)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0, 10.0])
def test_smoothed_objective_never_increases(distance, temperature):
    u, init = blobs(seed=1, spread=1.0)
    res = cp.soft_kmeans(u, 3, distance=distance, temperature=temperature, n_iters=30, init=init)
    assert res.objective.shape == (31,)
    assert (res.objective.diff() <= 1e-9).all()
    assert torch.allclose(res.assignments.sum(-1), torch.ones(len(u), dtype=torch.float64))


def test_objective_is_eq6_and_tends_to_eq2():
    u, init = blobs()
    dist = cp.distances(u, init)
    naive = -sum(math.log(sum(math.exp(-2.0 * dist[i, j].item()) for j in range(3))) for i in range(len(u))) / 2.0
    assert abs(cp.smoothed_objective(dist, 2.0).item() - naive) < 1e-9
    hard = dist.min(1).values.sum().item()
    assert abs(cp.smoothed_objective(dist, 1e4).item() - hard) < 1e-3
    assert cp.smoothed_objective(dist, math.inf).item() == pytest.approx(hard, abs=1e-12)


def test_duplicating_inputs_doubles_sum_centre_keeps_mean_centre():
    u, init = blobs(seed=2)
    twice = torch.cat([u, u])
    for distance, factor in (("normalized_dot", 2.0), ("euclidean", 1.0)):
        one = cp.soft_kmeans(u, 3, distance=distance, n_iters=5, init=init).centers
        two = cp.soft_kmeans(twice, 3, distance=distance, n_iters=5, init=init).centers
        assert (two - factor * one).abs().max() < 1e-10


def test_uniform_init_cannot_separate_clusters_and_sample_init_is_seeded():
    u, _ = blobs()
    same = cp.soft_kmeans(u, 3, n_iters=10, init="uniform").centers
    assert (same - same[0]).abs().max() < 1e-12  # problem (i): identical centres stay identical
    a = cp.soft_kmeans(u, 3, n_iters=3, generator=torch.Generator().manual_seed(5)).history[:, 0]
    b = cp.soft_kmeans(u, 3, n_iters=3, generator=torch.Generator().manual_seed(5)).history[:, 0]
    assert torch.equal(a, b)


def test_soft_kmeans_batched_equals_one_by_one():
    u = torch.randn(4, 25, 2, dtype=torch.float64)
    init = u[:, :3].clone()
    batched = cp.soft_kmeans(u, 3, distance="normalized_dot", n_iters=4, init=init)
    for b in range(4):
        single = cp.soft_kmeans(u[b], 3, distance="normalized_dot", n_iters=4, init=init[b])
        assert (batched.centers[b] - single.centers).abs().max() < 1e-12


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_iters=0), "n_iters"), (dict(n_iters=2.5), "n_iters"), (dict(temperature=0.0), "temperature"),
    (dict(temperature=-1.0), "temperature"), (dict(distance="cosine"), "distance"),
    (dict(init=torch.zeros(2, 2)), "init"), (dict(init="kmeans++"), "init"),
])
def test_soft_kmeans_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cp.soft_kmeans(torch.randn(10, 2), 3, **kwargs)


# ----------------------------------------------------------------------------- routing: a NumPy reference

def numpy_routing(u_hat: np.ndarray, method: str, n_iters: int, temperature: float = 1.0,
                  constant: float = 1.0) -> np.ndarray:
    """The post's table, one example, loops over inputs i and outputs j. u_hat: (n, k, d) → (k, d)."""
    n, k, d = u_hat.shape

    def sq(s):
        norm = math.sqrt(s @ s + cp.EPS)
        return s * norm / (constant + norm * norm)

    b = np.zeros((n, k))
    for r in range(n_iters):
        c = np.full((n, k), 1.0 / k) if r == 0 else np.exp(temperature * b) / np.exp(temperature * b).sum(1, keepdims=True)
        s = np.array([sum(c[i, j] * u_hat[i, j] for i in range(n)) for j in range(k)])
        if r == n_iters - 1:
            break
        for j in range(k):
            target = s[j] / math.sqrt(s[j] @ s[j] + cp.EPS) if method == "kmeans" else sq(s[j])
            for i in range(n):
                agreement = u_hat[i, j] @ target
                b[i, j] = b[i, j] + agreement if method == "sabour" else agreement
    return np.array([sq(s[j]) for j in range(k)])


@pytest.mark.parametrize("method", cp.METHODS)
@pytest.mark.parametrize("n_iters", [1, 3, 5])
def test_vectorised_routing_equals_per_example_loop(method, n_iters):
    u_hat = random_u_hat(b=3, n=20, k=5, d=4)
    ours = cp.dynamic_routing(u_hat, method=method, n_iters=n_iters, temperature=1.5, squash_constant=0.5).v
    for b in range(3):
        ref = numpy_routing(u_hat[b].numpy(), method, n_iters, 1.5, 0.5)
        assert np.abs(ours[b].numpy() - ref).max() < TIGHT


@pytest.mark.parametrize("method", cp.METHODS)
def test_couplings_sum_to_one_over_outputs_and_start_uniform(method):
    u_hat = random_u_hat()
    res = cp.dynamic_routing(u_hat, method=method, n_iters=4)
    assert res.couplings.shape == (3, 4, 20, 5) and res.centers.shape == (3, 4, 5, 4)
    assert (res.couplings.sum(-1) - 1).abs().max() < 1e-12  # over outputs j, not inputs i
    assert (res.couplings.sum(-2) - 1).abs().max() > 1e-2  # (and not over inputs)
    assert torch.allclose(res.couplings[:, 0], torch.full_like(res.couplings[:, 0], 0.2))
    assert torch.allclose(res.v, cp.squash(res.s))


@pytest.mark.parametrize("method", cp.METHODS)
def test_routing_is_finite_for_zero_predictions(method):
    # a dead input (all-zero ReLU features) gives s_j = 0: s/‖s‖ and squash must stay finite, values and grads
    u_hat = torch.zeros(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    res = cp.dynamic_routing(u_hat, method=method, n_iters=3)
    (grad,) = torch.autograd.grad(res.v.sum(), u_hat)
    assert torch.equal(res.v, torch.zeros_like(res.v))
    assert torch.isfinite(res.couplings).all() and torch.isfinite(grad).all()


def test_logits_start_afresh_for_every_example():
    u_hat = random_u_hat(b=4)
    batched = cp.dynamic_routing(u_hat, method="sabour", n_iters=3).v
    alone = torch.cat([cp.dynamic_routing(u_hat[b:b + 1], method="sabour", n_iters=3).v for b in range(4)])
    assert (batched - alone).abs().max() < 1e-13
    again = cp.dynamic_routing(u_hat, method="sabour", n_iters=3).v  # no state kept between calls
    assert torch.equal(batched, again)


def test_shared_weights_are_permutation_invariant_fully_connected_not():
    torch.manual_seed(0)
    u = torch.randn(2, 12, 6, dtype=torch.float64)
    perm = torch.randperm(12)
    shared = cp.CapsuleLayer(6, 4, 5).double()
    full = cp.CapsuleLayer(6, 4, 5, shared=False, n_in=12).double()
    a, b = shared(u), shared(u[:, perm])
    assert (a.v - b.v).abs().max() < 1e-12
    assert (a.couplings[:, :, perm] - b.couplings).abs().max() < 1e-12
    assert (full(u).v - full(u[:, perm]).v).abs().max() > 1e-2


def test_temperature_is_absorbed_by_scaling_predictions():
    u_hat = random_u_hat(scale=0.3)
    K = 2.5
    hot = cp.dynamic_routing(u_hat, method="kmeans", n_iters=4, temperature=K, eps=0.0)
    scaled = cp.dynamic_routing(K * u_hat, method="kmeans", n_iters=4, temperature=1.0, eps=0.0)
    assert (hot.couplings - scaled.couplings).abs().max() < 1e-12
    assert (scaled.s - K * hot.s).abs().max() < 1e-12


@pytest.mark.parametrize("method", ["su4819", "sabour"])
def test_squash_inside_the_loop_does_not_absorb_the_temperature(method):
    u_hat = random_u_hat(scale=0.3)
    a = cp.dynamic_routing(u_hat, method=method, n_iters=4, temperature=2.5).couplings
    b = cp.dynamic_routing(2.5 * u_hat, method=method, n_iters=4).couplings
    assert (a - b).abs().max() > 1e-4


def test_accumulated_logits_harden_assigned_logits_settle():
    u_hat = random_u_hat(b=4, n=64, k=10, d=16, scale=0.2)

    def entropy(method, r):
        return cp.coupling_entropy(cp.dynamic_routing(u_hat, method=method, n_iters=r).couplings[:, -1]).mean()

    sabour = [entropy("sabour", r).item() for r in (2, 10, 30, 100)]
    assigned = [entropy("su4819", r).item() for r in (2, 10, 30, 100)]
    assert all(a > b for a, b in zip(sabour, sabour[1:]))  # effective temperature K = r keeps growing
    assert sabour[-1] < 0.1 * math.log(10)
    assert abs(assigned[-1] - assigned[-2]) < 1e-6 and assigned[-1] > 0.9 * math.log(10)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_routing_objective_never_increases_and_couplings_converge(temperature):
    torch.manual_seed(1)
    layer = cp.CapsuleLayer(8, 10, 16, method="kmeans", n_iters=300, temperature=temperature).double()
    u = torch.randn(3, 30, 8, dtype=torch.float64)
    with torch.no_grad():
        res = layer(u)
        objective = cp.routing_objective(layer.predictions(u), res.centers, temperature)
    assert (objective.diff(dim=1) <= 1e-9).all()
    change = (res.couplings[:, 1:] - res.couplings[:, :-1]).abs().amax(dim=(0, 2, 3))  # max |Δc| per step
    assert change[-1] < 1e-5 < change[0]


def test_hard_routing_is_the_argmax_sum():
    u_hat = random_u_hat(b=2, n=15, k=3, d=2)
    res = cp.dynamic_routing(u_hat, method="kmeans", n_iters=2, temperature=math.inf)
    s0 = u_hat.sum(1) / 3  # uniform start: (1/k) Σ_i û_j|i
    owner = torch.einsum("bijd,bjd->bij", u_hat, cp.normalize(s0)).argmax(-1)
    expected = torch.stack([torch.stack([u_hat[b, owner[b] == j, j].sum(0) for j in range(3)]) for b in range(2)])
    assert (res.s - expected).abs().max() < 1e-12


# ----------------------------------------------------------------------------- derivatives

def test_normalised_dot_gradient_formula_and_its_zero_set():
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(5, dtype=torch.float64, generator=gen)
    v = torch.randn(5, dtype=torch.float64, generator=gen, requires_grad=True)
    (torch.dot(u, v / v.norm())).backward()
    formula = u / v.norm() - torch.dot(u, v) * v / v.norm() ** 3
    assert (v.grad - formula.detach()).abs().max() < 1e-12
    # Σ_i c_i ⟨u_i, v/‖v‖⟩ is stationary exactly where v points along s = Σ_i c_i u_i
    us = torch.randn(7, 5, dtype=torch.float64, generator=gen)
    c = torch.rand(7, dtype=torch.float64, generator=gen)
    s = (c[:, None] * us).sum(0)

    def grad_at(w):
        w = w.clone().requires_grad_(True)
        (c * (us @ (w / w.norm()))).sum().backward()
        return w.grad

    assert grad_at(3.0 * s).abs().max() < 1e-12
    assert grad_at(s + torch.randn(5, dtype=torch.float64, generator=gen)).abs().max() > 1e-3


@pytest.mark.parametrize("method", cp.METHODS)
@pytest.mark.parametrize("shared", [True, False])
def test_routing_layer_passes_gradcheck(method, shared):
    torch.manual_seed(0)
    layer = cp.CapsuleLayer(3, 2, 2, shared=shared, n_in=4, method=method, n_iters=3).double()
    u = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: cp.dynamic_routing(
        torch.einsum("jed,bid->bije" if shared else "ijed,bid->bije", w, x), method=method).v,
        (u, layer.weight.detach().clone().requires_grad_(True)))


def test_detach_changes_gradients_not_values():
    u_hat = random_u_hat(b=2, n=6, k=3, d=2).requires_grad_(True)
    grads = {}
    for detach in (False, True):
        res = cp.dynamic_routing(u_hat, n_iters=3, detach=detach)
        (g,) = torch.autograd.grad(res.v.pow(2).sum(), u_hat)
        grads[detach] = (res.v.detach(), g)
    assert (grads[False][0] - grads[True][0]).abs().max() < 1e-14
    assert (grads[False][1] - grads[True][1]).abs().max() > 1e-4
    # with detach the couplings are constants: the gradient is that of Σ_i c_ij û_j|i alone
    res = cp.dynamic_routing(u_hat, n_iters=3)
    c = res.couplings[:, -1].detach()
    (g_const,) = torch.autograd.grad(cp.squash(torch.einsum("bij,bijd->bjd", c, u_hat)).pow(2).sum(), u_hat)
    assert (g_const - grads[True][1]).abs().max() < 1e-12


# ----------------------------------------------------------------------------- the post's warm-ups

def test_unrolled_fixed_point_inverts_y_plus_cos_y():
    x = torch.linspace(0.0, 3.0, 13, dtype=torch.float64)
    y = x.clone()
    for _ in range(200):
        y = x - torch.cos(y)  # y_{n+1} = x − cos y_n, a contraction where |sin y| < 1 near the root
    assert (y + torch.cos(y) - x).abs().max() < 1e-10
    y3 = x.clone()
    for _ in range(3):
        y3 = x - torch.cos(y3)
    assert (y3 - y).abs().max() < 0.5 * (x - y).abs().max()  # 3 unrolled steps: more than halfway there


def test_self_consistent_attention_pooling_from_the_mean():
    gen = torch.Generator().manual_seed(0)
    xs = 0.5 * torch.randn(20, 4, dtype=torch.float64, generator=gen)
    x = xs.mean(0)
    for _ in range(60):
        x = torch.softmax(xs @ x, 0) @ xs  # x = Σ_i softmax_i⟨x, x_i⟩ x_i
    assert (torch.softmax(xs @ x, 0) @ xs - x).abs().max() < 1e-10


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, name", [
    (dict(n_iters=0), "n_iters"), (dict(temperature=0.0), "temperature"), (dict(temperature=-2.0), "temperature"),
    (dict(method="em"), "method"), (dict(squash_constant=0.0), "squash_constant"),
    (dict(n_iters=True), "n_iters"),
])
def test_routing_rejects_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cp.dynamic_routing(random_u_hat(), **kwargs)
    with pytest.raises(ValueError, match=name):
        cp.CapsuleLayer(4, 3, 2, **kwargs)


def test_routing_rejects_bad_shapes():
    with pytest.raises(ValueError, match="u_hat"):
        cp.dynamic_routing(torch.randn(3, 4, 5))
    layer = cp.CapsuleLayer(8, 3, 4)
    with pytest.raises(ValueError, match="in_dim=8"):
        layer(torch.randn(2, 5, 7))  # capsule dimension mismatch
    full = cp.CapsuleLayer(8, 3, 4, shared=False, n_in=5)
    with pytest.raises(ValueError, match="n_in=5"):
        full(torch.randn(2, 6, 8))
    with pytest.raises(ValueError, match="n_in"):
        cp.CapsuleLayer(8, 3, 4, shared=False)
    with pytest.raises(ValueError, match="out_dim"):
        cp.CapsuleLayer(8, 3, 0)


@pytest.mark.parametrize("temperature", [0.0, -1.0, -math.inf, math.nan, True])
def test_soft_assign_and_objective_reject_non_positive_temperature(temperature):
    dist = torch.rand(6, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="temperature"):
        cp.soft_assign(dist, temperature)
    with pytest.raises(ValueError, match="temperature"):
        cp.smoothed_objective(dist, temperature)


@pytest.mark.parametrize("kwargs, name", [
    (dict(in_dim=True), "in_dim"), (dict(out_caps=True), "out_caps"), (dict(out_dim=False), "out_dim"),
])
def test_capsule_layer_rejects_booleans_for_counts(kwargs, name):
    args = dict(in_dim=4, out_caps=3, out_dim=2) | kwargs
    with pytest.raises(ValueError, match=name):
        cp.CapsuleLayer(args.pop("in_dim"), args.pop("out_caps"), args.pop("out_dim"))


def test_soft_kmeans_rejects_boolean_k():
    with pytest.raises(ValueError, match="k must"):
        cp.soft_kmeans(torch.randn(10, 2), True)


# ----------------------------------------------------------------------------- the routing ablation's control

def test_uniform_control_is_the_kmeans_net_trained_without_routing():
    from dlnotes.capsules import capsnet as cn, experiment as ce
    assert "uniform" in ce.FULL.models and "uniform" not in ce.QUICK.models
    kmeans, control = ce.build_model("kmeans", ce.QUICK), ce.build_model("uniform", ce.QUICK)
    assert ce.QUICK.n_iters == 3 and kmeans.capsules.n_iters == 3 and control.capsules.n_iters == 1
    assert cn.count_parameters(control) == cn.count_parameters(kmeans)
    control.load_state_dict(kmeans.state_dict())  # same weights: only the routing differs
    x = torch.rand(2, 1, 28, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        c = control(x).routing.couplings  # (B, 1, n, 10)
        routed = kmeans(x)
    assert c.shape[1] == 1 and (c - 0.1).abs().max() < 1e-6  # uniform couplings: no clustering
    assert (routed.routing.couplings[:, -1] - 0.1).abs().max() > 1e-3  # the routed net moves them
