"""Helpers of the browser test: the book's page list, a local web server and Chromium's path.

Standard library only (plus PyYAML, a dependency of jupyter-book), so that importing this
module never fails where the browser test is to be skipped.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
HTML = BOOK / "_build" / "html"
BUILD_LOG_TAIL = 6000  # characters of a failed build's output that a failing test shows

# Pages Sphinx writes next to the chapters. They are not in the table of contents, but they
# load the same theme and scripts, so the browser test opens them too.
GENERATED_PAGES = ("index", "genindex", "search")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _toc_entries(node) -> Iterator[str]:
    """Every ``file:`` of a Jupyter Book table of contents, at any depth, in order."""
    if isinstance(node, dict):
        if "file" in node:
            yield str(node["file"])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                yield from _toc_entries(child)
    elif isinstance(node, list):
        for child in node:
            yield from _toc_entries(child)


def toc_pages(book: Path = BOOK) -> list[str]:
    """The book's pages as in ``_toc.yml``: the root first, names without extension."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    pages = [str(toc["root"])]
    pages += [p for p in _toc_entries(toc) if p not in pages]
    return [p[: -len(Path(p).suffix)] if Path(p).suffix in (".md", ".ipynb") else p for p in pages]


def page_source(name: str, book: Path = BOOK) -> Path | None:
    """The source file of a page (``.ipynb`` or ``.md``), or None."""
    for ext in (".ipynb", ".md"):
        if (book / f"{name}{ext}").exists():
            return book / f"{name}{ext}"
    return None


def chromium_path() -> str | None:
    """Debian's Chromium (``DLNOTES_CHROMIUM`` overrides), or None when it is not installed."""
    candidates = [os.environ.get("DLNOTES_CHROMIUM", ""), *CHROMIUM_CANDIDATES, shutil.which("chromium") or ""]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        # Browsers probe /favicon.ico on their own; the book has none, and a 404 would show as
        # a console error that no page caused. Pages that link an icon still get a real 404.
        if self.path == "/favicon.ico" and not (Path(self.directory) / "favicon.ico").exists():
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 at a free port; yields the base URL (ending in '/')."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def built_book_html() -> tuple[Path | None, str]:
    """The HTML book to test: ``DLNOTES_BOOK_HTML`` when set, else a build by ``python tasks.py book``.

    The build runs exactly as the documented command does, in the current environment, with no test
    budget or book mode leaking in (jupyter-cache keys on code only, so a quick-budget build would be
    served later). Returns ``(folder, "")``, or ``(None, why)`` when there is no book to test.
    """
    given = os.environ.get("DLNOTES_BOOK_HTML")
    if given:
        if not (Path(given) / "index.html").exists():
            return None, f"DLNOTES_BOOK_HTML={given} holds no index.html"
        return Path(given), ""
    env = dict(os.environ, DLNOTES_VENV=sys.prefix, OMP_WAIT_POLICY="PASSIVE")
    for name in ("DLNOTES_BUDGET", "DLNOTES_BOOK_BUILD"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "tasks.py", "book"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        return None, (f"`python tasks.py book` exited with {done.returncode}; the end of its output:\n"
                      + done.stdout[-BUILD_LOG_TAIL:])
    if not (HTML / "index.html").exists():
        return None, f"the build wrote no {HTML / 'index.html'}"
    return HTML, ""
