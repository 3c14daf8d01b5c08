"""Sphinx extension of the dlnotes book: serve plotly.js and MathJax from the build itself.

- plotly.js is copied from the installed plotly wheel (the same version that wrote the
  figures) into ``_static/`` and loaded once per page, before the figures' scripts run.
- MathJax 3 is copied from the ``sphinx-mathjax-offline`` package, and ``mathjax_path``
  points at that copy, so no page asks a CDN for anything.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset, copy_asset_file

PLOTLY_JS = "plotly.min.js"
MATHJAX_DIR = "mathjax"


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / PLOTLY_JS


def _mathjax_dir() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the book needs the package sphinx-mathjax-offline (pip install '.[book]')")
    return Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"


def _copy_assets(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    copy_asset_file(str(_plotly_js()), str(static / PLOTLY_JS))
    copy_asset(str(_mathjax_dir()), str(static / MATHJAX_DIR))


def _configure(app: Sphinx, config) -> None:
    config.mathjax_path = f"{MATHJAX_DIR}/tex-chtml.js"


def _dedupe_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Drop repeated ``<script>`` tags from a page.

    Sphinx 7.4 adds an inline script registered after the builder started (sphinx-thebe's
    ``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector) twice, once with filename
    None and once with '', and the second ``const`` is a SyntaxError in the browser.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=900)
    # Loaded synchronously in <head>: figures call Plotly.newPlot from inline scripts.
    app.add_js_file(PLOTLY_JS, priority=200)
    app.connect("build-finished", _copy_assets)
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    _plotly_js().stat()  # fail early with a clear error if plotly is missing
    _mathjax_dir()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
