"""Stage 3 (corpus/extract_html.py): trafilatura with FineWeb's settings, order-independent, time-bounded.

Checks: the main text comes out and boilerplate stays out; the same page gives the same text however many times
and in whatever order it is seen (trafilatura's deduplicate=True would not); empty/undecidable pages and pages
over the CPU budget are dropped with their reasons.
"""

from datatrove.data import Document

from corpus.extract_html import ExtractionTimeout, HtmlExtractor, cpu_time_limit, extract_text

ARTICLE = """<html><head><title>Rivers</title></head><body>
<nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/about">About us</a></nav>
<article><h1>How rivers shape valleys</h1>
<p>Rivers carve valleys over thousands of years. The water carries sand and stones that grind the river bed.</p>
<p>In the mountains the valleys are steep and narrow, because the river cuts down faster than the sides wear.</p>
<p>Near the sea the river slows down, drops what it carries, and builds wide plains that farmers have used for
centuries.</p></article>
<footer>Copyright 2024 Example News. All rights reserved. Privacy policy.</footer></body></html>"""


def run(step, docs):
    return list(step.run(iter(docs)))


def test_main_text_without_boilerplate():
    text = extract_text(ARTICLE)
    assert "Rivers carve valleys" in text and "build wide plains" in text.replace("builds", "build")
    assert "All rights reserved" not in text and "About us" not in text


def test_same_page_same_text_whatever_the_order():
    # trafilatura's deduplicate=True (FineWeb) empties a paragraph after it was seen a few times (issue #778)
    outputs = [extract_text(ARTICLE) for _ in range(6)]
    assert len(set(outputs)) == 1 and outputs[0]


def test_step_drops_empty_pages_with_a_reason():
    step = HtmlExtractor()
    docs = [Document(text=ARTICLE, id="a"), Document(text="<html><body><script>x()</script></body></html>", id="b"),
            Document(text="", id="c")]
    kept = run(step, docs)
    assert [d.id for d in kept] == ["a"] and "Rivers carve" in kept[0].text
    stats = step.stats
    assert stats["total"].total == 3 and stats["forwarded"].total == 1
    assert stats["dropped_extract_empty"].total == 2


def test_cpu_budget_raises_and_step_counts_timeouts():
    import pytest

    with pytest.raises(ExtractionTimeout), cpu_time_limit(0.05):
        while True:
            sum(range(1000))
    huge = "<html><body>" + "<p>word " * 200_000 + "</body></html>"
    step = HtmlExtractor(timeout=0.01)
    assert run(step, [Document(text=huge, id="big")]) == []
    assert step.stats["dropped_extract_timeout"].total == 1


def test_bad_timeout_is_a_config_error():
    import pytest

    with pytest.raises(ValueError, match="positive"):
        HtmlExtractor(timeout=0)
