"""Plotly figures of the VAE chapter (drawing code kept out of the notebook); all static-HTML friendly."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dlnotes.vae.kl import gaussian_kl_parts

__all__ = ["tile", "tile_figure", "kl_panel", "kl_figure", "tile_slider", "kl_explorer", "gradient_histograms", "latent_scatter", "quantile_grid", "decode_path"]


def kl_panel(mu: float, logvar: float, n: int = 1000, seed: int = 0) -> tuple[list[go.BaseTraceType], str]:
    """Traces for one (μ, log σ²): both densities, the two KL parts (E6), a Monte-Carlo estimate ± 2 s.e."""
    grid = np.linspace(-6, 6, 241)
    sd = math.exp(0.5 * logvar)
    q = np.exp(-0.5 * ((grid - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    p = np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    parts = gaussian_kl_parts(torch.tensor([[mu]], dtype=torch.float64), torch.tensor([[logvar]], dtype=torch.float64))
    z = mu + sd * np.random.default_rng(seed).standard_normal(n)
    log_ratio = -0.5 * ((z - mu) / sd) ** 2 - 0.5 * logvar + 0.5 * z**2
    mc, se = log_ratio.mean(), log_ratio.std() / math.sqrt(n)
    traces = [
        go.Scatter(x=grid, y=np.round(q, 4), name="q(z|x) = N(μ, σ²)", line=dict(color="#1f77b4"), xaxis="x", yaxis="y"),
        go.Scatter(x=grid, y=np.round(p, 4), name="p(z) = N(0, 1)", line=dict(color="#7f7f7f", dash="dash"), xaxis="x", yaxis="y"),
        go.Bar(x=["closed form"], y=[round(parts.mean.item(), 4)], name="mean part ½μ²", marker_color="#ff7f0e", xaxis="x2", yaxis="y2"),
        go.Bar(x=["closed form"], y=[round(parts.variance.item(), 4)], name="variance part ½(σ²−log σ²−1)", marker_color="#2ca02c", xaxis="x2", yaxis="y2"),
        go.Bar(x=[f"Monte Carlo (n={n})"], y=[round(mc, 4)], error_y=dict(type="data", array=[round(2 * se, 4)]),
               name="Monte Carlo ± 2 s.e.", marker_color="#9467bd", xaxis="x2", yaxis="y2"),
    ]
    kl = parts.mean.item() + parts.variance.item()
    return traces, f"μ = {mu:+.1f}, log σ² = {logvar:+.1f}: KL = {kl:.3f} nats (Monte Carlo {mc:.3f} ± {2 * se:.3f})"


def _two_panel_layout(fig: go.Figure) -> None:
    fig.update_layout(xaxis=dict(domain=[0, 0.6], title="z"), yaxis=dict(title="density", range=[0, 1.3]),
                      xaxis2=dict(domain=[0.7, 1], anchor="y2", title="KL(q ‖ p)"), yaxis2=dict(anchor="x2", title="nats", range=[0, 6]),
                      barmode="stack", height=430, legend=dict(orientation="h", y=-0.2))


def kl_figure(mu: float, logvar: float, n: int = 1000, seed: int = 0) -> go.Figure:
    """The explorer's panel for one (μ, log σ²) (the live version behind the ipywidgets sliders)."""
    traces, title = kl_panel(mu, logvar, n, seed)
    fig = go.Figure(traces)
    _two_panel_layout(fig)
    fig.update_layout(title=title)
    return fig


def kl_explorer(mus=(-2.0, -1.0, 0.0, 1.0, 2.0), logvars=(-3.0, -1.0, 0.0, 1.0), n: int = 1000) -> go.Figure:
    """A slider over (μ, log σ²) pairs: the densities, the stacked KL parts and the Monte-Carlo estimate."""
    frames, labels, titles = [], [], []
    for lv in logvars:
        for mu in mus:
            traces, title = kl_panel(mu, lv, n)
            frames.append(traces), labels.append(f"{mu:+.0f},{lv:+.0f}"), titles.append(title)
    active = labels.index("+1,+0") if "+1,+0" in labels else 0
    fig = go.Figure(data=frames[active],
                    frames=[go.Frame(data=f, name=str(i), layout=dict(title=dict(text=t)))
                            for i, (f, t) in enumerate(zip(frames, titles))])
    steps = [dict(method="animate", label=lab, args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
             for i, lab in enumerate(labels)]
    _two_panel_layout(fig)
    fig.update_layout(title=titles[active], sliders=[dict(active=active, steps=steps, pad=dict(t=60),
                                                          currentvalue=dict(prefix="μ, log σ² = "))])
    return fig


def gradient_histograms(pathwise: dict[int, np.ndarray], score: dict[int, np.ndarray], truth: float) -> go.Figure:
    """Slider over the number of samples n: histograms of the two gradient estimators (repeated runs)."""
    frames, labels = [], []
    lo = min(np.percentile(v, 1) for v in score.values())
    hi = max(np.percentile(v, 99) for v in score.values())
    bins = dict(start=lo, end=hi, size=(hi - lo) / 60)
    for n in sorted(pathwise):
        frames.append([go.Histogram(x=np.round(pathwise[n], 3), xbins=bins, name="pathwise (reparameterised)", opacity=0.7),
                       go.Histogram(x=np.round(score[n], 3), xbins=bins, name="score function (REINFORCE)", opacity=0.7)])
        labels.append(str(n))
    fig = go.Figure(data=frames[0], frames=[go.Frame(data=f, name=str(i)) for i, f in enumerate(frames)])
    steps = [dict(method="animate", label=lab, args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
             for i, lab in enumerate(labels)]
    fig.update_layout(barmode="overlay", height=420, title=f"Estimates of d/dμ E[z²] (true value {truth:.2f})",
                      xaxis_title="estimate", yaxis_title="runs", sliders=[dict(steps=steps, currentvalue=dict(prefix="samples per estimate n = "))],
                      shapes=[dict(type="line", x0=truth, x1=truth, yref="paper", y0=0, y1=1, line=dict(dash="dot"))])
    return fig


def latent_scatter(mu: torch.Tensor, labels: torch.Tensor, title: str = "", max_points: int = 1000) -> go.Figure:
    """Test-set posterior means of a 2-D latent, coloured by digit."""
    mu, labels = mu[:max_points].numpy(), labels[:max_points].numpy()
    fig = go.Figure()
    for d in range(10):
        sel = labels == d
        fig.add_trace(go.Scattergl(x=np.round(mu[sel, 0], 3), y=np.round(mu[sel, 1], 3), mode="markers", name=str(d),
                                   marker=dict(size=5)))
    fig.update_layout(title=title or None, xaxis_title="μ₁", yaxis_title="μ₂", height=450, width=520,
                      legend_title="digit")
    return fig


def quantile_grid(n: int = 15, lo: float = 0.05, hi: float = 0.95) -> torch.Tensor:
    """Su's and Kingma & Welling's grid: z = Φ⁻¹(linspace(lo, hi, n)) on both axes: (n·n, 2), rows top to bottom.

    Needs 0 < lo < hi < 1 (Φ⁻¹ is infinite at 0 and 1) and a positive int n."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not 0 < lo < hi < 1:
        raise ValueError(f"lo and hi must satisfy 0 < lo < hi < 1 (quantiles 0 and 1 are infinite), got lo={lo!r}, hi={hi!r}")
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(lo, hi, n))
    z1, z2 = torch.meshgrid(q, q.flip(0), indexing="xy")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


def decode_path(images: torch.Tensor, labels: list[str], title: str = "") -> go.Figure:
    """A slider over decoded images (k, 1, S, S), one frame each."""
    frames = [[go.Heatmap(z=np.round(img[0].numpy()[::-1], 3), colorscale="gray_r", showscale=False, zmin=0, zmax=1)]
              for img in images]
    steps = [dict(method="animate", label=lab, args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
             for i, lab in enumerate(labels)]
    fig = go.Figure(data=frames[0], frames=[go.Frame(data=f, name=str(i)) for i, f in enumerate(frames)])
    fig.update_layout(title=title or None, width=380, height=440, xaxis=dict(visible=False),
                      yaxis=dict(visible=False, scaleanchor="x"), sliders=[dict(steps=steps, currentvalue=dict(prefix="z = "))])
    return fig


def decode_grid_sliders(images: torch.Tensor, z1: list[float], z2: list[float], title: str = "") -> go.Figure:
    """Two sliders that decode one point of a grid, static (no kernel): images (len(z2)·len(z1), 1, S, S) in
    [0, 1], row r and column c at index r·len(z1) + c holding the decode of (z1[c], z2[r]).

    One heatmap trace per row of the grid (z₂); the z₁ slider restyles every trace to its column c, the z₂
    slider shows only trace r, so the visible image is always (z1[c], z2[r]) whatever order they are moved in.
    """
    n1, n2 = len(z1), len(z2)
    if images.dim() != 4 or images.shape[0] != n1 * n2:
        raise ValueError(f"images must be (len(z1)·len(z2), 1, S, S) = ({n1 * n2}, 1, S, S), got {tuple(images.shape)}")
    arr = np.rint(images[:, 0].detach().cpu().numpy()[:, ::-1] * 9).astype(np.int8)  # ten grey levels
    c0, r0 = n1 // 2, n2 // 2

    def zs(c: int) -> list[np.ndarray]:
        return [arr[r * n1 + c] for r in range(n2)]

    fig = go.Figure([go.Heatmap(z=img, colorscale="gray_r", zmin=0, zmax=9, showscale=False, hoverinfo="skip",
                                visible=r == r0) for r, img in enumerate(zs(c0))])
    s1 = [dict(method="restyle", label=f"{v:.2f}", args=[{"z": zs(c)}]) for c, v in enumerate(z1)]
    s2 = [dict(method="restyle", label=f"{v:.2f}", args=[{"visible": [r == k for k in range(n2)]}])
          for r, v in enumerate(z2)]
    fig.update_layout(title=title or None, width=380, height=520, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      sliders=[dict(active=c0, steps=s1, currentvalue=dict(prefix="z₁ = "), y=0, pad=dict(t=10)),
                               dict(active=r0, steps=s2, currentvalue=dict(prefix="z₂ = "), y=-0.22, pad=dict(t=10))])
    return fig


def tile(images: torch.Tensor, ncols: int) -> np.ndarray:
    """(n, 1, h, w) -> one (rows·h, ncols·w) array, row-major (a 15×15 grid as one image)."""
    n, _, h, w = images.shape
    rows = -(-n // ncols)
    out = np.zeros((rows * h, ncols * w), dtype=np.float32)
    for i, img in enumerate(images[:, 0].detach().cpu().numpy()):
        r, c = divmod(i, ncols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return out


def tile_figure(images: torch.Tensor, ncols: int, title: str = "", size: int = 460) -> go.Figure:
    """One heatmap of tiled images in [0, 1], shown in ten grey levels (lighter than a subplot per image)."""
    arr = tile(images, ncols)
    fig = go.Figure(go.Heatmap(z=np.rint(arr[::-1] * 9).astype(np.int8), colorscale="gray_r", zmin=0, zmax=9,
                               showscale=False, hoverinfo="skip"))  # ten grey levels keep the page small
    fig.update_layout(title=title or None, width=size, height=size + 40, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"))
    return fig


def tile_slider(grids: list[torch.Tensor], ncols: int, labels: list[str], title: str = "", prefix: str = "",
                size: int = 360) -> go.Figure:
    """A slider over tiled image grids (each (n, 1, h, w) in [0, 1]), ten grey levels."""
    frames = [[go.Heatmap(z=np.rint(tile(g, ncols)[::-1] * 9).astype(np.int8), colorscale="gray_r", zmin=0, zmax=9,
                          showscale=False, hoverinfo="skip")] for g in grids]
    steps = [dict(method="animate", label=lab, args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
             for i, lab in enumerate(labels)]
    fig = go.Figure(data=frames[0], frames=[go.Frame(data=f, name=str(i)) for i, f in enumerate(frames)])
    fig.update_layout(title=title or None, width=size, height=size + 110, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      sliders=[dict(steps=steps, currentvalue=dict(prefix=prefix))])
    return fig
