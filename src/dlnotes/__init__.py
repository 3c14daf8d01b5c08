"""dlnotes: the tested PyTorch code behind the dlnotes textbook.

Chapters import submodules explicitly, e.g. ``from dlnotes import vqvae``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from dlnotes import _book_mode  # noqa: E402  (sets up plotly only during book builds)

_book_mode.configure()
