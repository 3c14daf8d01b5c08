"""Integrated gradients: quadrature rules, closed forms, the paper's axioms, captum, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlnotes import integrated_gradients as ig

TIGHT = 1e-10  # float64 closed forms


def tanh_mlp(d: int = 8, hidden: int = 16, classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, classes)).double().eval()


def relu_mlp(d: int = 6, hidden: int = 12, bias: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, hidden, bias=bias),
                         nn.ReLU(), nn.Linear(hidden, 1, bias=bias)).double().eval()


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3),
                         nn.Softplus(), nn.Flatten(), nn.Linear(8 * 2 * 2, 10)).eval()


# ----------------------------------------------------------------------------- quadrature rules

@pytest.mark.parametrize("method", ig.METHODS)
@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_weights_sum_to_one_and_nodes_lie_in_unit_interval(method, n):
    quad = ig.quadrature(method, n)
    assert quad.alphas.shape == quad.weights.shape == (n,)
    assert abs(quad.weights.sum().item() - 1.0) < 1e-14
    assert (quad.weights > 0).all()
    assert quad.alphas.min() >= 0 and quad.alphas.max() <= 1


def test_riemann_nodes_follow_their_definitions():
    m = 4
    assert ig.quadrature("riemann_left", m).alphas.tolist() == [0, 0.25, 0.5, 0.75]
    assert ig.quadrature("riemann_right", m).alphas.tolist() == [0.25, 0.5, 0.75, 1]
    assert ig.quadrature("riemann_middle", m).alphas.tolist() == [0.125, 0.375, 0.625, 0.875]
    trap = ig.quadrature("riemann_trapezoid", m)
    assert torch.allclose(trap.alphas, torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64))
    assert torch.allclose(trap.weights, torch.tensor([1 / 6, 1 / 3, 1 / 3, 1 / 6], dtype=torch.float64))


@pytest.mark.parametrize("method", ig.METHODS)
def test_rules_integrate_what_they_should_exactly(method):
    n = 5
    a, w = ig.quadrature(method, n)
    exact_degree = {"gausslegendre": 2 * n - 1, "riemann_middle": 1, "riemann_trapezoid": 1,
                    "riemann_left": 0, "riemann_right": 0}[method]
    for p in range(exact_degree + 1):
        assert abs((w * a**p).sum().item() - 1 / (p + 1)) < 1e-14
    assert abs((w * a ** (exact_degree + 1)).sum().item() - 1 / (exact_degree + 2)) > 1e-6


def test_captum_trapezoid_weights_sum_to_one_minus_one_over_n():
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters("riemann_trapezoid")
    for n in (2, 5, 50):
        assert abs(sum(step_sizes(n)) - (n - 1) / n) < 1e-12  # captum's rule is short by 1/n
        ours = ig.quadrature("riemann_trapezoid", n)
        assert np.allclose(alphas(n), ours.alphas.numpy(), atol=1e-7)
        assert np.allclose(step_sizes(n), ours.weights.numpy() * (n - 1) / n, atol=1e-15)


# ----------------------------------------------------------------------------- closed forms (float64)

@pytest.mark.parametrize("method", ig.METHODS)
@pytest.mark.parametrize("n", [2, 9])
def test_linear_model_gives_weight_times_difference(method, n):
    torch.manual_seed(1)
    w, c = torch.randn(5, dtype=torch.float64), 0.7
    x, x0 = torch.randn(4, 5, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64)
    res = ig.integrated_gradients(lambda z: z @ w + c, x, x0, n_steps=n, method=method)
    assert (res.attributions - w * (x - x0)).abs().max() < TIGHT
    assert res.gap.abs().max() < TIGHT
    assert (res.output_change - (x - x0) @ w).abs().max() < TIGHT


@pytest.mark.parametrize("method", ig.METHODS)
@pytest.mark.parametrize("n", [2, 3, 10])
def test_quadratic_model_matches_closed_form_of_each_rule(method, n):
    # F(x) = ½ xᵀAx + bᵀx: ∇F(γ(α)) = (Ax′ + b) + α A(x − x′), linear in α
    torch.manual_seed(2)
    d = 4
    m = torch.randn(d, d, dtype=torch.float64)
    A, b = m + m.T, torch.randn(d, dtype=torch.float64)
    x, x0 = torch.randn(3, d, dtype=torch.float64), torch.randn(3, d, dtype=torch.float64)
    F = lambda z: 0.5 * ((z @ A) * z).sum(1) + z @ b  # noqa: E731
    mean_alpha = {"riemann_left": (n - 1) / (2 * n), "riemann_right": (n + 1) / (2 * n)}.get(method, 0.5)
    expected = (x - x0) * (x0 @ A + b + mean_alpha * (x - x0) @ A)
    res = ig.integrated_gradients(F, x, x0, n_steps=n, method=method)
    assert (res.attributions - expected).abs().max() < TIGHT
    if mean_alpha == 0.5:  # exact rules: complete to rounding
        assert res.gap.abs().max() < TIGHT


def test_cubic_is_exact_for_gauss_legendre_but_not_midpoint():
    # F(x) = Σ c_i x_i³ is additive, so IG_i = c_i (x_i³ − x′_i³) exactly
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x, x0 = torch.tensor([[1.5, 0.3, -2.0]], dtype=torch.float64), torch.tensor([[0.2, -1.0, 1.0]],
                                                                                 dtype=torch.float64)
    F = lambda z: (c * z**3).sum(1)  # noqa: E731
    expected = c * (x**3 - x0**3)
    gl = ig.integrated_gradients(F, x, x0, n_steps=2, method="gausslegendre")
    mid = ig.integrated_gradients(F, x, x0, n_steps=2, method="riemann_middle")
    assert (gl.attributions - expected).abs().max() < TIGHT
    assert (mid.attributions - expected).abs().max() > 1e-3


# ----------------------------------------------------------------------------- convergence

def _gaps(model, x, x0, method, steps):
    return [ig.integrated_gradients(model, x, x0, target=0, n_steps=m, method=method).gap.abs().item()
            for m in steps]


def test_completeness_gap_shrinks_at_the_rate_of_each_rule():
    model = tanh_mlp()
    torch.manual_seed(3)
    x, x0 = torch.randn(1, 8, dtype=torch.float64), torch.zeros(1, 8, dtype=torch.float64)
    steps = [8, 16, 32, 64]
    logm = np.log(steps)
    for method, order in [("riemann_left", 1), ("riemann_right", 1), ("riemann_middle", 2),
                          ("riemann_trapezoid", 2)]:
        slope = np.polyfit(logm, np.log(_gaps(model, x, x0, method, steps)), 1)[0]
        assert -order - 0.3 < slope < -order + 0.3, (method, slope)
    gl = _gaps(model, x, x0, "gausslegendre", [4, 16])
    assert gl[0] > 1e-8 and gl[1] < 1e-10


def test_relu_network_integrand_is_piecewise_constant_and_gap_still_shrinks():
    model = relu_mlp()
    torch.manual_seed(4)
    x, x0 = torch.randn(1, 6, dtype=torch.float64), torch.zeros(1, 6, dtype=torch.float64)
    prof = ig.path_profile(model, x, x0, n_points=401)
    integrand = (prof.gradients[0] * (x - x0)).sum(1)  # dF(γ(α))/dα at each α, (P,)
    jumps = (integrand.diff().abs() > 1e-9).sum().item()
    assert 1 <= jumps <= 24  # constant between the few kinks of the ReLUs along the line
    mid = _gaps(model, x, x0, "riemann_middle", [8, 512])
    assert mid[1] < mid[0] or mid[0] < 1e-12


# ----------------------------------------------------------------------------- the paper's examples

@pytest.mark.parametrize("m", [10, 50, 300])
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle"])
def test_saturating_toy_gradient_is_zero_but_ig_is_one(m, method):
    f = lambda z: 1 - torch.relu(1 - z[:, 0])  # noqa: E731
    x = torch.tensor([[2.0]], dtype=torch.float64)
    assert ig.gradient(f, x).item() == 0.0
    res = ig.integrated_gradients(f, x, 0.0, n_steps=m, method=method)
    assert abs(res.attributions.item() - 1.0) < TIGHT


def test_min_example_and_axis_paths_give_shapley_shubik():
    f = lambda z: torch.minimum(z[:, 0], z[:, 1])  # noqa: E731
    x = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    res = ig.integrated_gradients(f, x, 0.0, n_steps=8)
    assert torch.allclose(res.attributions, torch.tensor([[1.0, 0.0]], dtype=torch.float64), atol=TIGHT)
    # axis-parallel paths: the integrand jumps at α = 1/3, which six midpoints split exactly
    axis = dict(n_steps=6, method="riemann_middle")
    first_x1 = ig.path_integrated_gradients(f, x, 0.0, via=[torch.tensor([[1.0, 0.0]], dtype=torch.float64)],
                                            **axis)
    first_x2 = ig.path_integrated_gradients(f, x, 0.0, via=[torch.tensor([[0.0, 3.0]], dtype=torch.float64)],
                                            **axis)
    assert torch.allclose(first_x1.attributions, torch.tensor([[0.0, 1.0]], dtype=torch.float64), atol=TIGHT)
    assert torch.allclose(first_x2.attributions, torch.tensor([[1.0, 0.0]], dtype=torch.float64), atol=TIGHT)
    shapley = (first_x1.attributions + first_x2.attributions) / 2
    assert torch.allclose(shapley, torch.tensor([[0.5, 0.5]], dtype=torch.float64), atol=TIGHT)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle"])
def test_paper_appendix_toy(method):
    f = lambda z: torch.relu(torch.relu(z[:, 0]) - 1 - torch.relu(z[:, 1]))  # noqa: E731
    res = ig.integrated_gradients(f, torch.tensor([[3.0, 1.0]], dtype=torch.float64), 0.0, n_steps=50,
                                  method=method)
    assert torch.allclose(res.attributions, torch.tensor([[1.5, -0.5]], dtype=torch.float64), atol=TIGHT)
    assert abs(res.output_change.item() - 1.0) < TIGHT and abs(res.gap.item()) < TIGHT


# ----------------------------------------------------------------------------- axioms

def test_implementation_invariance_for_different_networks_computing_the_same_function():
    torch.manual_seed(5)
    a, b, c = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, dtype=torch.float64), 3.7
    g1 = lambda z: torch.relu(z @ a.T) @ b  # noqa: E731
    g2 = lambda z: torch.relu(z @ (c * a).T) @ (b / c)  # noqa: E731  (ReLU(cu) = c ReLU(u), c > 0)
    identity = lambda u: torch.relu(u) - torch.relu(-u)  # noqa: E731  an extra layer that changes nothing
    g3 = lambda z: torch.relu(identity(z) @ a.T) @ b  # noqa: E731
    x, x0 = torch.randn(5, 3, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    assert (g1(x) - g2(x)).abs().max() < TIGHT
    r1, r2, r3 = (ig.integrated_gradients(g, x, x0, n_steps=32) for g in (g1, g2, g3))
    assert (r1.attributions - r2.attributions).abs().max() < 1e-12
    assert (r1.attributions - r3.attributions).abs().max() < 1e-12
    assert (ig.gradient(g1, x) - ig.gradient(g2, x)).abs().max() < 1e-12


def test_linearity_dummy_and_symmetry():
    f1, f2 = tanh_mlp(seed=1), tanh_mlp(seed=2)
    torch.manual_seed(6)
    x, x0 = torch.randn(3, 8, dtype=torch.float64), torch.zeros(1, 8, dtype=torch.float64)
    both = lambda z: 2.0 * f1(z)[:, 0] - 0.5 * f2(z)[:, 0]  # noqa: E731
    for method in ("gausslegendre", "riemann_left"):
        lhs = ig.integrated_gradients(both, x, x0, n_steps=7, method=method).attributions
        rhs = (2.0 * ig.integrated_gradients(f1, x, x0, target=0, n_steps=7, method=method).attributions
               - 0.5 * ig.integrated_gradients(f2, x, x0, target=0, n_steps=7, method=method).attributions)
        assert (lhs - rhs).abs().max() < 1e-12
    dummy = ig.integrated_gradients(lambda z: torch.tanh(z[:, 0] * z[:, 1]), torch.randn(4, 3,
                                    dtype=torch.float64), 0.0, n_steps=9)
    assert (dummy.attributions[:, 2] == 0).all()  # x_3 is never used: exactly zero
    sym = lambda z: torch.tanh(z[:, 0] * z[:, 1] + z[:, 0] + z[:, 1]) + z[:, 2] ** 3  # noqa: E731
    xs = torch.tensor([[0.7, 0.7, -1.2]], dtype=torch.float64)
    a = ig.integrated_gradients(sym, xs, 0.0, n_steps=16).attributions
    assert abs(a[0, 0] - a[0, 1]) < 1e-12 and abs(a[0, 0]) > 1e-3


def test_gradient_times_input_is_ig_for_bias_free_relu_nets_and_linear_models():
    model = relu_mlp(bias=False)
    torch.manual_seed(7)
    x = torch.randn(4, 6, dtype=torch.float64)
    res = ig.integrated_gradients(model, x, 0.0, n_steps=20)
    gxi = ig.gradient_times_input(model, x)
    assert (res.attributions - x * ig.gradient(model, x)).abs().max() < 1e-12
    assert (gxi.attributions - x * ig.gradient(model, x)).abs().max() < 1e-12
    w = torch.randn(6, dtype=torch.float64)
    x0 = torch.randn(1, 6, dtype=torch.float64)
    lin = ig.gradient_times_input(lambda z: z @ w, x, x0)
    assert (lin.attributions - w * (x - x0)).abs().max() < TIGHT and lin.gap.abs().max() < TIGHT


def test_gradient_times_input_gap_is_the_first_order_remainder():
    f = lambda z: (z**2).sum(1)  # noqa: E731  F(x) − F(0) = |x|², ∇F(x)·x = 2|x|²
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    res = ig.gradient_times_input(f, x)
    assert abs(res.attributions.sum().item() - 10.0) < TIGHT
    assert abs(res.gap.item() - (5.0 - 10.0)) < TIGHT


def test_alpha_weighted_variant_totals_half_the_change_on_a_linear_model():
    torch.manual_seed(8)
    w, x = torch.randn(5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    res = ig.alpha_weighted_gradients(lambda z: z @ w + 1.0, x, n_steps=20)
    assert (res.attributions.sum(1) - 0.5 * res.output_change).abs().max() < TIGHT
    assert (res.attributions - 0.5 * w * x).abs().max() < TIGHT


# ----------------------------------------------------------------------------- batching

@pytest.mark.parametrize("chunk", [1, 3, 5, 11, 34, 35, 1000])
def test_internal_batch_size_does_not_change_the_result(chunk):
    model = tanh_mlp()
    torch.manual_seed(9)
    x, x0 = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    target = [0, 2, 1, 1, 0]
    full = ig.integrated_gradients(model, x, x0, target=target, n_steps=7)
    part = ig.integrated_gradients(model, x, x0, target=target, n_steps=7, internal_batch_size=chunk)
    assert (full.attributions - part.attributions).abs().max() < 1e-14
    assert (full.gap - part.gap).abs().max() < 1e-14


def test_batching_is_exact_in_eval_mode_but_not_with_batchnorm_in_train_mode():
    torch.manual_seed(10)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))
    model.train()
    for _ in range(3):  # give the running statistics something other than their initial values
        model(torch.randn(32, 4))
    x = torch.randn(6, 4)
    model.eval()
    one_batch = ig.integrated_gradients(model, x, target=1, n_steps=10).attributions
    per_point = ig.integrated_gradients(model, x, target=1, n_steps=10, internal_batch_size=1).attributions
    assert (one_batch - per_point).abs().max() <= 1e-6 * one_batch.abs().max()
    model.train()
    one_batch_t = ig.integrated_gradients(model, x, target=1, n_steps=10).attributions
    per_step_t = ig.integrated_gradients(model, x, target=1, n_steps=10, internal_batch_size=6).attributions
    assert (one_batch_t - per_step_t).abs().max() > 1e-3


def test_per_example_targets_match_one_call_per_example():
    model = tanh_mlp()
    torch.manual_seed(11)
    x = torch.randn(3, 8, dtype=torch.float64)
    batch = ig.integrated_gradients(model, x, target=torch.tensor([2, 0, 1]), n_steps=9)
    for i, t in enumerate([2, 0, 1]):
        single = ig.integrated_gradients(model, x[i:i + 1], target=t, n_steps=9)
        assert (batch.attributions[i] - single.attributions[0]).abs().max() < 1e-14
        assert abs(batch.gap[i] - single.gap[0]) < 1e-14


def test_works_inside_no_grad_and_leaves_inputs_alone():
    model = tanh_mlp()
    x = torch.randn(2, 8, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        res = ig.integrated_gradients(model, x, target=0, n_steps=5)
    assert res.attributions.shape == x.shape and not res.attributions.requires_grad and x.grad is None


def test_one_scalar_feature_per_example_inputs_of_shape_b():
    # inputs (B,) with forward (B,) -> (B,): F(x) = x³ on the cubic's exact rule
    x = torch.tensor([2.0, -0.5, 1.5], dtype=torch.float64)
    res = ig.integrated_gradients(lambda z: z**3, x, 0.5, n_steps=2)
    assert res.attributions.shape == x.shape
    assert (res.attributions - (x**3 - 0.5**3)).abs().max() < TIGHT and res.gap.abs().max() < TIGHT


# ----------------------------------------------------------------------------- path variant and profile

def test_polygon_path_is_complete_and_straight_polygon_is_ig():
    model = tanh_mlp()
    torch.manual_seed(12)
    x, x0 = torch.randn(2, 8, dtype=torch.float64), torch.zeros(1, 8, dtype=torch.float64)
    bend = torch.randn(2, 8, dtype=torch.float64)
    bent = ig.path_integrated_gradients(model, x, x0, via=[bend, 0.3], target=1, n_steps=40)
    straight = ig.integrated_gradients(model, x, x0, target=1, n_steps=40)
    assert bent.gap.abs().max() < 1e-10  # completeness holds on any path
    assert (bent.attributions - straight.attributions).abs().max() > 1e-3  # but the split depends on it
    on_line = ig.path_integrated_gradients(model, x, x0, via=[x0 + 0.5 * (x - x0)], target=1, n_steps=40)
    assert (on_line.attributions - straight.attributions).abs().max() < 1e-10


def test_path_profile_endpoints_and_cumulative_attribution():
    model = tanh_mlp()
    torch.manual_seed(13)
    x, x0 = torch.randn(2, 8, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64)
    prof = ig.path_profile(model, x, x0, target=2, n_points=33, internal_batch_size=7)
    assert prof.outputs.shape == (2, 33) and prof.cumulative.shape == (2, 33, 8)
    assert (prof.outputs[:, 0] - model(x0.expand(2, 8))[:, 2]).abs().max() < 1e-14
    assert (prof.outputs[:, -1] - model(x)[:, 2]).abs().max() < 1e-14
    assert (prof.gradients[:, -1] - ig.gradient(model, x, target=2)).abs().max() < 1e-14
    trap = ig.integrated_gradients(model, x, x0, target=2, n_steps=33, method="riemann_trapezoid")
    assert (prof.cumulative[:, -1] - trap.attributions).abs().max() < 1e-14
    running = prof.cumulative.sum(2)  # ≈ F(γ(α)) − F(x′) all along the path
    assert (running - (prof.outputs - prof.outputs[:, :1])).abs().max() < 1e-3


# ----------------------------------------------------------------------------- captum

@pytest.mark.parametrize("method", ig.METHODS)
def test_equal_to_captum_float32_cnn(method):
    from captum.attr import IntegratedGradients

    model = small_cnn()
    torch.manual_seed(14)
    x, x0 = torch.rand(3, 1, 8, 8), torch.rand(1, 1, 8, 8) * 0.2
    target = [3, 0, 7]
    n = 24
    ours = ig.integrated_gradients(model, x, x0, target=target, n_steps=n, method=method)
    theirs, delta = IntegratedGradients(model).attribute(x, x0, target=target, n_steps=n, method=method,
                                                         return_convergence_delta=True)
    scale = (n - 1) / n if method == "riemann_trapezoid" else 1.0  # captum's short trapezoid weights
    rel = (ours.attributions * scale - theirs).abs().max() / theirs.abs().max()
    assert rel <= 1e-6
    if method != "riemann_trapezoid":  # captum's delta = Σ attributions − ΔF = −(our gap)
        assert (ours.gap + delta).abs().max() <= 1e-6 * ours.output_change.abs().max()


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle"])
def test_equal_to_captum_float64_with_internal_batching(method):
    from captum.attr import IntegratedGradients

    model = tanh_mlp()
    torch.manual_seed(15)
    x = torch.randn(4, 8, dtype=torch.float64)
    ours = ig.integrated_gradients(model, x, 0.1, target=1, n_steps=30, method=method, internal_batch_size=40)
    theirs = IntegratedGradients(model).attribute(x, 0.1, target=1, n_steps=30, method=method,
                                                  internal_batch_size=40)
    # captum rounds its step sizes to float32, so agreement stops near 1e-8 relative
    assert (ours.attributions - theirs).abs().max() / theirs.abs().max() <= 1e-6


# ----------------------------------------------------------------------------- bad input

def _raises(match: str, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kwargs)


def test_bad_input_raises_value_error_naming_the_parameter():
    model = tanh_mlp()
    x = torch.randn(2, 8, dtype=torch.float64)
    run = ig.integrated_gradients
    _raises("baselines", run, model, x, torch.zeros(3, 8), target=0)
    _raises("baselines", run, model, x, torch.zeros(8, 1), target=0)
    _raises("n_steps", run, model, x, target=0, n_steps=0)
    _raises("n_steps", run, model, x, target=0, n_steps=2.5)
    _raises("n_steps", run, model, x, target=0, n_steps=1, method="riemann_trapezoid")
    _raises("method", run, model, x, target=0, method="simpson")
    _raises("target", run, model, x, target=3)
    _raises("target", run, model, x, target=-1)
    _raises("target", run, model, x, target=[0, 5])
    _raises("target", run, model, x, target=[0, 1, 2])
    _raises("target", run, model, x, target=1.0)
    _raises("target", run, model, x)  # forward gives 3 scores per example, no target chosen
    _raises("forward", run, lambda z: model(z)[:1], x, target=0)
    _raises("forward", run, lambda z: model(z).sum(), x)
    _raises("internal_batch_size", run, model, x, target=0, internal_batch_size=0)
    _raises("inputs", run, model, x.long(), target=0)
    _raises("via", ig.path_integrated_gradients, model, x, via=[torch.zeros(5)], target=0)
    _raises("n_points", ig.path_profile, model, x, target=0, n_points=1)
    _raises("n_steps", ig.alpha_weighted_gradients, model, x, target=0, n_steps=1)
    _raises("target", ig.gradient, model, x, target=9)


def test_gap_is_output_change_minus_total_attribution():
    model = tanh_mlp()
    x, x0 = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    res = ig.integrated_gradients(model, x, x0, target=1, n_steps=3, method="riemann_left")
    change = model(x)[:, 1] - model(x0)[:, 1]
    assert (res.output_change - change).abs().max() < 1e-14
    assert (res.gap - (change - res.attributions.sum(1))).abs().max() < 1e-14
    assert res.gap.abs().min() > 1e-6  # three left-Riemann points are visibly incomplete
    assert math.isfinite(res.gap.sum().item())


def test_saturation_picture_output_plateaus_and_gradient_vanishes_near_the_input():
    # saturation on the saturating unit: F(γ(α)) = min(2α, 1) rises, then sits flat with zero gradient
    prof = ig.path_profile(lambda z: 1 - torch.relu(1 - z[:, 0]), torch.tensor([[2.0]], dtype=torch.float64),
                           0.0, n_points=21)
    late = prof.alphas > 0.5
    assert torch.allclose(prof.outputs[0], torch.clamp(2 * prof.alphas, max=1.0), atol=1e-12)
    assert (prof.gradients[0, late] == 0).all() and (prof.gradients[0, prof.alphas < 0.5] == 1.0).all()


# ----------------------------------------------------------------------------- API details

def test_gap_is_minus_captums_convergence_delta():
    from captum.attr import IntegratedGradients

    torch.manual_seed(0)
    model = tanh_mlp()
    x = torch.randn(3, 8, dtype=torch.float64)
    ours = ig.integrated_gradients(model, x, 0.0, target=1, n_steps=7, method="riemann_left")
    _, delta = IntegratedGradients(model).attribute(x, torch.zeros_like(x), target=1, n_steps=7,
                                                    method="riemann_left", return_convergence_delta=True)
    assert ours.gap.abs().max() > 1e-6  # 7 left-Riemann steps leave a visible gap
    assert torch.allclose(ours.gap, -delta, atol=1e-12)


@pytest.mark.parametrize("forward", [
    lambda z: torch.ones(len(z), dtype=z.dtype),  # not connected to anything
    lambda z: torch.tanh(z.detach()).sum(1) * torch.ones(1, requires_grad=True, dtype=z.dtype),
])
def test_forward_that_detaches_its_input_is_reported(forward):
    x = torch.randn(2, 3, dtype=torch.float64)
    for run in (lambda: ig.integrated_gradients(forward, x, n_steps=4), lambda: ig.gradient(forward, x),
                lambda: ig.alpha_weighted_gradients(forward, x, n_steps=4),
                lambda: ig.path_profile(forward, x, n_points=3)):
        with pytest.raises(ValueError, match="detach"):
            run()


def test_saturating_unit_is_exact_only_for_even_symmetric_rules_at_the_kink():
    from dlnotes.integrated_gradients import models as am

    two, three = (torch.tensor([[v]], dtype=torch.float64) for v in (2.0, 3.0))
    for m in (10, 50):  # kink at alpha = 1/2, nodes symmetric about it: exactly half the weight below
        assert abs(ig.integrated_gradients(am.saturating_unit, two, n_steps=m).attributions.item() - 1) < 1e-12
    w_mid = ig.quadrature("gausslegendre", 11).weights[5].item()
    got = ig.integrated_gradients(am.saturating_unit, two, n_steps=11).attributions.item()
    assert abs(got - (1 - w_mid)) < 1e-12 and abs(got - 1) > 0.1  # the middle node sits on the kink
    err = [abs(ig.integrated_gradients(am.saturating_unit, three, n_steps=m).attributions.item() - 1)
           for m in (10, 300)]
    assert err[0] > 1e-3 and err[1] < err[0]  # kink at 1/3: no symmetry, error shrinks with m


# ----------------------------------------------------------------------------- evaluation and text

def test_rank_correlation_matches_scipy_and_respects_the_mask():
    from scipy.stats import spearmanr

    from dlnotes.integrated_gradients import evaluation as ev

    torch.manual_seed(0)
    a, b = torch.randn(3, 20), torch.randn(3, 20)
    b[0] = a[0].round()  # ties
    rho = ev.rank_correlation(a, b)
    for i in range(3):
        assert abs(rho[i].item() - spearmanr(a[i], b[i]).statistic) < 1e-10
    mask = torch.zeros(3, 20, dtype=torch.bool)
    mask[:, :5] = True
    assert abs(ev.rank_correlation(a, b, mask)[1].item() - spearmanr(a[1, :5], b[1, :5]).statistic) < 1e-10
    with pytest.raises(ValueError, match="mask"):
        ev.rank_correlation(a, b, torch.zeros(3, 20, dtype=torch.bool))


def test_perturbation_curves_on_a_linear_model():
    from dlnotes.integrated_gradients import evaluation as ev

    w = torch.tensor([3.0, 1.0, -1.0, 0.0], dtype=torch.float64)
    x = torch.ones(1, 4, dtype=torch.float64)
    c = ev.perturbation_curves(lambda z: z @ w, x, w.view(1, 4), 0.0, n_points=5)
    # deleting the components in the order 3, 1, 0, -1 leaves 3, 0, -1, -1, 0 of F(x) - F(0) = 3
    assert torch.allclose(c.deletion[0], torch.tensor([1.0, 0.0, -1 / 3, -1 / 3, 0.0], dtype=torch.float64))
    assert torch.allclose(c.insertion[0], 1 - c.deletion[0])
    worst = ev.perturbation_curves(lambda z: z @ w, x, -w.view(1, 4), 0.0, n_points=5)
    assert worst.deletion_area[0] > c.deletion_area[0] and worst.insertion_area[0] < c.insertion_area[0]
    with pytest.raises(ValueError, match="scores"):
        ev.perturbation_curves(lambda z: z @ w, x, w, 0.0)


def test_text_corpus_labels_follow_negation_and_the_classifier_learns_them():
    from dlnotes.integrated_gradients import text as tx

    corpus = tx.make_corpus(400, seed=3)
    assert corpus.tokens.shape == (400, 8) and set(corpus.labels.tolist()) == {0, 1}
    index = {w: i for i, w in enumerate(tx.VOCAB)}
    for i in range(50):
        words, score = corpus.words(i), 0
        for j, w in enumerate(words):
            if w in tx.POSITIVE or w in tx.NEGATIVE:
                v = 1 if w in tx.POSITIVE else -1
                k = j - 1
                if k >= 0 and words[k] == "very":
                    v, k = 2 * v, k - 1
                if k >= 0 and words[k] == "not":
                    v = -v
                score += v
        assert int(score > 0) == int(corpus.labels[i])
    assert index["not"] == len(tx.POSITIVE) + len(tx.NEGATIVE)
    model = tx.train_text_classifier(tx.make_corpus(1000, seed=1), steps=150, seed=0)
    test = tx.make_corpus(300, seed=999)
    with torch.no_grad():
        assert (model(test.tokens).argmax(1) == test.labels).float().mean() > 0.9
    signed, norm = tx.token_scores(torch.randn(2, 8, 16))
    assert signed.shape == norm.shape == (2, 8) and (norm * 16 ** 0.5 >= signed.abs() - 1e-6).all()
    with pytest.raises(ValueError, match="attributions"):
        tx.token_scores(torch.randn(8, 16))
