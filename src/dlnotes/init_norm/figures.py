"""Plotly figures of the chapter (sliders over precomputed grids, so they work in static HTML)."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dlnotes.init_norm.propagation import log_norm_drift
from dlnotes.init_norm.sampling import trunc_normal_torch, trunc_normal_tf, truncation_factor

__all__ = ["truncation_figure", "matrix_figure", "drift_figure", "lines_slider", "quarter_circle",
           "adam_step_figure"]


def _frames_figure(frames: list[list[go.BaseTraceType]], labels: list[str], *, title: str, prefix: str,
                   xaxis: dict | None = None, yaxis: dict | None = None,
                   layouts: list[dict] | None = None) -> go.Figure:
    """A figure with one slider step per frame; ``layouts`` (one per frame) are applied with the frame."""
    fig = go.Figure(data=frames[0])
    fig.frames = [go.Frame(data=f, name=str(i), layout=None if layouts is None else layouts[i])
                  for i, f in enumerate(frames)]
    steps = [{"args": [[str(i)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
              "label": label, "method": "animate"} for i, label in enumerate(labels)]
    fig.update_layout(title=title, sliders=[{"steps": steps, "currentvalue": {"prefix": prefix}}],
                      xaxis=xaxis or {}, yaxis=yaxis or {}, margin={"t": 60})
    return fig


def truncation_figure(cuts=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0), *, n: int = 20_000, seed: int = 0) -> go.Figure:
    """Histograms of N(0,1) truncated at ±a (TF semantics, std 1) and torch's trunc_normal_(std=0.5) with the
    same absolute bounds, per slider value a; titles carry the empirical and theoretical variances."""
    gen = torch.Generator().manual_seed(seed)
    frames, labels = [], []
    for a in cuts:
        tf = trunc_normal_tf((n,), 1.0, cut=a, generator=gen).numpy()
        pt = trunc_normal_torch((n,), 0.5, -a, a, generator=gen).numpy()
        gamma = truncation_factor(a)
        frames.append([
            go.Histogram(x=np.round(tf, 3), histnorm="probability density", nbinsx=60, opacity=0.6,
                         name=f"TF: std 1, cut ±{a}σ (var {tf.var():.3f}, γ(a) = {gamma:.3f})"),
            go.Histogram(x=np.round(pt, 3), histnorm="probability density", nbinsx=60, opacity=0.6,
                         name=f"torch: std 0.5, bounds ±{a} (var {pt.var():.3f}, not 0.25·γ)"),
        ])
        labels.append(f"{a}")
    fig = _frames_figure(frames, labels, title="Truncated normals: cut in σ units (TF) vs absolute bounds (torch)",
                         prefix="a = ", xaxis={"range": [-3.2, 3.2], "title": "value"},
                         yaxis={"title": "density", "range": [0, 1.0]})
    fig.update_layout(barmode="overlay", legend={"y": -0.35})
    return fig


def quarter_circle(s: np.ndarray) -> np.ndarray:
    """Density of the singular values of an n × n matrix with iid N(0, 1/n) entries, n → ∞: √(4 − s²)/π."""
    return np.sqrt(np.clip(4 - s ** 2, 0, None)) / np.pi


def matrix_figure(sizes=(16, 64, 256, 1024), *, vectors: int = 400, seed: int = 0) -> go.Figure:
    """Per n: histogram of ‖Wx‖/‖x‖ over random x (band 1 ± 1/√(2n)) and of W's singular values vs the
    quarter-circle law; W has iid N(0, 1/n) entries."""
    gen = torch.Generator().manual_seed(seed)
    frames, labels = [], []
    grid = np.linspace(0, 2, 81)
    for n in sizes:
        w = torch.randn(n, n, generator=gen, dtype=torch.float64) / math.sqrt(n)
        x = torch.randn(vectors, n, generator=gen, dtype=torch.float64)
        ratio = ((x @ w.T).norm(dim=1) / x.norm(dim=1)).numpy()
        sv = torch.linalg.svdvals(w).numpy()
        frames.append([
            go.Histogram(x=np.round(ratio, 4), histnorm="probability density", nbinsx=40, opacity=0.6,
                         name=f"‖Wx‖/‖x‖ (std {ratio.std():.3f}, 1/√(2n) = {1 / math.sqrt(2 * n):.3f})"),
            go.Histogram(x=np.round(sv, 4), histnorm="probability density", nbinsx=40, opacity=0.6,
                         name="singular values of W"),
            go.Scatter(x=grid, y=np.round(quarter_circle(grid), 4), name="quarter-circle law", mode="lines"),
        ])
        labels.append(str(n))
    fig = _frames_figure(frames, labels, title="A Gaussian matrix keeps the norm of a fixed vector, but is no isometry",
                         prefix="n = ", xaxis={"range": [0, 2.2]}, yaxis={"title": "density", "range": [0, 6]})
    fig.update_layout(barmode="overlay", legend={"y": -0.35})
    return fig


def drift_figure(sizes=(16, 64, 256), *, depth: int = 64, vectors: int = 500, seed: int = 0) -> go.Figure:
    """Per n (slider): std over inputs of log(‖h_L‖/‖x‖) against the depth L through n × n layers,
    Gaussian (LeCun) vs orthogonal (``propagation.log_norm_drift``, one draw per n and rule), with the
    random-walk prediction √(L/(2n))."""
    gen = torch.Generator().manual_seed(seed)
    depths = np.arange(1, depth + 1)
    frames, labels, layouts = [], [], []
    for n in sizes:
        gauss = log_norm_drift(depth, n, vectors, "lecun", generator=gen).numpy()
        orth = log_norm_drift(depth, n, vectors, "orthogonal", generator=gen).numpy()
        pred = np.sqrt(depths / (2 * n))
        frames.append([
            go.Scatter(x=depths, y=np.round(gauss, 5), mode="lines+markers", name="Gaussian N(0, 1/n) (LeCun)"),
            go.Scatter(x=depths, y=np.round(pred, 5), mode="lines", line={"dash": "dash"},
                       name="random walk √(L/(2n))"),
            go.Scatter(x=depths, y=np.round(orth, 5), mode="lines+markers",
                       name=f"orthogonal (largest {orth.max():.0e}: rounding)"),
        ])
        labels.append(str(n))
        layouts.append({"yaxis": {"range": [0, 1.1 * max(gauss.max(), pred.max())],
                                  "title": "std over inputs of log(‖h_L‖/‖x‖)"}})
    fig = _frames_figure(frames, labels, title="Drift through depth: a Gaussian product walks, an orthogonal one "
                         "keeps every norm", prefix="n = ", xaxis={"title": "depth L"},
                         yaxis=layouts[0]["yaxis"], layouts=layouts)
    fig.update_layout(legend={"y": -0.3, "orientation": "h"})
    return fig


def lines_slider(curves: dict[str, dict[str, np.ndarray]], *, x_title: str, y_title: str, title: str,
                 prefix: str, log_y: bool = False, x: dict[str, np.ndarray] | None = None) -> go.Figure:
    """One frame per outer key of ``curves`` ({frame label: {line name: y}}), lines over 0, 1, 2, …"""
    frames, labels = [], []
    for label, lines in curves.items():
        traces = []
        for name, y in lines.items():
            y = np.asarray(y, dtype=float)
            xs = np.arange(len(y)) if x is None else x[label]
            traces.append(go.Scatter(x=xs, y=np.round(y, 5), name=name, mode="lines+markers"))
        frames.append(traces)
        labels.append(label)
    return _frames_figure(frames, labels, title=title, prefix=prefix, xaxis={"title": x_title},
                          yaxis={"title": y_title, "type": "log" if log_y else "linear"})


def adam_step_figure(widths, steps: dict[str, dict[str, torch.Tensor]], *, layer: int = 1) -> go.Figure:
    """Two log-log panels against width from ``first_adam_step``'s result ``steps``: the relative change of
    layer ``layer`` (1: the hidden width × width matrix) and the RMS change of the output after one Adam step,
    one line per set-up (the rescaled standard model drawn as markers: it lies on the NTK line)."""
    styles = {"ntk": dict(mode="lines+markers", name="NTK, rate η"),
              "standard": dict(mode="lines+markers", name="standard, rate η"),
              "standard-rescaled": dict(mode="markers", name="standard, rate η/√fan-in, ε·√fan-in",
                                        marker={"symbol": "x", "size": 10})}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("relative change of the hidden matrix, mean|ΔW|/mean|W|",
                                                        "RMS change of the output"))
    xs = [int(w) for w in widths]
    for setup, style in styles.items():
        color = {"ntk": "#1f77b4", "standard": "#d62728", "standard-rescaled": "#2ca02c"}[setup]
        rel = steps[setup]["relative_update"][:, layer].numpy()
        out = steps[setup]["output_change"].numpy()
        for col, ys in ((1, rel), (2, out)):
            fig.add_trace(go.Scatter(x=xs, y=np.round(ys, 6).tolist(), legendgroup=setup, showlegend=col == 1,
                                     line={"color": color}, **style), row=1, col=col)
    for col in (1, 2):
        fig.update_xaxes(type="log", title_text="width", row=1, col=col)
        fig.update_yaxes(type="log", row=1, col=col)
    fig.update_layout(title="One Adam step against width", legend={"y": -0.3, "orientation": "h"},
                      margin={"t": 80})
    return fig
