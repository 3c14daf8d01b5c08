"""Numbers in the prose come from the computation (issue 10, item 2).

The detector (tests/_prose_numbers.py) is tested on small Markdown samples first, then applied
to every chapter: a measured-looking figure typed into a chapter's prose, outside a sentence
that cites its source, fails. Measured numbers are written ``{glue:text}`name```.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from _prose_numbers import mask, measured_numbers, notebook_findings, sentences

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(p.name for p in BOOK.glob("*.ipynb"))


def _numbers(markdown: str) -> list[str]:
    return [f.number for f in measured_numbers(markdown)]


# --------------------------------------------------------------------------- the detector


@pytest.mark.parametrize("text, expected", [
    ("The model reaches an accuracy of 97.3 on the test digits.", ["97.3"]),
    ("Our bound is 4.12 bits per dimension.", ["4.12"]),
    ("The test NLL is 88.4 nats.", ["88.4"]),
    ("Capsules classify 93% of the pairs correctly.", ["93%"]),
    ("It is 93 % of the pairs.", ["93 %"]),
    ("Our implementation is 2.4× faster than captum's.", ["2.4×"]),
    ("Our implementation is 3x faster.", ["3x"]),
    ("The gap between the two is 0.08.", ["0.08"]),
    ("the ratio between the runs is 1.37, well within tolerance", ["1.37"]),
    ("The perplexity of the codebook falls to 311.5 after training.", ["311.5"]),
    ("The error of the sum was 0.004 at 300 steps.", ["0.004"]),
    ("- accuracy: 98.2\n- loss: 0.051", ["98.2", "0.051"]),
    ("Capsules classify 93% of the pairs correctly, warm-up or not.", ["93%"]),
    ("| model | accuracy |\n|---|---|\n| CNN | 97.5 |", []),  # the keyword is in another row
])
def test_typed_measurements_are_found(text, expected):
    assert _numbers(text) == expected


@pytest.mark.parametrize("text", [
    # glued numbers
    "The model reaches an accuracy of {glue:text}`caps-acc` on the test digits.",
    "Our bound is {glue:text}`vq-bpd` bits per dimension ({glue}`vq-bpd-fig`).",
    # published numbers with their citation in the same sentence
    "The paper reports 4.67 bits per dimension {cite:p}`oord2017vqvae`.",
    "Su reports an accuracy of 95% {cite}`su2018capsule`; ours is in the table below.",
    # math, code and roles
    "The entropy is $\\ln 10 \\approx 2.30$ nats.",
    "$$\n\\mathrm{ratio} = 42.67\n$$",
    "Set `accuracy_threshold=0.95` in the config.",
    "```python\naccuracy = 0.973  # printed\n```",
    "See {numref}`fig-3.2` for the error.",
    "<!-- accuracy 97.1 -->",
    "The error is in [the log](https://example.org/run-2.5/accuracy).",
    "\\begin{align}\n\\text{loss} &= 0.5 \\|x\\|^2\n\\end{align}",
    # counts and sizes, not measurements
    "Each of the 512 codes takes 9 bits.",
    "Images are 28×28 and the grid is 3 × 3.",
    "We train with 10 classes for 30 epochs.",
    "Python 3.11 and version 0.9 of captum.",
    # settings and exercises
    "KL warm-up over 30% of the steps.",
    "How many groups keep a KL above 0.1 nats at the end?",
    "A copy with the first layer multiplied by 3.7 and the second divided by 3.7.",
    # a decimal far from any result word
    "The commitment weight was set to 0.25 for every model in this first section of the chapter.",
])
def test_everything_else_passes(text):
    assert _numbers(text) == [], measured_numbers(text)


def test_a_citation_exempts_only_its_own_sentence():
    text = ("The paper reports 4.67 bits per dimension {cite:p}`oord2017vqvae`. "
            "Our model gets 4.12 bits per dimension.")
    assert _numbers(text) == ["4.12"]


def test_a_table_of_published_numbers_cites_them_in_a_row_or_just_above():
    table = "| model | accuracy |\n|---|---|\n| CNN | 97.5% |\n"
    assert _numbers(table) == ["97.5%"]
    assert _numbers("Published results {cite:p}`su2018capsule`:\n" + table) == []
    assert _numbers(table + "| source | {cite:p}`su2018capsule` |\n") == []
    assert _numbers("A cited sentence {cite:p}`x`.\n\nOur run:\n" + table) == ["97.5%"]


def test_admonitions_and_figure_captions_are_prose():
    text = "```{note}\nThe accuracy was 97.3 in our run.\n```\n\n```{code-cell}\nacc = 97.3\n```"
    assert _numbers(text) == ["97.3"]


def test_mask_keeps_prose_and_drops_code_and_math():
    masked = mask("Prose with `code 1.5`, $x = 2.5$ and {eq}`eq-3.5` stays.")
    assert "Prose with" in masked and "stays." in masked
    assert "1.5" not in masked and "2.5" not in masked and "3.5" not in masked


def test_sentences_split_on_full_stops_lists_and_rows():
    units = sentences("One. Two has 4.5 in it.\n- item\n- other\n\n| a |\n| b |")
    assert units == ["One.", "Two has 4.5 in it.", "- item", "- other", "| a |", "| b |"]


def test_findings_name_the_figure_and_the_sentence():
    (finding,) = measured_numbers("Nothing here. The accuracy is 97.3 now.")
    assert finding.keyword.lower() == "accuracy"
    assert finding.sentence == "The accuracy is 97.3 now."
    assert "97.3" in str(finding)


# --------------------------------------------------------------------------- the chapters


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_prose_types_no_measured_number(chapter):
    findings = notebook_findings(BOOK / chapter)
    assert not findings, (
        f"{chapter}: measured-looking numbers typed into the prose (glue them from the cell that "
        "measures them with dlnotes.results.glue and {glue:text}`name`, or cite the source in the "
        "same sentence if the number is published):\n"
        + "\n".join(f"  markdown cell {i}: {f}" for i, f in findings))
