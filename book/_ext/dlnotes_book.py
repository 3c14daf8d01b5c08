"""Sphinx extension of the dlnotes book: serve plotly.js and MathJax from the build itself.

- plotly.js is copied from the installed plotly wheel (the same version that wrote the
  figures) into ``_static/`` and loaded once per page, before the figures' scripts run.
- MathJax 3 is copied from the ``sphinx-mathjax-offline`` package, and ``mathjax_path``
  points at that copy, so no page asks a CDN for anything.
- A small stylesheet (``dlnotes.css``): code lines of 88 characters fit the column at 1280 px;
  figures keep their light background in dark mode, on
  purpose (plotly's default colours are chosen for it, and images are digits drawn dark on
  light), and the print layout keeps figures whole and hides their tool bars.
- The download menu of every page offers the whole book as one PDF (``tasks.py pdf`` writes
  it next to the HTML), besides the page's own source and the browser's print dialogue.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset, copy_asset_file

PLOTLY_JS = "plotly.min.js"
MATHJAX_DIR = "mathjax"
CSS_FILE = "dlnotes.css"
BOOK_PDF = "dlnotes.pdf"  # written by book/_ext/book_pdf.py (python3 tasks.py pdf)
CSS = """\
/* Figures keep a light background in dark mode, on purpose: their colours are chosen for it. */
html[data-theme="dark"] div.plotly-graph-div,
html[data-theme="dark"] .cell_output img {
  background-color: #ffffff;
  border-radius: 0.25rem;
}
/* Links on the tinted background of admonitions (exercises, notes): the theme's link blue reaches
   only 4.3:1 there in light mode; this darker blue keeps 7:1 (WCAG AA asks 4.5:1). */
html[data-theme="light"] .admonition a.reference,
html[data-theme="light"] div.admonition a { color: #0b4fae; }
/* At 1280 px an 88-character line of code (the book's limit) fits its column without scrolling:
   a narrower "on this page" sidebar and 13 px code. */
@media (min-width: 992px) {
  :root { --pst-sidebar-secondary: 13rem; }
}
div.cell_input pre, div.highlight pre { font-size: 0.8125rem; }
div.cell_input div.highlight pre { padding: 0.75rem; }
@media print {
  div.plotly-graph-div, .cell_output img, figure, table { break-inside: avoid; }
  .modebar-container, .dlnotes-skip-print { display: none !important; }
  /* Paper cannot scroll: long code lines wrap instead of being cut at the margin. */
  div.highlight pre { white-space: pre-wrap; overflow-wrap: anywhere; }
}
"""


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
    (static / CSS_FILE).write_text(CSS)


def _book_pdf_button(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Add "the whole book (.pdf)" to the theme's download menu, after the page's own entries."""
    for group in context.get("header_buttons") or []:
        if group.get("label") == "download-buttons":
            group["buttons"].append({
                "type": "link",
                "url": context["pathto"](BOOK_PDF, 1),
                "text": "book .pdf",
                "tooltip": "The whole book as one PDF",
                "icon": "fas fa-book",
                "label": "download-book-pdf-button",
            })


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


def _citation_list_items(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Give bibliography entries the ``listitem`` role their ``role="list"`` parent requires.

    Docutils marks each entry ``role="doc-biblioentry"``, a role DPUB-ARIA 1.1 deprecated and
    not a list item, which axe-core reports as a critical violation (aria-required-children).
    """
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure, priority=900)
    # Loaded synchronously in <head>: figures call Plotly.newPlot from inline scripts.
    app.add_js_file(PLOTLY_JS, priority=200)
    app.add_css_file(CSS_FILE, priority=900)
    # After sphinx-book-theme has filled its header buttons (priority 501).
    app.connect("html-page-context", _book_pdf_button, priority=600)
    app.connect("html-page-context", _citation_list_items)
    app.connect("build-finished", _copy_assets)
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    _plotly_js().stat()  # fail early with a clear error if plotly is missing
    _mathjax_dir()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
