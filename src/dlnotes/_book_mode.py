"""Figure output while the book is being built.

During ``python tasks.py book`` the environment variable ``DLNOTES_BOOK_BUILD=1`` is set.
Then plotly figures are emitted as plain HTML that calls the one copy of plotly.js the book
serves itself (no inlined 4.8 MB library, no CDN MathJax, no autoplay), and ipywidgets are
replaced by a short note, since a static page has no kernel to drive them. Outside a book
build (Colab, Jupyter, nbval) nothing is changed and each front end keeps its own renderer.
"""
from __future__ import annotations

import os

BOOK_BUILD_ENV = "DLNOTES_BOOK_BUILD"
RENDERER_NAME = "dlnotes_book"


def in_book_build() -> bool:
    """True while the book's HTML is being built."""
    return os.environ.get(BOOK_BUILD_ENV, "") == "1"


def figure_html(fig) -> str:
    """The HTML fragment for one figure: a div and the script that draws it with the page's plotly.js."""
    import plotly.io as pio

    return pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        auto_play=False,
        config={"responsive": True, "displaylogo": False},
    )


def configure() -> None:
    """Register and select the book renderer when building the book; do nothing otherwise."""
    if not in_book_build():
        return
    try:
        import plotly.io as pio
        from plotly.io._base_renderers import MimetypeRenderer
    except ImportError:  # plotly is a dependency, but stay importable without it
        return

    class BookRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict):
            return {"text/html": figure_html(fig_dict)}

    pio.renderers[RENDERER_NAME] = BookRenderer()
    pio.renderers.default = RENDERER_NAME
