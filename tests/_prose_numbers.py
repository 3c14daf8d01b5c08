"""Measured numbers typed into prose: the detector behind tests/test_prose_numbers.py.

A chapter quotes its measured results with MyST-NB's glue (``{glue:text}`vq-bpd```), so the
prose cannot drift from the computation. This module finds numbers that look measured but
were typed by hand. The rule, applied to each sentence of a Markdown cell:

1. Masked first, so nothing inside them counts: fenced code and directive blocks of code or
   math, inline code, ``$...$`` / ``$$...$$`` / ``\\begin{...}`` math, every role
   (``{eq}``, ``{numref}``, ``{glue:text}``...), link targets, URLs, HTML comments and
   directive option lines (``:name: ...``).
2. A *figure* is a number with a decimal point (``4.67``, ``0,5`` is not one), or any number
   with a percent or times sign (``91%``, ``42.6×``, ``3x``). Bare integers are not figures:
   "9 bits per code" or "10 classes" are counts of the setting, not measurements.
3. A figure is *measured-looking* when a result word (:data:`KEYWORDS`: accuracy, error,
   ratio, bits, nats, perplexity, loss, likelihood, gap, speed-up, seconds...) is within
   :data:`WINDOW` words of it in the same sentence, or when it carries ``%`` or ``×`` itself,
   unless then a setting word (:data:`SETTINGS`: warm-up, dropout, split...) is near it and
   no result word is ("warm-up over 30% of the steps" is a choice, not a measurement).
4. A sentence with a ``{cite}`` role (any ``{cite:*}``) quotes published work: its figures
   are exempt. Published numbers stay typed, with their citation in the same sentence (a
   table: in one of its rows or in the line just above it).
   A question (a sentence ending in ``?``) sets an exercise: its figures are thresholds.

Standard library only.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

WINDOW = 6  # words between a figure and a result word, either side
KEYWORDS = (
    r"accurac(?:y|ies)", r"errors?", r"error[- ]rates?", r"ratios?", r"bits?",
    r"bits?/dim", r"bpd", r"nats?", r"perplexit(?:y|ies)", r"loss(?:es)?", r"nll", r"elbo",
    r"(?:log-)?likelihoods?", r"gaps?", r"speed-?ups?", r"faster", r"slower", r"seconds",
    r"minutes?", r"ms", r"correct(?:ly)?", r"fewer", r"smaller", r"larger", r"percent(?:age)?", r"times", r"fid", r"auc", r"usage", r"perplexity",
)
# Words of a setting, not a result: "warm-up over 30% of the steps" is a choice, not a measurement.
SETTINGS = (r"warm-?up", r"dropout", r"held-?out", r"split", r"subsets?", r"budgets?", r"schedules?",
            r"anneal(?:ing|ed)?", r"masks?", r"masking", r"learning", r"rate")
_SETTING = re.compile(r"^(?:" + "|".join(SETTINGS) + r")$", re.IGNORECASE)
_KEYWORD = re.compile(r"^(?:" + "|".join(KEYWORDS) + r")$", re.IGNORECASE)
# A number: digits with optional thousands separators and decimals, then % or × (or x) if any.
_NUMBER = re.compile(
    r"(?<![\w.\-])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?P<sign>\s?%|\s?×(?!\s?\d)|x(?!\w))?"
)
_CITE = "\u27e6CITE\u27e7"  # stands in for a {cite} role after masking
_MASK = " \u2219 "

# Blocks whose whole content is code or math (fenced with ``` or ~~~).
_FENCE = re.compile(r"^(?P<f>`{3,}|~{3,})(?P<info>[^\n]*)\n.*?^(?P=f)[ \t]*$", re.M | re.S)
_PROSE_DIRECTIVES = re.compile(
    r"\{(?:note|tip|important|warning|caution|attention|admonition|hint|seealso|figure|"
    r"exercise|solution|dropdown|margin|sidebar|epigraph|table|list-table|glossary)[^}]*\}")


@dataclass(frozen=True)
class Finding:
    """A typed figure that looks measured: the figure, the nearby result word and its sentence."""

    number: str
    keyword: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.number!r} near {self.keyword!r} in: {self.sentence}"


def _mask_fences(text: str) -> str:
    def repl(m: re.Match) -> str:
        info = m.group("info").strip()
        if _PROSE_DIRECTIVES.match(info):  # an admonition or figure: its body is prose, keep it
            body = m.group(0).split("\n", 1)[1].rsplit("\n", 1)[0]
            return "\n" + _mask_fences(body) + "\n"
        return "\n\n"

    return _FENCE.sub(repl, text)


def mask(markdown: str) -> str:
    """The Markdown with code, math, roles, links' targets and comments masked (see the module)."""
    text = markdown.replace("\r\n", "\n")
    text = re.sub(r"<!--.*?-->", _MASK, text, flags=re.S)
    text = _mask_fences(text)
    text = re.sub(r"^[ \t]*:[\w-]+:.*$", "", text, flags=re.M)  # directive options
    text = re.sub(r"\$\$.*?\$\$", _MASK, text, flags=re.S)
    text = re.sub(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", _MASK, text, flags=re.S)
    text = re.sub(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$", _MASK, text)
    # Roles before inline code (a role's content is written in backticks).
    text = re.sub(r"\{cite(?::\w+)?\}`[^`]*`", _CITE, text)
    text = re.sub(r"\{[\w:.-]+\}`[^`]*`", _MASK, text)
    text = re.sub(r"(`+).+?\1", _MASK, text, flags=re.S)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", _MASK, text)  # images
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    text = re.sub(r"<https?://[^>]+>|https?://\S+", _MASK, text)
    text = re.sub(r"<[^>\n]+>", " ", text)  # HTML tags
    return text


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]*_]*\s+(?=[\"'(\[*_]*[A-Z0-9\u27e6])")


def sentences(masked: str) -> list[str]:
    """Sentences of masked Markdown: paragraphs, list items, table rows and headings split apart."""
    units = []
    for block in re.split(r"\n[ \t]*\n", masked):
        # A list item, a table row or a heading starts a unit of its own.
        parts = re.split(r"\n(?=[ \t]*(?:[-*+]\s|\d+[.)]\s|\||#))", block)
        for part in parts:
            part = re.sub(r"\s+", " ", part).strip()
            units += [s for s in _SENTENCE_END.split(part) if s.strip()]
    return units


def _words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"\d+(?:[.,]\d+)*|[\w₁₂/%×-]+", text)]


_TABLE = re.compile(r"(?P<before>[^\n]*\n)?(?P<table>(?:[ \t]*\|[^\n]*(?:\n|$))+)")


def _drop_cited_tables(masked: str) -> str:
    """A table of published numbers cites them in a row or in the line just above it."""
    def repl(m: re.Match) -> str:
        if _CITE in m.group("table") or _CITE in (m.group("before") or ""):
            return (m.group("before") or "") + "\n"
        return m.group(0)

    return _TABLE.sub(repl, masked)


def measured_numbers(markdown: str) -> list[Finding]:
    """Figures of ``markdown`` that look measured and are typed by hand (rules in the module doc)."""
    found = []
    for sentence in sentences(_drop_cited_tables(mask(markdown))):
        if _CITE in sentence or sentence.rstrip(" *_)").endswith("?"):
            continue  # a cited sentence quotes published work; a question sets an exercise
        words = _words(sentence)
        for m in _NUMBER.finditer(sentence):
            number = m.group(0).strip()
            sign = (m.group("sign") or "").strip()
            if not sign and "." not in number:
                continue  # a bare integer: a count, not a measurement
            here = next((i for i, (s, e, _) in enumerate(words) if s <= m.start() < e), None)
            near = [] if here is None else [
                w.strip("-/") for _, _, w in words[max(0, here - WINDOW): here] + words[here + 1: here + 1 + WINDOW]]
            keyword = next((w for w in near if _KEYWORD.match(w)), None)
            if sign and not keyword and any(_SETTING.match(w) for w in near):
                continue  # "warm-up over 30% of the steps": a setting
            if keyword or sign:
                found.append(Finding(number, keyword or sign, sentence.strip()))
    return found


def notebook_findings(path: Path) -> list[tuple[int, Finding]]:
    """(Markdown cell index, finding) for every Markdown cell of a notebook."""
    nb = json.loads(Path(path).read_text())
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        out += [(i, f) for f in measured_numbers(source)]
    return out
