"""Print the built HTML book to one PDF with Chromium: ``python3 tasks.py pdf``.

Each page of ``_toc.yml`` is opened in the same Debian Chromium the browser test drives (served
from 127.0.0.1, nothing fetched from elsewhere), waited on until MathJax has typeset it and
every plotly figure has drawn, laid out at the printed column's width so figures are redrawn
to fit, and printed with the print stylesheet: sidebars and buttons are hidden, folded code
stays folded, plotly figures are SVG and so stay vectors. The pages are then merged behind a
table of contents, with a bookmark per chapter and a page number on every page.

Written next to the HTML (``book/_build/html/dlnotes.pdf``, offered by the download menu) and
a layout file (``book/_build/pdf/layout.json``, see :func:`layout_path`) naming each chapter's first page and each
figure's area on the page, which tests/test_pdf.py checks.
"""
from __future__ import annotations

import html
import io
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402
from _book_server import CHROMIUM_ARGS, HTML, chromium_path, serve, toc_pages  # noqa: E402

PDF_NAME = "dlnotes.pdf"  # also named by dlnotes_book.py's download-menu entry


def layout_path(html_dir: Path) -> Path:
    """Where the layout of the PDF printed from ``html_dir`` is written (``_build/pdf/layout.json``)."""
    return Path(html_dir).parent / "pdf" / "layout.json"

# A4 with 14 mm margins (16 mm below, where the page number goes); CSS pixels are 1/96 inch.
MARGIN_MM = {"top": 14, "bottom": 16, "left": 14, "right": 14}
COLUMN_PX = round((210 - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4 * 96)
MARK = "https://dlnotes-pdf-figure.invalid/"  # link target that marks a figure's area while printing
TIMEOUT_MS = 60_000

WAIT_READY_JS = """
async () => {
  for (let i = 0; i < 400 && document.querySelector(".math")
       && !(window.MathJax && window.MathJax.startup && window.MathJax.startup.promise); i++)
    await new Promise((r) => setTimeout(r, 50));
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise)
    await window.MathJax.startup.promise;
  for (let i = 0; i < 400; i++) {
    const figs = [...document.querySelectorAll("div.plotly-graph-div")];
    if (figs.every((gd) => gd.querySelector(".main-svg"))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
"""

# Redraw every plotly figure at the printed width and mark its area with a link, which Chromium
# turns into a PDF link annotation: the only way to learn where on which page a figure lands.
PREPARE_JS = """
async (mark) => {
  const figs = [...document.querySelectorAll("div.plotly-graph-div")];
  for (const gd of figs) {
    if (window.Plotly && gd.layout) { try { await window.Plotly.Plots.resize(gd); } catch (e) {} }
  }
  const areas = [...figs, ...document.querySelectorAll(".cell_output img, figure img")];
  areas.forEach((el, i) => {
    const a = document.createElement("a");
    a.href = mark + i;
    a.className = "dlnotes-pdf-mark";
    a.setAttribute("aria-hidden", "true");
    a.style.cssText = "position:absolute;inset:0;display:block;z-index:10;background:transparent";
    const box = el.tagName === "IMG" ? el.parentElement : el;
    if (getComputedStyle(box).position === "static") box.style.position = "relative";
    box.appendChild(a);
  });
  const h1 = document.querySelector("main h1, article h1, h1");
  const title = h1 ? h1.innerText.replace(/[#¶]\\s*$/, "").trim() : document.title;
  return {title, figures: areas.length};
}
"""

FOOTER = ('<div style="font-size:9px;font-family:sans-serif;width:100%;text-align:center;color:#444">'
          '<span class="pageNumber"></span></div>')


def _parts(book: Path) -> list[tuple[str, list[str]]]:
    """(caption, page names) of each part of ``_toc.yml``; the root page is a part of its own."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    strip = lambda f: str(f).rsplit(".", 1)[0] if str(f).endswith((".md", ".ipynb")) else str(f)  # noqa: E731
    names = toc_pages(book)
    parts = [("", [strip(toc["root"])])]
    for part in toc.get("parts") or [{"caption": "", "chapters": toc.get("chapters") or []}]:
        pages = [p for p in names if p in {strip(c["file"]) for c in _files(part)}]
        parts.append((part.get("caption", ""), pages))
    return parts


def _files(node):
    for child in node.get("chapters") or node.get("sections") or []:
        yield child
        yield from _files(child)


def _toc_html(title: str, parts, starts: dict[str, int], titles: dict[str, str]) -> str:
    rows = []
    for caption, pages in parts:
        if caption:
            rows.append(f'<h2>{html.escape(caption)}</h2>')
        for name in pages:
            rows.append(f'<p class="entry"><span>{html.escape(titles[name])}</span>'
                        f'<span class="dots"></span><span>{starts.get(name, 0)}</span></p>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:0}}h1{{font-size:22pt;margin:0 0 12mm}}
h2{{font-size:12pt;margin:8mm 0 2mm;color:#333}}
.entry{{display:flex;margin:1.5mm 0;font-size:11pt}}.dots{{flex:1;border-bottom:1px dotted #888;margin:0 2mm 1.2mm}}
</style></head><body><h1>{html.escape(title)}</h1><h2>Contents</h2>{''.join(rows)}</body></html>"""


def _print_page(context, url: str):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url, wait_until="load")
        page.evaluate(WAIT_READY_JS)
        page.emulate_media(media="print")
        info = page.evaluate(PREPARE_JS, MARK)
        page.wait_for_timeout(300)
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=False,
                       margin={k: f"{v}mm" for k, v in MARGIN_MM.items()})
        return pdf, info
    finally:
        page.close()


def _print_html(context, markup: str, **options) -> bytes:
    page = context.new_page()
    try:
        page.set_content(markup, wait_until="load")
        return page.pdf(format="A4", print_background=True, **options)
    finally:
        page.close()


def _take_marks(reader_page, page_index: int, chapter: str) -> list[dict]:
    """Remove the figure-marking links from a page; return their areas (PDF points)."""
    from pypdf.generic import ArrayObject, NameObject

    annots = reader_page.get("/Annots")
    if not annots:
        return []
    keep, areas = ArrayObject(), []
    for ref in annots:
        annot = ref.get_object()
        uri = annot.get("/A", {}).get("/URI", "") if annot.get("/Subtype") == "/Link" else ""
        if str(uri).startswith(MARK):
            areas.append({"chapter": chapter, "figure": int(str(uri)[len(MARK):]), "page": page_index,
                          "rect": [float(v) for v in annot["/Rect"]]})
        else:
            keep.append(ref)
    reader_page[NameObject("/Annots")] = keep
    return areas


def build_pdf(html_dir: Path = HTML, book: Path = ROOT / "book", chromium: str | None = None) -> Path:
    """Print the built book at ``html_dir`` to ``html_dir / PDF_NAME``; returns its path."""
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader, PdfWriter

    chromium = chromium or chromium_path()
    if chromium is None:
        raise SystemExit("Chromium is not installed (Debian: apt-get install chromium)")
    if not (html_dir / "index.html").exists():
        raise SystemExit(f"no built book at {html_dir}: run `python3 tasks.py book` first")
    config = yaml.safe_load((book / "_config.yml").read_text())
    title = str(config.get("title", "dlnotes"))
    parts = _parts(book)
    names = [n for _, pages in parts for n in pages]
    missing = [n for n in names if not (html_dir / f"{n}.html").exists()]
    if missing:
        raise SystemExit(f"pages of _toc.yml missing from the build: {missing}")

    started = time.time()
    with serve(html_dir) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
                                    proxy={"server": "http://127.0.0.1:9", "bypass": "127.0.0.1,localhost"})
        try:
            context = browser.new_context(viewport={"width": COLUMN_PX, "height": 1100},
                                          service_workers="block")
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
                (base, "data:", "blob:", "about:")) else r.abort("blockedbyclient"))
            chapters, titles = [], {}
            for name in names:
                pdf, info = _print_page(context, f"{base}{name}.html")
                chapters.append((name, PdfReader(io.BytesIO(pdf)), info["figures"]))
                titles[name] = info["title"] or name
                print(f"  printed {name}: {len(chapters[-1][1].pages)} pages, {info['figures']} figures",
                      flush=True)
            # The table of contents, twice: once to learn how many pages it takes.
            toc_len = len(PdfReader(io.BytesIO(_print_html(context, _toc_html(title, parts, {}, titles),
                                                           margin={k: f"{v}mm" for k, v in MARGIN_MM.items()}))).pages)
            starts, at = {}, toc_len + 1
            for name, reader, _ in chapters:
                starts[name] = at
                at += len(reader.pages)
            toc = PdfReader(io.BytesIO(_print_html(context, _toc_html(title, parts, starts, titles),
                                                   margin={k: f"{v}mm" for k, v in MARGIN_MM.items()})))
            if len(toc.pages) != toc_len:
                raise RuntimeError("the table of contents changed length between two printings")
            total = at - 1
            blank = "".join('<div style="break-after:page">&#8203;</div>' for _ in range(total - 1)) + "<div>&#8203;</div>"
            numbers = PdfReader(io.BytesIO(_print_html(
                context, f"<!doctype html><html><body style='margin:0'>{blank}</body></html>",
                display_header_footer=True, header_template="<span></span>", footer_template=FOOTER,
                margin={k: f"{v}mm" for k, v in MARGIN_MM.items()})))
            if len(numbers.pages) != total:
                raise RuntimeError(f"the page-number overlay has {len(numbers.pages)} pages, not {total}")
        finally:
            browser.close()

    writer = PdfWriter()
    for page in toc.pages:
        writer.add_page(page)
    layout = {"title": title, "pages": total, "toc_pages": toc_len, "chapters": [], "figures": []}
    part_of = {n: caption for caption, pages in parts for n in pages}
    part_items: dict[str, object] = {}
    for name, reader, n_figures in chapters:
        first = len(writer.pages)
        for page in reader.pages:
            layout["figures"] += _take_marks(page, len(writer.pages), name)
            writer.add_page(page)
        caption = part_of.get(name, "")
        parent = None
        if caption:
            if caption not in part_items:
                part_items[caption] = writer.add_outline_item(title=caption, page_number=first)
            parent = part_items[caption]
        writer.add_outline_item(title=titles[name], page_number=first, parent=parent)
        layout["chapters"].append({"name": name, "title": titles[name], "first_page": first,
                                   "pages": len(reader.pages), "figures": n_figures})
    for page, overlay in zip(writer.pages, numbers.pages):
        page.merge_page(overlay)
    writer.add_metadata({"/Title": title, "/Creator": "dlnotes tasks.py pdf (Chromium, pypdf)"})
    writer.page_mode = "/UseOutlines"
    out = html_dir / PDF_NAME
    with open(out, "wb") as f:
        writer.write(f)
    layout_file = layout_path(html_dir)
    layout_file.parent.mkdir(parents=True, exist_ok=True)
    layout_file.write_text(json.dumps(layout, indent=1))
    print(f"wrote {out} ({total} pages, {out.stat().st_size / 1e6:.1f} MB) in {time.time() - started:.0f} s")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HTML
    build_pdf(target, book=target.parents[1] if len(sys.argv) > 1 else ROOT / "book")
