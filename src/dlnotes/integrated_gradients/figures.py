"""Drawing helpers of the integrated-gradients chapter (plotly): heatmaps and grids of attribution maps."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["heat", "map_grid", "curve_panels"]


def heat(z, *, signed: bool = False, zmax: float | None = None, colorscale: str = "gray_r",
         **kwargs) -> go.Heatmap:
    """One heatmap trace of a 2-D map z (S, S), rows flipped so that the image stands upright.

    ``signed``: diverging red/blue scale symmetric about 0 (red = pushed the score up).
    """
    z = np.round(np.asarray(z, dtype=np.float64)[::-1], 4)
    if signed:
        a = zmax if zmax is not None else max(float(np.abs(z).max()), 1e-12)
        return go.Heatmap(z=z, colorscale="RdBu_r", zmin=-a, zmax=a, showscale=False, **kwargs)
    top = zmax if zmax is not None else (float(z.max()) or 1.0)
    return go.Heatmap(z=z, colorscale=colorscale, zmin=0, zmax=top, showscale=False, **kwargs)


def map_grid(columns: Mapping[str, object], *, signed: Sequence[str] = (), shared: Sequence[str] = (),
             title: str = "", cell: int = 110) -> go.Figure:
    """A grid of maps: one column per entry of ``columns`` (name -> array (R, S, S)), one row per example.

    Columns named in ``signed`` use the diverging scale; columns named in ``shared`` share one colour
    range (the largest absolute value among them), the others get one range per map.
    """
    names = list(columns)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    n_rows = len(next(iter(arrays.values())))
    top = max((float(np.abs(arrays[k]).max()) for k in shared), default=None)
    fig = make_subplots(rows=n_rows, cols=len(names), column_titles=names, horizontal_spacing=0.01,
                        vertical_spacing=0.01)
    for r in range(n_rows):
        for c, name in enumerate(names, start=1):
            zmax = top if name in shared else None
            colours = "gray_r" if c == 1 else "Purples"
            fig.add_trace(heat(arrays[name][r], signed=name in signed, zmax=zmax, colorscale=colours),
                          row=r + 1, col=c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=cell * n_rows + 70, width=cell * len(names) + 40, title=title,
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def curve_panels(panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], *,
                 x_title: str = "", y_titles: Sequence[str] = (), log_x: bool = False, log_y: bool = False,
                 title: str = "", height: int = 400) -> go.Figure:
    """Side-by-side line charts: panels = {panel title: {curve name: (x, y)}}; legend shared by name."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f"]
    names = list(dict.fromkeys(n for curves in panels.values() for n in curves))
    colour = {n: palette[i % len(palette)] for i, n in enumerate(names)}
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels))
    for col, curves in enumerate(panels.values(), start=1):
        for name, (x, y) in curves.items():
            fig.add_trace(go.Scatter(x=list(x), y=np.round(np.asarray(y, dtype=np.float64), 5).tolist(),
                                     name=name, legendgroup=name, showlegend=col == 1,
                                     line=dict(color=colour[name])), row=1, col=col)
        if col - 1 < len(y_titles):
            fig.update_yaxes(title_text=y_titles[col - 1], row=1, col=col)
    fig.update_xaxes(title_text=x_title, type="log" if log_x else None)
    if log_y:
        fig.update_yaxes(type="log")
    fig.update_layout(height=height, title=title)
    return fig
