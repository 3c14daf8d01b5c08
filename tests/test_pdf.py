"""The book's PDF (``python3 tasks.py pdf``): chapters in order, figures drawn, pages numbered.

The book is built as ``python3 tasks.py book`` builds it (seconds when nothing changed since the
browser test built it; ``DLNOTES_BOOK_HTML=<folder>`` uses an existing build), then printed with
book/_ext/book_pdf.py, which also writes where each chapter starts and where each figure landed
(it marks every figure's area while printing). Each figure area is rendered to pixels with
pypdfium2 and must not be blank. Skipped without Chromium, unless ``DLNOTES_REQUIRE_BROWSER=1``.
``DLNOTES_REUSE_PDF=1`` checks the PDF already printed there instead of printing it again.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from _book_server import ROOT, built_book_html, chromium_path, toc_pages

sys.path.insert(0, str(ROOT / "book" / "_ext"))

MIN_INK = 0.01  # share of a figure's pixels that must differ from its background colour


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _title_pattern(title: str) -> str:
    """A title's Latin words in order, anything between (glyphs of a font the machine lacks extract as nothing)."""
    return r"\W*".join(map(re.escape, re.findall(r"[A-Za-z0-9]+", title)))


@pytest.fixture(scope="module")
def book_pdf():
    """(path of the PDF, its layout) printed from a fresh build of the book."""
    chromium = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
        import pypdf  # noqa: F401
        import pypdfium2  # noqa: F401
    except ImportError as e:
        chromium, why = None, f"{e.name} is not installed (pip install '.[test]')"
    else:
        why = "Chromium is not installed (Debian: apt-get install chromium)"
    if chromium is None:
        if os.environ.get("DLNOTES_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DLNOTES_REQUIRE_BROWSER=1 but {why}", pytrace=False)
        pytest.skip(why)
    html, why = built_book_html()
    if html is None:
        pytest.fail(why, pytrace=False)
    import book_pdf

    path, layout = html / book_pdf.PDF_NAME, book_pdf.layout_path(html)
    reuse = os.environ.get("DLNOTES_REUSE_PDF") == "1" and path.exists() and layout.exists()
    if not reuse:
        path = book_pdf.build_pdf(html, chromium=chromium)
    return path, json.loads(layout.read_text())


def test_the_pdf_is_offered_next_to_the_html(book_pdf):
    path, layout = book_pdf
    assert path.name == "dlnotes.pdf" and path.stat().st_size > 10_000
    index = (path.parent / f"{toc_pages()[0]}.html").read_text()
    assert 'href="dlnotes.pdf"' in index, "the download menu does not offer the book's PDF"


def test_chapters_are_in_toc_order_with_bookmarks_and_a_contents_page(book_pdf):
    from pypdf import PdfReader

    path, layout = book_pdf
    reader = PdfReader(path)
    names = [c["name"] for c in layout["chapters"]]
    assert names == toc_pages(), "the PDF's chapters are not those of _toc.yml, in its order"
    firsts = [c["first_page"] for c in layout["chapters"]]
    assert firsts == sorted(firsts) and firsts[0] == layout["toc_pages"]
    assert len(reader.pages) == layout["pages"]

    def flat(items):
        for item in items:
            if isinstance(item, list):
                yield from flat(item)
            else:
                yield item
    marks = [(m.title, reader.get_destination_page_number(m)) for m in flat(reader.outline)]
    chapter_marks = [(t, p) for t, p in marks if t in {c["title"] for c in layout["chapters"]}]
    assert chapter_marks == [(c["title"], c["first_page"]) for c in layout["chapters"]]

    contents = _norm(" ".join(reader.pages[i].extract_text() for i in range(layout["toc_pages"])))
    assert "Contents" in contents
    at = 0
    for c in layout["chapters"]:  # each title, in order, with its printed page number after it
        found = re.compile(_title_pattern(c["title"]) + r"[^\d]*?(\d+)").search(contents, at)
        assert found, f"the contents page lacks {c['title']!r} (after position {at})"
        assert int(found.group(1)) == c["first_page"] + 1
        at = found.end()
    for c in layout["chapters"]:
        first = _norm(reader.pages[c["first_page"]].extract_text())
        assert re.search(_title_pattern(c["title"]), first), f"page {c['first_page'] + 1} does not start {c['title']!r}"


def test_every_page_is_numbered(book_pdf):
    from pypdf import PdfReader

    path, layout = book_pdf
    reader = PdfReader(path)
    for i, page in enumerate(reader.pages):
        lines = [ln.strip() for ln in page.extract_text().splitlines() if ln.strip()]
        assert str(i + 1) in lines, f"page {i + 1} carries no page number {i + 1}"


def test_equations_are_typeset_and_no_tex_is_left(book_pdf):
    from pypdf import PdfReader

    path, _ = book_pdf
    text = "\n".join(p.extract_text() for p in PdfReader(path).pages)
    for raw in ("$$", "\\begin{", "\\frac", "\\mathbb"):
        assert raw not in text, f"raw TeX {raw!r} in the PDF's text: MathJax did not typeset it"


def test_every_figure_is_placed_and_none_is_blank(book_pdf):
    import numpy as np
    import pypdfium2 as pdfium

    path, layout = book_pdf
    for c in layout["chapters"]:
        placed = {f["figure"] for f in layout["figures"] if f["chapter"] == c["name"]}
        assert placed == set(range(c["figures"])), \
            f"{c['name']}: figures {sorted(set(range(c['figures'])) - placed)} have no area in the PDF"
    doc = pdfium.PdfDocument(str(path))
    blank, scale = [], 1.5
    rendered = {}
    for f in layout["figures"]:
        if f["page"] not in rendered:
            rendered[f["page"]] = doc[f["page"]].render(scale=scale).to_numpy()[..., :3].astype(int)
        pixels = rendered[f["page"]]
        height = doc[f["page"]].get_height()
        x0, y0, x1, y1 = f["rect"]
        top, bottom = int((height - y1) * scale), int((height - y0) * scale)
        area = pixels[max(top, 0):bottom, max(int(x0 * scale), 0):int(x1 * scale)]
        if area.size == 0 or min(area.shape[:2]) < 10:
            continue  # a sliver of a figure split across pages
        flat = area.reshape(-1, 3)
        colours, counts = np.unique(flat // 8, axis=0, return_counts=True)
        background = colours[counts.argmax()] * 8
        ink = (np.abs(flat - background).max(axis=1) > 40).mean()
        if ink < MIN_INK:
            blank.append(f"{f['chapter']} figure {f['figure']} on page {f['page'] + 1}: {ink:.2%} ink")
    assert blank == [], "blank figure areas in the PDF:\n" + "\n".join(blank)
