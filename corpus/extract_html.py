"""Stage 3: HTML → main text with trafilatura, FineWeb's settings, deterministic and time-bounded.

FineWeb (datatrove `examples/fineweb.py`) calls `trafilatura.extract(html, favor_precision=True,
include_comments=False, deduplicate=True)`. We keep everything but `deduplicate`: trafilatura's deduplication is a
process-wide LRU cache (trafilatura issue #778), so a paragraph seen a few times in one process disappears from
later documents and the output depends on document order and on how documents were spread over tasks.
Near-duplicate documents are stage 6's job.

A pathological page (megabytes of inline spans, 10,000 nested `<div>`s) must not hang a task. datatrove runs the
extractor in a subprocess and kills it after 1 s of wall time, which costs a pipe round-trip of the whole HTML per
document. We arm a CPU-time timer (`setitimer(ITIMER_PROF)`) around the call instead: no copy, and CPU time, unlike
wall time, does not depend on what else the machine is doing, so a loaded node does not drop more pages.
"""

from __future__ import annotations

import re
import signal
import threading
from contextlib import contextmanager

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from loguru import logger

# FineWeb's trafilatura call (datatrove Trafilatura(favour_precision=True)), minus the stateful deduplicate=True.
FINEWEB_TRAFILATURA_OPTIONS = dict(
    favor_precision=True,  # FineWeb: "favour precision" (less boilerplate, some text lost)
    include_comments=False,  # FineWeb: comments are not main content
    deduplicate=False,  # NOT FineWeb: True makes output depend on document order (trafilatura #778)
)


class ExtractionTimeout(BaseException):
    """Raised inside trafilatura when a document used up its CPU-time budget.

    A BaseException, like KeyboardInterrupt, because trafilatura catches `Exception` around lxml parsing and
    would otherwise swallow the timeout and go on working on the page.
    """


def _on_timer(signum, frame):  # noqa: ARG001 - signal handler signature
    raise ExtractionTimeout()


@contextmanager
def cpu_time_limit(seconds: float | None):
    """Raise ExtractionTimeout in the block after `seconds` of CPU time (main thread only; elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGPROF, _on_timer)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


# NOT FineWeb: when favour-precision mode returns almost nothing, trafilatura's balanced mode is tried. On the
# ScrapingHub article benchmark favor_precision sometimes keeps only a teaser (Barron's: 260 of 3,213 characters of
# article). The second pass runs only for outputs under SHORT_CHARS (a small share of pages) and replaces the first
# only if it is at least LONGER_FACTOR times longer and a real article's length, so link lists and stubs, whose
# balanced output is short, stay short.
SHORT_CHARS = 500
LONGER_FACTOR = 5
ARTICLE_CHARS = 2000


# NOT FineWeb: old sites lay a page out with a <table> (navigation in one cell, the article in the next, links
# in a third). trafilatura keeps a table whole, so its output is the article plus every menu of the page. A table
# whose cell holds prose (LAYOUT_CELL_WORDS or more words) and that has none of a data table's marks (<th>,
# <caption>; Mozilla Readability's _markDataTables uses the same) is turned into <div>s before extraction, so
# trafilatura judges each cell as a block. On the bench's table-layout articles precision goes from 0.82-0.86 to
# 1.0; no other page of the bench changes.
LAYOUT_CELL_WORDS = 60
_WORD = re.compile(r"\w+")


def unwrap_layout_tables(tree) -> int:
    """Rename the elements of layout tables to <div> in place (lxml tree); returns how many tables. A table
    nested in a cell is judged on its own: a data table inside a layout table stays a table."""
    tables = list(tree.iter("table"))
    own = {id(t): [] for t in tables}
    for el in tree.iter("tbody", "thead", "tfoot", "tr", "td", "th", "caption"):
        parent_table = next(el.iterancestors("table"), None)
        if parent_table is not None:
            own[id(parent_table)].append(el)
    n = 0
    for table in tables:
        parts = own[id(table)]
        if any(el.tag in ("th", "caption") for el in parts):
            continue  # a data table
        if any(el.tag == "td" and len(_WORD.findall(el.text_content())) >= LAYOUT_CELL_WORDS for el in parts):
            for el in [table, *parts]:
                el.tag = "div"
            n += 1
    return n


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def headings(tree) -> set[str]:
    """The page's <title> and first <h1>, whitespace-collapsed and case-folded."""
    found = {_norm(tree.findtext(".//title") or "")}
    h1 = next(tree.iter("h1"), None)
    if h1 is not None:
        found.add(_norm(h1.text_content()))
    return found - {""}


def headline_of(text: str, heads: set[str]) -> str | None:
    """The first line of `text` when it is the page's headline: its <title> or first <h1>, or the start of a
    title such as "Headline | Site" (at least half of it); None otherwise, and for a text of one line."""
    first, sep, rest = text.partition("\n")
    line = _norm(first)
    if sep and rest.strip() and line and any(h == line or h.startswith(line) and 2 * len(line) >= len(h)
                                             for h in heads):
        return first
    return None


def _extract(html: str, **options) -> tuple[str | None, str | None]:
    from trafilatura import extract
    from trafilatura.utils import load_html

    tree = load_html(html)  # what trafilatura does with a string: the same output from the tree (checked)
    if tree is None:
        return None, None
    heads = headings(tree)  # before extract(), which edits the tree
    unwrap_layout_tables(tree)
    text = extract(tree, **options)
    return text, headline_of(text, heads) if text else None


def extract_main(html: str, timeout: float | None = 2.0, recall_fallback: bool = True,
                 **options) -> tuple[str | None, str | None]:
    """(main text, its headline line or None) of one HTML page; the text is None when trafilatura finds none.
    Raises ExtractionTimeout. `timeout` bounds the CPU time of the whole call, the fallback pass included."""
    options = {**FINEWEB_TRAFILATURA_OPTIONS, **options}
    with cpu_time_limit(timeout):
        found = _extract(html, **options)
        if recall_fallback and options["favor_precision"] and len(found[0] or "") < SHORT_CHARS:
            # a fresh tree: extract() edits the one it is given
            balanced = _extract(html, **{**options, "favor_precision": False})
            if len(balanced[0] or "") >= max(ARTICLE_CHARS, LONGER_FACTOR * len(found[0] or "")):
                return balanced
        return found


def extract_text(html: str, timeout: float | None = 2.0, recall_fallback: bool = True, keep_headline: bool = True,
                 **options) -> str | None:
    """Main text of one HTML page (None when trafilatura finds none); keep_headline=False cuts a first line that
    repeats the page's title (see DropHeadline). Raises ExtractionTimeout."""
    text, headline = extract_main(html, timeout, recall_fallback, **options)
    return text if keep_headline or headline is None else cut_headline(text, headline)


def cut_headline(text: str, headline: str) -> str:
    return text[len(headline):].lstrip("\n") if text.startswith(headline + "\n") else text


class DropHeadline(PipelineStep):
    """3b, run last before the Parquet: cut the first line of the text when stage 3 found it to be the page's
    headline (`metadata["headline"]`). NOT FineWeb, whose text starts with the headline; the main text of
    article-extraction benchmarks (ScrapingHub's articleBody, trafilatura's evaluation, this project's bench)
    leaves it out, as the page's title. Every filter before it (language, quality, dedup, PII) has seen the
    page with its headline, as in FineWeb, so only the output text changes. keep=True only removes the marker.
    """

    name = "3b drop headline"
    type = "✂️ - FORMAT"

    def __init__(self, keep: bool = False):
        super().__init__()
        self.keep = keep

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            headline = doc.metadata.pop("headline", None)
            if headline and not self.keep:
                text = cut_headline(doc.text, headline)
                if text != doc.text:
                    doc.text = text
                    self.stat_update("headline_dropped")
            yield doc


class HtmlExtractor(PipelineStep):
    """Replace `doc.text` (HTML) with its main text, and set `metadata["headline"]` when its first line is the
    page's headline (the text keeps it, as FineWeb's does). Drop reasons: `extract_empty`, `extract_timeout`,
    `extract_error` (trafilatura raised: logged once per task with the document id).

    Args:
        timeout: CPU seconds per document (None: no limit). datatrove/FineWeb used 0.1 s (v0.2, thread) and
            later 1 s of wall time (subprocess); 2 CPU-seconds keeps every real page of our benchmark.
        recall_fallback: retry in trafilatura's balanced mode when favour-precision keeps almost nothing
            (see SHORT_CHARS above; NOT FineWeb).
        exclusion_writer: optional datatrove writer for dropped documents (the HTML is kept in them).
        **options: extra trafilatura.extract options, overriding FineWeb's.
    """

    name = "3 extract (trafilatura)"
    type = "🛢 - EXTRAC"

    def __init__(self, timeout: float | None = 2.0, recall_fallback: bool = True, exclusion_writer=None, **options):
        super().__init__()
        self.recall_fallback = recall_fallback
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        self.timeout = timeout
        self.options = options
        self.exclusion_writer = exclusion_writer
        self._error_logged = False

    def _reject(self, doc, reason: str, writer, rank: int) -> None:
        self.stat_update("dropped", f"dropped_{reason}")
        if writer is not None:
            doc.metadata["filter_reason"] = reason
            writer.write(doc, rank)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.exclusion_writer if self.exclusion_writer else _nothing() as writer:
            for doc in data:
                self.stat_update("total")
                with self.track_time():
                    try:
                        text, headline = extract_main(doc.text, self.timeout, self.recall_fallback, **self.options)
                    except ExtractionTimeout:
                        logger.warning(f"extraction took more than {self.timeout}s of CPU: dropped {doc.id}")
                        self._reject(doc, "extract_timeout", writer, rank)
                        continue
                    except Exception as e:  # trafilatura/lxml raise many types on broken markup
                        if not self._error_logged:
                            logger.warning(f"trafilatura failed on {doc.id}: {e!r} (logged once per task)")
                            self._error_logged = True
                        self._reject(doc, "extract_error", writer, rank)
                        continue
                if not text or not text.strip():
                    self._reject(doc, "extract_empty", writer, rank)
                    continue
                doc.text = text
                if headline is not None:
                    doc.metadata["headline"] = headline  # cut by DropHeadline after the filters (NOT FineWeb)
                self.stat_update("forwarded")
                self.update_doc_stats(doc)
                yield doc


@contextmanager
def _nothing():
    yield None
