"""Stage 3 (corpus/extract_html.py): trafilatura with FineWeb's settings, order-independent, time-bounded.

Checks: the main text comes out and boilerplate stays out, also from an old table layout (while data tables,
nested or not, stay tables); the headline line is found, stays in the text through the filters and is cut by
DropHeadline unless kept; the same page gives the same text however many times and in whatever order it is
seen (trafilatura's deduplicate=True would not); empty/undecidable pages and pages over the CPU budget are
dropped with their reasons.
"""

import trafilatura
from datatrove.data import Document

from corpus.extract_html import (
    DropHeadline,
    ExtractionTimeout,
    HtmlExtractor,
    cpu_time_limit,
    extract_main,
    extract_text,
)

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


PROSE = ("The river council met on Tuesday to agree a plan for the flood banks. Farmers along the valley said the "
         "old banks failed twice last winter, and the council promised new ones before the autumn rains. ") * 3
DATA_TABLE = ("<table><caption>Rainfall</caption><tr><th>Month</th><th>mm</th></tr>"
              "<tr><td>January</td><td>81</td></tr><tr><td>February</td><td>64</td></tr></table>")
NAV = "".join(f'<a href="/{w}">{w.title()}</a><br>' for w in ("home", "politics", "sport", "weather", "business"))
LINKS = "".join(f'<a href="/s/{i}">Council story number {i} of the week</a><br>' for i in range(6))


def test_table_layout_gives_the_article_without_its_menus():
    page = (f"<html><body><table><tr><td>{NAV}</td><td></td></tr><tr><td>{LINKS}</td>"
            f"<td><h1>Flood banks</h1><p>{PROSE}</p>{DATA_TABLE}<p>{PROSE}</p></td></tr></table></body></html>")
    text = extract_text(page)
    assert PROSE.strip() in text and "Council story number" not in text and "Politics" not in text
    assert "January" in text and "81" in text  # the data table in the article cell is kept
    plain = trafilatura.extract(page, favor_precision=True, include_comments=False)
    assert "Council story number" in plain  # what FineWeb's call alone returns: the menus too


def test_a_data_table_with_long_cells_stays_a_table():
    page = f"<html><body><p>{PROSE}</p><table><tr><th>Item</th><th>Notes</th></tr><tr><td>Banks</td><td>{PROSE}</td>"
    page += "</tr></table></body></html>"
    assert extract_text(page) == trafilatura.extract(page, favor_precision=True, include_comments=False)


def test_headline_is_marked_and_cut_only_by_drop_headline():
    page = ARTICLE.replace("<title>Rivers</title>", "<title>How rivers shape valleys | Example News</title>")
    text, headline = extract_main(page)
    assert headline == "How rivers shape valleys" and text.startswith(headline + "\n")  # FineWeb's text
    assert extract_text(page, keep_headline=False).startswith("Rivers carve valleys")
    assert extract_main(ARTICLE)[1] == "How rivers shape valleys"  # the first <h1> alone is a headline too
    other = ARTICLE.replace("<h1>How rivers shape valleys</h1>", "<h2>Valleys and rivers</h2>")
    assert extract_main(other)[1] is None  # not the title: not a headline
    one_line = "<html><head><title>Rivers</title></head><body><article><p>Rivers</p></article></body></html>"
    assert extract_main(one_line)[1] is None  # a text is never emptied
    docs = run(HtmlExtractor(), [Document(text=page, id="a")])
    assert docs[0].text == text and docs[0].metadata["headline"] == headline
    cut, kept = (run(DropHeadline(keep=k), [Document(text=text, id="a", metadata={"headline": headline})])[0]
                 for k in (False, True))
    assert cut.text.startswith("Rivers carve valleys") and kept.text == text
    assert "headline" not in cut.metadata and "headline" not in kept.metadata  # never written as a column


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
