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
``DLNOTES_BOOK_HTML=<folder>`` tests an existing build instead of building the book.

The reader's side (issue 10), on every page at 1280×900, light and dark:

- visible code cells have at most 30 lines and never scroll sideways or leave the column, the
  page itself never scrolls sideways, and a folded cell's code is one click away;
- axe-core reports no violation of impact "serious" or "critical", in light and in dark mode
  (its colour-contrast rule covers prose, tables and code);
- every plotly figure has a title and a title on each axis that shows tick labels; images have
  alt text or a figure caption; the text of figures (checked against the figure's paper or plot
  background) and equations (which axe cannot see) reach 4.5:1 contrast in both modes.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from _book_server import (
    BOOK,
    CHROMIUM_ARGS,
    GENERATED_PAGES,
    built_book_html,
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
    """Build the book with ``python tasks.py book`` in the current environment.

    ``DLNOTES_BOOK_HTML=<folder>`` tests an HTML build that already exists there instead.
    """
    html, why = built_book_html()
    if html is None:
        pytest.fail(why, pytrace=False)
    return html


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


# --------------------------------------------------------------------------- the reader's side
# Issue 10: code that teaches, accessible pages, dark mode. Each page is opened again, in light
# and in dark mode, at 1280×900.

MAX_CODE_LINES = 30
MIN_CONTRAST = 4.5  # WCAG AA for body text
MIN_CONTRAST_LARGE = 3.0  # 24 px, or 18.66 px bold
AXE_IMPACTS = ("serious", "critical")
MODES = ("light", "dark")

# Code cells as the reader sees them: visible inputs (folded ones sit in a closed <details>).
CODE_CELLS_JS = r"""
() => {
  const visible = (el) => el.getClientRects().length > 0 && !el.closest("details:not([open])");
  const cells = [...document.querySelectorAll("div.cell")];
  const out = {visible: [], folded: [], pageScroll: 0};
  cells.forEach((cell, i) => {
    const input = cell.querySelector(".cell_input");
    if (!input) return;
    const pre = input.querySelector("pre");
    if (!pre) return;
    const lines = pre.textContent.replace(/\n+$/, "").split("\n").length;
    const first = pre.textContent.trim().split("\n")[0].slice(0, 60);
    if (visible(pre)) {
      const col = cell.closest("article, .bd-article, main") || document.body;
      out.visible.push({i, lines, first,
        overflow: Math.max(0, pre.scrollWidth - pre.clientWidth),
        beyondColumn: Math.max(0, Math.round(input.getBoundingClientRect().right
                                              - col.getBoundingClientRect().right))});
    } else {
      const details = pre.closest("details");
      const summary = details ? details.querySelector(":scope > summary") : null;
      out.folded.push({i, lines, first, summary: !!summary && summary.getClientRects().length > 0});
    }
  });
  const doc = document.scrollingElement || document.documentElement;
  out.pageScroll = Math.max(0, doc.scrollWidth - window.innerWidth);
  return out;
}
"""

# Colour helpers shared by the contrast checks: any CSS colour to [r, g, b, a], alpha
# compositing, the effective background behind an element, and the WCAG contrast ratio.
COLOUR_JS = r"""
const ctx = document.createElement("canvas").getContext("2d");
const parse = (c) => {
  if (!c) return [0, 0, 0, 0];
  const m = String(c).match(/rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:[,\s/]+([\d.]+%?))?\s*\)/);
  if (m) {
    let a = m[4] === undefined ? 1 : (m[4].endsWith("%") ? parseFloat(m[4]) / 100 : parseFloat(m[4]));
    return [+m[1], +m[2], +m[3], a];
  }
  ctx.fillStyle = "#000"; ctx.fillStyle = String(c);
  const s = ctx.fillStyle;
  if (s.startsWith("#")) return [1, 3, 5].map((k) => parseInt(s.slice(k, k + 2), 16)).concat([1]);
  return parse(s);
};
const over = (top, below) => {  // top composited over an opaque colour below
  const a = top[3];
  return [0, 1, 2].map((k) => top[k] * a + below[k] * (1 - a)).concat([1]);
};
const background = (el) => {  // the opaque colour behind an element (ignores background images)
  const layers = [];
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c[3] > 0) layers.push(c);
    if (c[3] >= 1) break;
  }
  let bg = [255, 255, 255, 1];
  for (const c of layers.reverse()) bg = over(c, bg);
  return bg;
};
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const contrast = (a, b) => {
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
"""

# Figures: a title and labelled axes, and enough contrast between their text and background.
FIGURES_JS = r"""
() => {
  """ + COLOUR_JS + r"""
  const figures = [];
  document.querySelectorAll("div.plotly-graph-div").forEach((gd, n) => {
    const full = gd._fullLayout;
    if (!full) return;
    const title = (full.title && full.title.text) || gd.getAttribute("aria-label") || "";
    const unlabelled = [];
    Object.keys(full).filter((k) => /^[xy]axis\d*$/.test(k)).forEach((k) => {
      const ax = full[k];
      if (ax.visible === false || !ax.showticklabels) return;
      if (!(ax.title && String(ax.title.text || "").trim())) unlabelled.push(k);
    });
    const pageBg = background(gd);
    const paper = over(parse(full.paper_bgcolor), pageBg);
    const plot = over(parse(full.plot_bgcolor), paper);
    const box = gd.getBoundingClientRect();
    const s = full._size || {l: 0, t: 0, w: 0, h: 0};
    const low = [];
    let checked = 0;
    gd.querySelectorAll(".main-svg text").forEach((t) => {
      if (!t.textContent.trim() || t.closest(".trace, .mlayer, .hoverlayer")) return;  // data labels sit on the data
      const st = getComputedStyle(t);
      if (st.display === "none" || st.visibility === "hidden" || parseFloat(st.opacity) === 0) return;
      const r = t.getBoundingClientRect();
      if (!r.width) return;
      const cx = r.left + r.width / 2 - box.left, cy = r.top + r.height / 2 - box.top;
      const inside = cx > s.l && cx < s.l + s.w && cy > s.t && cy < s.t + s.h;
      // Annotations inside the plot area sit on the data (heatmap cells, bars), whose colour
      // under the text is not known here: only those with a background of their own are checked.
      const note = t.closest(".annotation");
      const noteBg = note && note.querySelector(".bg");
      const own = noteBg ? parse(getComputedStyle(noteBg).fill) : [0, 0, 0, 0];
      if (noteBg) own[3] *= parseFloat(getComputedStyle(noteBg).fillOpacity || "1");
      if (inside && note && own[3] < 1) return;
      let fill = parse(st.fill);
      fill[3] *= parseFloat(st.fillOpacity || "1");
      const bg = own[3] >= 1 ? own : (inside ? plot : paper);
      const ratio = contrast(over(fill, bg), bg);
      const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
      const needed = (size >= 24 || (bold && size >= 18.66)) ? __LARGE__ : __NORMAL__;
      checked++;
      if (ratio < needed) low.push(`${JSON.stringify(t.textContent.trim().slice(0, 30))}: ${ratio.toFixed(2)}`);
    });
    figures.push({n, id: gd.id, title: String(title).trim(), unlabelled, checked,
                  low: [...new Set(low)].slice(0, 8)});
  });
  const images = [...document.querySelectorAll(".cell_output img, article img")]
    .filter((img) => img.getClientRects().length)
    .map((img) => ({src: img.getAttribute("src") || "",
                    alt: (img.getAttribute("alt") || "").trim(),
                    caption: !!(img.closest("figure") && img.closest("figure").querySelector("figcaption"))}));
  return {figures, images};
}
""".replace("__LARGE__", str(MIN_CONTRAST_LARGE)).replace("__NORMAL__", str(MIN_CONTRAST))

# Text that axe cannot see: MathJax draws its glyphs in CSS pseudo-elements.
MATH_CONTRAST_JS = r"""
() => {
  """ + COLOUR_JS + r"""
  const low = [];
  document.querySelectorAll("mjx-container").forEach((m) => {
    if (!m.getClientRects().length) return;
    const bg = background(m);
    const ratio = contrast(over(parse(getComputedStyle(m).color), bg), bg);
    if (ratio < __NORMAL__) low.push(`${(m.textContent || m.getAttribute("aria-label") || "").slice(0, 30)}: ${ratio.toFixed(2)}`);
  });
  return {count: document.querySelectorAll("mjx-container").length, low: [...new Set(low)]};
}
""".replace("__NORMAL__", str(MIN_CONTRAST))


@pytest.fixture(scope="module")
def axe_script() -> str:
    try:
        from axe_playwright_python.base import AXE_SCRIPT
    except ImportError:
        pytest.skip("axe-playwright-python is not installed (pip install '.[test]')")
    return AXE_SCRIPT


def _open(browser, base_url: str, name: str, mode: str = "light"):
    """A settled page of the book (MathJax typeset, figures drawn) in ``mode``; returns (context, page)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block",
                                  color_scheme=mode)
    context.route("**/*", lambda r: r.continue_() if _is_local(r.request.url) else r.abort("blockedbyclient"))
    # pydata-sphinx-theme reads the reader's choice from localStorage before it paints.
    context.add_init_script(f"try {{ localStorage.setItem('mode', '{mode}'); "
                            f"localStorage.setItem('theme', '{mode}'); }} catch (e) {{}}")
    page = context.new_page()
    page.set_default_timeout(3 * TIMEOUT_MS)  # pages with many figures load slowly on a busy machine
    page.goto(base_url + f"{name}.html", wait_until="load")
    if name == "index":  # Jupyter Book's index.html only redirects to the root page
        page.wait_for_url(base_url + f"{TOC_PAGES[0]}.html", wait_until="load")
    page.evaluate(WAIT_MATHJAX_JS)
    try:
        page.wait_for_function(FIGURES_DRAWN_JS, timeout=TIMEOUT_MS)
    except Exception:  # test_page_renders_offline_and_cleanly reports undrawn figures
        pass
    page.wait_for_timeout(300)
    theme = page.evaluate("() => document.documentElement.dataset.theme || ''")
    if theme != mode:
        context.close()
        pytest.fail(f"{name}.html: asked for {mode} mode, the page shows {theme or 'no'} theme", pytrace=False)
    return context, page


def _built(built_book: Path, name: str) -> None:
    if not (built_book / f"{name}.html").exists():
        pytest.fail(f"{name}.html was not built", pytrace=False)


@pytest.mark.parametrize("name", PAGES)
def test_visible_code_fits_the_column_and_folded_code_is_one_click_away(name, browser, base_url, built_book):
    """Issue 10.1: no visible code cell over 30 lines or wider than its column at 1280 px."""
    _built(built_book, name)
    context, page = _open(browser, base_url, name)
    try:
        cells = page.evaluate(CODE_CELLS_JS)
        problems = []
        for c in cells["visible"]:
            where = f"code cell {c['i']} ({c['first']!r}...)"
            if c["lines"] > MAX_CODE_LINES:
                problems.append(f"{where}: {c['lines']} visible lines (at most {MAX_CODE_LINES}; fold drawing "
                                "code with the hide-input tag or move it into the package)")
            if c["overflow"] > 0:
                problems.append(f"{where}: scrolls sideways by {c['overflow']} px at 1280 px")
            if c["beyondColumn"] > 0:
                problems.append(f"{where}: reaches {c['beyondColumn']} px past the column")
        unreachable = [c["i"] for c in cells["folded"] if not c["summary"]]
        if unreachable:
            problems.append(f"folded code cells {unreachable} have no visible button to unfold them")
        if cells["pageScroll"] > 0:
            problems.append(f"the page scrolls sideways by {cells['pageScroll']} px")
        if cells["folded"] and not unreachable:  # one click shows the code
            first = cells["folded"][0]["i"]
            summary = page.locator("div.cell").nth(first).locator("details > summary").first
            summary.scroll_into_view_if_needed()
            summary.click()
            shown = page.locator("div.cell").nth(first).locator(".cell_input pre").first
            if not shown.is_visible():
                problems.append(f"clicking folded code cell {first}'s button did not show its code")
    finally:
        context.close()
    if problems:
        pytest.fail(f"{name}.html:\n- " + "\n- ".join(problems), pytrace=False)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_no_serious_violation(name, mode, browser, base_url, built_book, axe_script):
    """Issue 10.3/10.4: axe-core (WCAG 2.x A/AA rules, colour contrast included) in both modes."""
    _built(built_book, name)
    context, page = _open(browser, base_url, name, mode)
    try:
        page.evaluate(axe_script)
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    finally:
        context.close()
    bad = [v for v in result["violations"] if v.get("impact") in AXE_IMPACTS]
    if bad:
        lines = []
        for v in bad:
            targets = [" ".join(map(str, n["target"])) for n in v["nodes"][:4]]
            lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements): {v['help']}; e.g. {targets}")
        pytest.fail(f"{name}.html in {mode} mode, axe-core:\n- " + "\n- ".join(lines), pytrace=False)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PAGES)
def test_figures_and_equations_are_legible(name, mode, browser, base_url, built_book):
    """Issue 10.3/10.4: figures have titles and labelled axes, images have alt text or a caption,
    and figure text and equations contrast with what is behind them, in light and dark mode."""
    _built(built_book, name)
    context, page = _open(browser, base_url, name, mode)
    try:
        figs = page.evaluate(FIGURES_JS)
        maths = page.evaluate(MATH_CONTRAST_JS)
    finally:
        context.close()
    problems = []
    for f in figs["figures"]:
        where = f"figure {f['n']} ({f['title'][:40]!r})" if f["title"] else f"figure {f['n']}"
        if not f["title"] and mode == "light":
            problems.append(f"{where} has no title")
        if f["unlabelled"] and mode == "light":
            problems.append(f"{where}: axes without a title: {f['unlabelled']}")
        if f["low"]:
            problems.append(f"{where}: text below {MIN_CONTRAST}:1 contrast with its background: {f['low']}")
    if mode == "light":
        bare = [i["src"][-50:] for i in figs["images"] if not i["alt"] and not i["caption"]]
        if bare:
            problems.append(f"images with neither alt text nor a figure caption: {bare}")
    if maths["low"]:
        problems.append(f"equations below {MIN_CONTRAST}:1 contrast: {maths['low'][:8]}")
    if problems:
        pytest.fail(f"{name}.html in {mode} mode:\n- " + "\n- ".join(problems), pytrace=False)
