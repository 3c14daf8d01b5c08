"""Plotly helpers shared by the chapters: image grids, curves and figures with a step slider.

Every helper returns a ``plotly.graph_objects.Figure``; chapters call ``fig.show()``.
Sliders switch between precomputed frames in the browser, so they work in the static book.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dlnotes._book_mode import in_book_build


def _as_numpy(images) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    return np.asarray(images, dtype=np.float32)


def image_grid(images, *, ncols: int = 8, titles: Sequence[str] | None = None,
               title: str = "", zmax: float = 1.0, cell_px: int = 90) -> go.Figure:
    """A grid of images. images: (N, 1, H, W) or (N, H, W) grey, or (N, 3, H, W) RGB; values in [0, zmax]."""
    arr = _as_numpy(images)
    rgb = arr.ndim == 4 and arr.shape[1] == 3
    if arr.ndim == 4 and not rgb:
        if arr.shape[1] != 1:
            raise ValueError(f"images must have 1 or 3 channels, got shape {arr.shape}")
        arr = arr[:, 0]
    if arr.ndim != 3 and not rgb:
        raise ValueError(f"images must be (N, H, W), (N, 1, H, W) or (N, 3, H, W), got shape {arr.shape}")
    if rgb and (arr.min() < 0 or arr.max() > zmax):
        raise ValueError(f"RGB images must lie in [0, zmax = {zmax}], got values from {arr.min():.3g} to {arr.max():.3g}")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if titles is not None and len(titles) != len(arr):
        raise ValueError(f"titles must have one entry per image ({len(arr)}), got {len(titles)}")
    n = len(arr)
    if n == 0:
        raise ValueError(f"images must hold at least one image, got shape {arr.shape}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    title_px = 22 if titles else 4  # room between rows for the subplot titles
    top = 50 if title else 20
    height = nrows * (cell_px + title_px) + top + 10
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=list(titles) if titles else None,
                        horizontal_spacing=0.01,
                        vertical_spacing=min(title_px / (height - top - 10), 0.3) if nrows > 1 else 0.0)
    for i, img in enumerate(arr):
        if rgb:  # go.Image draws row 0 at the top; colours as 8-bit integers
            trace = go.Image(z=np.rint(img.transpose(1, 2, 0) * (255 / zmax)).astype(np.uint8),
                             hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>")
        else:
            trace = go.Heatmap(z=img[::-1], colorscale="gray_r", zmin=0, zmax=zmax, showscale=False,
                               hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>")
        fig.add_trace(trace, row=i // ncols + 1, col=i % ncols + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, constrain="domain")
    for i in range(n):  # square pixels in every panel
        suffix = "" if i == 0 else str(i + 1)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    fig.update_layout(title=title or None, height=height, autosize=True,
                      margin=dict(l=10, r=10, t=top, b=10))
    return fig


def curves(history, keys: Sequence[str] | None = None, *, x: Sequence[float] | None = None,
           log_x: bool = False, log_y: bool = False, title: str = "", x_title: str = "step",
           y_title: str = "") -> go.Figure:
    """Line plot of named series: a :class:`dlnotes.train.History` or a mapping name -> values.

    Every axis gets a title (readers and the accessibility test need one): without ``y_title``, the
    name of the only series, or "value" where several share the axis.
    """
    if hasattr(history, "metrics"):
        series: Mapping[str, Sequence[float]] = history.metrics
        x = history.steps if x is None else x
    else:
        series = history
    keys = list(series) if keys is None else list(keys)
    unknown = [k for k in keys if k not in series]
    if unknown:
        raise ValueError(f"keys {unknown} not in the history (have {list(series)})")
    fig = go.Figure()
    for key in keys:
        values = list(series[key])
        fig.add_trace(go.Scatter(x=list(x) if x is not None else list(range(len(values))), y=values,
                                 mode="lines+markers" if len(values) < 40 else "lines", name=key))
    y_title = y_title or (keys[0] if len(keys) == 1 else "value")
    fig.update_layout(title=title or None, xaxis_title=x_title, yaxis_title=y_title, height=380,
                      margin=dict(l=60, r=20, t=50 if title else 20, b=50))
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def slider(frames: Sequence[Sequence[go.BaseTraceType]], labels: Sequence[str], *, title: str = "",
           prefix: str = "step: ", layout: dict | None = None, active: int = 0) -> go.Figure:
    """A figure whose slider switches between precomputed sets of traces (no kernel needed).

    frames[i] is the list of traces shown at slider position i; every frame must hold the
    same number of traces. Nothing plays automatically.
    """
    if not frames:
        raise ValueError("frames must not be empty")
    if len(labels) != len(frames):
        raise ValueError(f"labels must have one entry per frame ({len(frames)}), got {len(labels)}")
    width = len(frames[0])
    if any(len(f) != width for f in frames):
        raise ValueError("every frame must hold the same number of traces")
    if not 0 <= active < len(frames):
        raise ValueError(f"active must be in 0..{len(frames) - 1}, got {active}")
    fig = go.Figure(data=list(frames[active]),
                    frames=[go.Frame(data=list(f), name=str(i)) for i, f in enumerate(frames)])
    steps = [dict(method="animate", label=str(label),
                  args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))])
             for i, label in enumerate(labels)]
    fig.update_layout(title=title or None, height=450, margin=dict(l=60, r=20, t=60, b=40),
                      sliders=[dict(active=active, currentvalue=dict(prefix=prefix), pad=dict(t=40),
                                    steps=steps)])
    if layout:
        fig.update_layout(**layout)
    return fig


def show_widget(widget, *args, note: str = "Live controls for this figure appear when the notebook "
                                           "runs in Jupyter or Colab.", **kwargs) -> None:
    """Display an ipywidgets control, or in the static book a one-line note in its place.

    ``widget`` is a widget, or a callable that builds one from ``*args, **kwargs`` (for instance
    ``show_widget(widgets.interactive, f, x=slider)``). A callable is not called in book builds, so
    ``interactive`` and the ``Output`` widget it holds are never built there: headless runners that
    mimic the ``Output`` widget (nbclient) can stall on it (jupyter/nbclient#312).
    """
    from IPython.display import Markdown, display

    if in_book_build():
        display(Markdown(f"*{note}*"))
        return
    if callable(widget):
        widget = widget(*args, **kwargs)
    elif args or kwargs:
        raise ValueError("show_widget: arguments are for a callable that builds the widget, got a widget")
    display(widget)
