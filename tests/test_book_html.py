"""The built HTML book, opened page by page in headless Chromium.

The book is built exactly as ``python tasks.py book`` builds it, served from 127.0.0.1, and each
page of the table of contents (plus Sphinx's index, genindex and search pages) is opened in
Debian's Chromium driven by playwright. On every page:

- no console error and no uncaught page error, and every local file the page asks for exists;
- no request leaves the machine: requests to any host but 127.0.0.1/localhost are blocked
  and listed (a proxy that refuses everything backs this up for the browser's own traffic);
- every plotly figure drew its SVG, and a cell that calls ``.show()`` has a figure in its output;
- MathJax typeset every equation: each ``.math`` element holds an ``mjx-container``, no
  ``mjx-merror``, and no raw TeX delimiter (``$$``, ``\\(``, ``\\[``, ``\\begin{``) is left in the text;
- no cell output shows a traceback, an error, a warning or anything written to stderr;
- a plotly slider, where a page has one, moves the figure with no kernel behind the page.

Without Chromium the test is skipped, unless ``DLNOTES_REQUIRE_BROWSER=1`` (CI) makes that a
failure. ``DLNOTES_SCREENSHOTS=<folder>`` saves a full-page screenshot of each page there.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from _book_server import (
    BOOK,
    CHROMIUM_ARGS,
    GENERATED_PAGES,
    HTML,
    ROOT,
    chromium_path,
    page_source,
    serve,
    toc_pages,
)

TOC_PAGES = toc_pages()
PAGES = TOC_PAGES + [p for p in GENERATED_PAGES if p not in TOC_PAGES]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Pages that must show at least this many plotly figures (a guard against figures silently
# disappearing from the HTML, e.g. when a renderer change turns them into plain text).
MIN_FIGURES = {"how_to_read": 1}
FULL_BUDGET_TAG = "dlnotes-full-budget"  # book/CONVENTIONS.md: a cell whose figures need the full budget
TIMEOUT_MS = 30_000
BUILD_LOG_TAIL = 6000

# One pass over the rendered page, after MathJax and plotly are done.
INSPECT_JS = r"""
() => {
  const text = (el) => (el.innerText || el.textContent || "").trim();
  const short = (s) => s.replace(/\s+/g, " ").slice(0, 200);

  const figures = [...document.querySelectorAll("div.plotly-graph-div")].map((gd) => ({
    id: gd.id,
    drawn: gd.querySelector(".main-svg") !== null,
    sliders: (gd.layout && gd.layout.sliders ? gd.layout.sliders.length : 0),
  }));

  const maths = [...document.querySelectorAll(".math")];
  const untypeset = maths.filter((m) => !m.querySelector("mjx-container")).map((m) => short(text(m)));
  const merrors = [...document.querySelectorAll("mjx-merror")].map(
    (e) => short(e.getAttribute("data-mjx-error") || text(e)));

  // Prose text outside code, typeset math and scripts: raw TeX here was never typeset.
  const skip = "pre, code, script, style, textarea, mjx-container, .cell_input, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement && n.parentElement.closest(skip))
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  let prose = "";
  while (walker.nextNode()) prose += walker.currentNode.nodeValue + " ";

  const cells = [...document.querySelectorAll("div.cell")].map((cell) => {
    const out = cell.querySelector(".cell_output");
    return {
      figures: out ? out.querySelectorAll("div.plotly-graph-div").length : 0,
      images: out ? out.querySelectorAll("img").length : 0,
    };
  });

  const badOutputs = [];
  for (const out of document.querySelectorAll(".cell_output, .output")) {
    const flagged = out.matches(".stderr, .traceback, .error")
      || out.querySelector(".output.stderr, .output.traceback, .output.error, .stderr, .traceback") !== null;
    const t = text(out);
    const match = t.match(/Traceback \(most recent call last\)|\b\w*Warning: |\b\w+Error: |\bwarnings\.warn\b/);
    if (flagged || match) badOutputs.push(short(match ? t.slice(Math.max(0, match.index - 60)) : t));
  }

  return {
    title: document.title,
    mathjax: typeof window.MathJax === "object" && !!(window.MathJax.startup),
    figures, mathCount: maths.length, untypeset, merrors, prose, cells,
    badOutputs: [...new Set(badOutputs)],
  };
}
"""

WAIT_MATHJAX_JS = """
async () => {
  const ready = () => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  const wanted = document.querySelector(".math") !== null
    || [...document.scripts].some((s) => /mathjax/i.test(s.src));
  if (!wanted) return "not used";
  for (let i = 0; i < 400 && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!ready()) return "missing";
  await window.MathJax.startup.promise;
  return "ok";
}
"""

FIGURES_DRAWN_JS = """
() => [...document.querySelectorAll("div.plotly-graph-div")].every((gd) => gd.querySelector(".main-svg"))
"""

RAW_TEX = [
    ("$$", re.compile(r"\$\$")),
    ("\\( or \\)", re.compile(r"\\[()]")),
    ("\\[ or \\]", re.compile(r"\\[\[\]]")),
    ("\\begin{...}", re.compile(r"\\begin\{")),
    ("$...\\command...$", re.compile(r"\$[^$\s][^$]{0,200}?\\[A-Za-z]+[^$]{0,200}?\$")),
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path, reason = None, "the python package playwright is not installed (pip install '.[test]')"
    else:
        reason = "Chromium is not installed (Debian: apt-get install chromium)"
    if path is None:
        if os.environ.get("DLNOTES_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DLNOTES_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def built_book(chromium) -> Path:
    """Build the book with ``python tasks.py book`` in the current environment."""
    env = dict(os.environ)
    env["DLNOTES_VENV"] = sys.prefix  # never create or use another environment
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    # Build exactly as the documented command does: no test budget or book-mode leaking in
    # (jupyter-cache keys on code only, so a quick-budget build would be served later).
    for name in ("DLNOTES_BUDGET", "DLNOTES_BOOK_BUILD"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "tasks.py", "book"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        pytest.fail(f"`python tasks.py book` exited with {done.returncode}; the end of its output:\n"
                    + done.stdout[-BUILD_LOG_TAIL:], pytrace=False)
    assert (HTML / "index.html").exists(), f"the build wrote no {HTML / 'index.html'}"
    return HTML


@pytest.fixture(scope="module")
def base_url(built_book):
    with serve(built_book) as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            # Anything that gets past the request filter below goes to a closed port.
            proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"},
        )
        try:
            yield browser
        finally:
            browser.close()


# --------------------------------------------------------------------------- helpers


def _show_cells(name: str) -> tuple[list[int], int]:
    """Indices (among rendered code cells) of a notebook page's cells that call ``.show()``,
    and the number of rendered code cells."""
    source = page_source(name)
    if source is None or source.suffix != ".ipynb":
        return [], 0
    nb = json.loads(source.read_text())
    rendered = [c for c in nb["cells"] if c["cell_type"] == "code"
                and "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    shows = []
    for i, cell in enumerate(rendered):
        code = "\n".join(line.split("#", 1)[0] for line in "".join(cell["source"]).splitlines())
        tags = cell.get("metadata", {}).get("tags", [])
        top_level = re.search(r"^\S.*\.show\(\s*\)", code, re.M)
        # A figure drawn only inside a widget callback appears only where a kernel runs: in the
        # book, plotting.show_widget puts a note in its place.
        in_callback = re.search(r"\.show\(\s*\)", code) and "show_widget(" in code
        # A cell tagged dlnotes-full-budget draws its figures only with the full budget (the book: quick).
        if (top_level or (re.search(r"\.show\(\s*\)", code) and not in_callback)) \
                and "remove-output" not in tags and FULL_BUDGET_TAG not in tags:
            shows.append(i)
    return shows, len(rendered)


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS


def _settle(page, in_flight: set, quiet_ms: int = 500) -> None:
    """Wait until no request has been in flight for ``quiet_ms`` (at most TIMEOUT_MS).

    Playwright's "networkidle" is not used: it can wait forever on Chromium's own favicon probe.
    """
    quiet = 0
    for _ in range(TIMEOUT_MS // 100):
        page.wait_for_timeout(100)
        quiet = quiet + 100 if not in_flight else 0
        if quiet >= quiet_ms:
            return


PLOT_SIGNATURE_JS = """(id) => {
  // The figure's drawing without its slider and menus: changes only when the plotted data does.
  return [...document.getElementById(id).querySelectorAll(".main-svg")].map((svg) => {
    const copy = svg.cloneNode(true);
    copy.querySelectorAll(".slider-container, .updatemenu-container").forEach((n) => n.remove());
    return copy.innerHTML;
  }).join("");
}"""


def _move_slider(page) -> str | None:
    """Click the far end of the first plotly slider; return a problem, or None when the plot changed."""
    state_js = """() => {
      const gd = [...document.querySelectorAll("div.plotly-graph-div")].find(
        (g) => g.layout && g.layout.sliders && g.layout.sliders.length);
      return {id: gd.id, active: gd.layout.sliders[0].active || 0,
              steps: gd.layout.sliders[0].steps.length};
    }"""
    before = page.evaluate(state_js)
    if before["steps"] < 2:
        return None
    plot = page.evaluate(PLOT_SIGNATURE_JS, before["id"])
    rail = page.locator(f"[id='{before['id']}'] .slider-container .slider-rail-touch-rect").first
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    if box is None:
        return "the slider has no visible rail to click"
    end_x = box["x"] + box["width"] - 3 if before["active"] == 0 else box["x"] + 3
    page.mouse.click(end_x, box["y"] + box["height"] / 2)
    try:
        page.wait_for_function(f"([id, plot]) => ({PLOT_SIGNATURE_JS})(id) !== plot",
                               arg=[before["id"], plot], timeout=10_000)
    except Exception:  # playwright's TimeoutError
        return "clicking a slider step did not change the plotted figure"
    after = page.evaluate(state_js)
    if after["active"] == before["active"]:
        return f"the plot changed but the slider stayed at step {before['active']}"
    return None


# --------------------------------------------------------------------------- tests


def test_toc_pages_were_built(built_book):
    missing = [f"{name}.html" for name in PAGES if not (built_book / f"{name}.html").exists()]
    assert missing == [], f"pages of the table of contents missing from {built_book}: {missing}"


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_offline_and_cleanly(name, browser, base_url, built_book):
    if not (built_book / f"{name}.html").exists():
        pytest.fail(f"{name}.html was not built", pytrace=False)

    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    outside: list[str] = []
    requested: list[str] = []
    console_errors: list[str] = []
    page_errors: list[str] = []
    broken: list[str] = []

    def route(route):
        url = route.request.url
        if _is_local(url):
            route.continue_()
        else:
            outside.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("request", lambda r: requested.append(r.url))
    page.on("websocket", lambda ws: requested.append(ws.url))
    page.on("console", lambda m: console_errors.append(f"{m.text} ({m.location.get('url', '')})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("response", lambda r: broken.append(f"{r.status} {r.url}")
            if r.status >= 400 and _is_local(r.url) else None)
    page.on("requestfailed", lambda r: broken.append(f"{r.failure} {r.url}")
            if _is_local(r.url) else None)

    in_flight: set = set()
    page.on("request", lambda r: in_flight.add(r))
    page.on("requestfinished", lambda r: in_flight.discard(r))
    page.on("requestfailed", lambda r: in_flight.discard(r))

    problems: list[str] = []
    try:
        page.goto(base_url + f"{name}.html", wait_until="load")
        if name == "index":  # Jupyter Book's index.html only redirects to the root page
            page.wait_for_url(base_url + f"{TOC_PAGES[0]}.html", wait_until="load")
        mathjax = page.evaluate(WAIT_MATHJAX_JS)
        try:
            page.wait_for_function(FIGURES_DRAWN_JS, timeout=TIMEOUT_MS)
        except Exception:  # reported below, figure by figure
            pass
        _settle(page, in_flight)
        report = page.evaluate(INSPECT_JS)

        if mathjax == "missing":
            problems.append("the page has math but MathJax never started (MathJax.startup.promise missing)")
        # Figures
        undrawn = [f["id"] for f in report["figures"] if not f["drawn"]]
        if undrawn:
            problems.append(f"plotly figures that drew no SVG: {undrawn}")
        wanted = MIN_FIGURES.get(name, 0)
        if len(report["figures"]) < wanted:
            problems.append(f"{len(report['figures'])} plotly figures, expected at least {wanted}")
        shows, rendered = _show_cells(name)
        if shows and len(report["cells"]) == rendered:  # the page's cells are the notebook's
            empty = [i for i in shows if report["cells"][i]["figures"] + report["cells"][i]["images"] == 0]
            if empty:
                problems.append(f"code cells {empty} (counting code cells from 0) call .show() "
                                "but show no figure")
        elif shows:
            shown = sum(c["figures"] + c["images"] for c in report["cells"])
            if shown < len(shows):
                problems.append(f"{len(shows)} code cells call .show() but the page shows {shown} figures")
        # Math
        if report["untypeset"]:
            problems.append(f"{len(report['untypeset'])} of {report['mathCount']} equations not typeset "
                            f"by MathJax: {report['untypeset'][:5]}")
        if report["merrors"]:
            problems.append(f"MathJax errors: {report['merrors'][:5]}")
        for label, pattern in RAW_TEX:
            found = pattern.search(report["prose"])
            if found:
                at = found.start()
                problems.append(f"raw TeX ({label}) left in the text: "
                                f"...{report['prose'][max(0, at - 60): at + 80]!r}...")
        # Outputs
        if report["badOutputs"]:
            problems.append(f"cell outputs with a traceback, error, warning or stderr: {report['badOutputs']}")
        # Sliders (only where a figure has one)
        if any(f["sliders"] for f in report["figures"]):
            slider_problem = _move_slider(page)
            if slider_problem:
                problems.append(slider_problem)
        shots = os.environ.get("DLNOTES_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)
    finally:
        context.close()

    outside += [u for u in requested if not _is_local(u) and u not in outside]
    if outside:
        problems.append(f"requests to other hosts (blocked): {sorted(set(outside))}")
    if console_errors:
        problems.append(f"console errors: {console_errors}")
    if page_errors:
        problems.append(f"page errors: {page_errors}")
    if broken:
        problems.append(f"local files that failed to load: {sorted(set(broken))}")
    if problems:
        pytest.fail(f"{name}.html:\n- " + "\n- ".join(problems), pytrace=False)
