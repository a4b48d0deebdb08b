"""Stage 5: FineWeb's quality filters (Gopher repetition, Gopher quality, C4, FineWeb) as threshold checks.

FineWeb (arXiv 2406.17557 §3.3; datatrove examples/fineweb.py) runs, in this order, on the extracted English
text: GopherRepetitionFilter → GopherQualityFilter → C4QualityFilter(filter_no_terminal_punct=False) →
FineWebQualityFilter. datatrove's C4 filter also rewrites the text (drops "javascript", cookie/policy, short
and citation-marked lines) and FineWeb's filter then judges — and FineWeb publishes — the cleaned text. Here
that rewrite is its own step, `C4LineCleaner`, and `quality_steps()` returns the five steps in FineWeb's
order.

Scores come from `corpus.quality_signals` (one line split and one word split per text, no spaCy). The filters
of one `quality_steps()` list share a `SignalCache`, so a text is measured once however many filters read it.
Every threshold is a config field with its source; `None` disables it. Defaults are FineWeb's values except
three documented repairs that keep real pages FineWeb's code loses (table layouts, pages with numbers, one
repeated line): `FineWebConfig.line_punct_by_chars`, `GopherQualityConfig.alpha_ratio_over_tokens=False` and
`FineWebConfig.max_char_dup_ratio=0.1`. `datatrove_configs()` gives datatrove 0.10.1's exact behaviour. Drop
reasons are the signal names (`gopher_rep_dup_line_frac`, `gopher_short_doc`, `c4_too_few_sentences`,
`fineweb_line_punct_ratio`, …); datatrove's `run()` counts them as `dropped_<reason>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from corpus import quality_signals as qs
from corpus.stage import Filter

Signals = dict[str, float | int]
# Cheap signals written to kept documents' metadata (numeric: they become Parquet columns).
GOPHER_KEPT = ("gopher_words", "gopher_avg_word_length", "gopher_alpha_words_ratio")
FINEWEB_KEPT = ("fineweb_line_punct_chars", "fineweb_char_dup_ratio")


class SignalCache:
    """The signal groups of the last text measured (filters run one document at a time, in sequence)."""

    def __init__(self):
        self._text: str | None = None
        self._groups: dict[Callable, Signals] = {}
        self._view: qs.TextView | None = None

    def get(self, text: str, group: Callable[[qs.TextView], Signals]) -> Signals:
        if text is not self._text and text != self._text:
            self._text, self._groups, self._view = text, {}, None
        if group not in self._groups:
            if self._view is None:
                self._view = qs.TextView(text)
            self._groups[group] = group(self._view)
        return self._groups[group]


def _check(signals: Signals, checks) -> str | None:
    """First failing (name, op, limit) check; `limit is None` disables it."""
    for name, op, limit, reason in checks:
        if limit is not None and (signals[name] > limit if op == ">" else signals[name] < limit):
            return reason
    return None


class _QualityFilter(Filter):
    """Compares one signal group of the document's text with the config's thresholds."""

    group: Callable[[qs.TextView], Signals]

    def __init__(
        self,
        config,
        cache: SignalCache | None = None,
        keep_signals: tuple[str, ...] = (),
        exclusion_writer=None,
    ):
        super().__init__(exclusion_writer)
        self.config, self.cache, self.keep_signals = config, cache or SignalCache(), keep_signals

    def checks(self) -> list[tuple[str, str, float | None, str]]:
        raise NotImplementedError

    def reject_reason(self, doc: Document) -> str | None:
        signals = self.cache.get(doc.text, type(self).group)
        reason = _check(signals, self.checks())
        if reason is None:
            doc.metadata.update({k: signals[k] for k in self.keep_signals})
        return reason


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Gopher (Rae et al. 2021, arXiv 2112.11446) Table A1; datatrove GopherRepetitionFilter defaults."""

    dup_para_frac: float | None = 0.30  # Table A1: duplicate paragraph fraction
    dup_para_char_frac: float | None = 0.20  # Table A1: duplicate paragraph character fraction
    dup_line_frac: float | None = 0.30  # Table A1: duplicate line fraction
    dup_line_char_frac: float | None = 0.20  # Table A1: duplicate line character fraction
    # Table A1: top 2/3/4-gram character fraction, then duplicate 5..10-gram character fraction
    top_ngram_frac: tuple[float | None, ...] = (0.20, 0.18, 0.16)
    dup_ngram_frac: tuple[float | None, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)

    def __post_init__(self):
        sizes = (len(self.top_ngram_frac), len(self.dup_ngram_frac))
        if sizes != (len(qs.TOP_NGRAM_SIZES), len(qs.DUP_NGRAM_SIZES)):
            raise ValueError("give top_ngram_frac 3 values (n=2..4), dup_ngram_frac 6 (n=5..10); None = off")


class GopherRepetitionFilter(_QualityFilter):
    """Drop documents with repeated paragraphs, lines or n-grams (Gopher Table A1)."""

    name = "5 Gopher repetition"
    group = qs.gopher_repetition_signals

    def __init__(self, config: GopherRepetitionConfig = GopherRepetitionConfig(), **kw):
        super().__init__(config, **kw)

    def checks(self):
        c = self.config
        out = [("gopher_rep_chars", "<", 1, "gopher_rep_empty")]  # whitespace-only: nothing to measure
        names = ["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
        out += [(f"gopher_rep_{n}", ">", getattr(c, n), f"gopher_rep_{n}") for n in names]
        out += [
            (f"gopher_rep_top_{n}_gram", ">", t, f"gopher_rep_top_{n}_gram")
            for n, t in zip(qs.TOP_NGRAM_SIZES, c.top_ngram_frac)
        ]
        return out + [
            (f"gopher_rep_dup_{n}_gram", ">", t, f"gopher_rep_dup_{n}_gram")
            for n, t in zip(qs.DUP_NGRAM_SIZES, c.dup_ngram_frac)
        ]


@dataclass(frozen=True)
class GopherQualityConfig:
    """Gopher (arXiv 2112.11446) §A1 quality filters; datatrove GopherQualityFilter defaults."""

    min_words: int | None = 50  # §A1: fewer than 50 words
    max_words: int | None = 100_000  # §A1: more than 100,000 words
    min_avg_word_length: float | None = 3  # §A1: mean word length outside 3..10 characters
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1  # §A1: "#" or ellipsis to word ratio above 0.1
    max_bullet_lines_ratio: float | None = 0.9  # §A1: more than 90% of lines start with a bullet
    max_end_ellipsis_lines_ratio: float | None = 0.3  # §A1: more than 30% of lines end with an ellipsis
    min_alpha_words_ratio: float | None = 0.8  # §A1: 80% of words contain an alphabetic character
    alpha_ratio_over_tokens: bool = False  # True: datatrove's denominator (punctuation tokens count as words)
    min_stop_words: int | None = 2  # §A1: at least two of the, be, to, of, and, that, have, with


class GopherQualityFilter(_QualityFilter):
    """Drop documents whose word statistics are not those of prose (Gopher §A1)."""

    name = "5 Gopher quality"
    group = qs.gopher_quality_signals

    def __init__(self, config: GopherQualityConfig = GopherQualityConfig(), **kw):
        super().__init__(config, **kw)

    def checks(self):
        c = self.config
        alpha = "gopher_alpha_tokens_ratio" if c.alpha_ratio_over_tokens else "gopher_alpha_words_ratio"
        return [
            ("gopher_words", "<", c.min_words, "gopher_short_doc"),
            ("gopher_words", ">", c.max_words, "gopher_long_doc"),
            ("gopher_avg_word_length", "<", c.min_avg_word_length, "gopher_avg_word_short"),
            ("gopher_avg_word_length", ">", c.max_avg_word_length, "gopher_avg_word_long"),
            ("gopher_hash_ratio", ">", c.max_symbol_word_ratio, "gopher_hash_ratio"),
            ("gopher_ellipsis_ratio", ">", c.max_symbol_word_ratio, "gopher_ellipsis_ratio"),
            ("gopher_bullet_lines_ratio", ">", c.max_bullet_lines_ratio, "gopher_bullet_lines"),
            ("gopher_end_ellipsis_lines_ratio", ">", c.max_end_ellipsis_lines_ratio, "gopher_end_ellipsis"),
            (alpha, "<", c.min_alpha_words_ratio, "gopher_alpha_words"),
            ("gopher_stop_words", "<", c.min_stop_words, "gopher_stop_words"),
        ]


@dataclass(frozen=True)
class C4Config:
    """C4 (Raffel et al. 2020, JMLR 21(140) §2.2; tfds c4_utils.py clean_page) as FineWeb runs it (datatrove
    C4QualityFilter(filter_no_terminal_punct=False)): the "lines must end in punctuation" rule is off."""

    max_word_length: int | None = 1000  # c4_utils.py: drop lines with a word over 1000 characters
    min_words_per_line: int | None = 3  # §2.2: keep lines with at least 3 words
    remove_citations: bool = True  # c4_utils.py: strip Wikipedia "[1]", "[edit]", "[citation needed]"
    drop_javascript_lines: bool = True  # §2.2: remove any line with the word Javascript
    drop_policy_lines: bool = True  # c4_utils.py: "terms of use", "privacy policy", "cookie policy", cookies
    drop_lorem_ipsum: bool = True  # §2.2: remove any page where "lorem ipsum" appears
    drop_curly_bracket: bool = True  # §2.2: remove any page that contains a curly bracket
    min_sentences: int | None = 5  # §2.2: discard pages with fewer than 5 sentences (after line cleaning)


class C4LineCleaner(PipelineStep):
    """Rewrite `doc.text` to the lines C4 keeps; counts removed lines per reason (`c4_line_javascript`, …)."""

    name = "5 C4 line cleaner"
    type = "✂️ - FORMAT"

    def __init__(self, config: C4Config = C4Config(), keep_removed_count: bool = True):
        super().__init__()
        self.config, self.keep_removed_count = config, keep_removed_count

    def clean(self, text: str):
        c = self.config
        args = (c.max_word_length, c.min_words_per_line, c.remove_citations)
        return qs.c4_clean_lines(text, *args, c.drop_javascript_lines, c.drop_policy_lines)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            with self.track_time():
                doc.text, removed = self.clean(doc.text)
            for reason, n in sorted(removed.items()):
                self.stat_update(reason, value=n)
            if self.keep_removed_count:
                doc.metadata["c4_lines_removed"] = sum(removed.values())
            self.stat_update(StatHints.total, StatHints.forwarded)  # in = out: the funnel shows the step
            yield doc


class C4Filter(_QualityFilter):
    """C4's document rules on the cleaned text: lorem ipsum, curly bracket, at least 5 sentences."""

    name = "5 C4 quality"
    group = qs.c4_signals

    def __init__(self, config: C4Config = C4Config(), **kw):
        super().__init__(config, **kw)

    def checks(self):
        c = self.config
        return [
            ("c4_lorem_ipsum", ">", 0 if c.drop_lorem_ipsum else None, "c4_lorem_ipsum"),
            ("c4_curly_bracket", ">", 0 if c.drop_curly_bracket else None, "c4_curly_bracket"),
            ("c4_sentences", "<", c.min_sentences, "c4_too_few_sentences"),
        ]


@dataclass(frozen=True)
class FineWebConfig:
    """FineWeb's own filters (arXiv 2406.17557 §3.3, Appendix; datatrove FineWebQualityFilter defaults)."""

    min_line_punct_ratio: float | None = 0.12  # §3.3: drop if < 12% of lines end with punctuation
    line_punct_by_chars: bool = True  # ours: table cells, weighted by length (see qs.line_punct_chars)
    max_short_line_ratio: float | None = 0.67  # §3.3: drop if > 67% of lines are ≤ 30 characters
    # Characters in duplicated lines: the FineWeb paper (§3.3) lists "≥ 0.1" (MassiveText used 0.2);
    # datatrove's FineWebQualityFilter default is 0.01, which drops articles for one repeated attribution.
    max_char_dup_ratio: float | None = 0.1
    max_list_ratio: float | None = 0.3  # datatrove new_line_ratio: newlines per word above 0.3 (lists)


class FineWebQualityFilter(_QualityFilter):
    """Drop documents that read as lists or navigation rather than prose (FineWeb §3.3)."""

    name = "5 FineWeb quality"
    group = qs.fineweb_signals

    def __init__(self, config: FineWebConfig = FineWebConfig(), **kw):
        super().__init__(config, **kw)

    def checks(self):
        c = self.config
        punct = "fineweb_line_punct_chars" if c.line_punct_by_chars else "fineweb_line_punct_ratio"
        return [
            ("fineweb_lines", "<", 1, "fineweb_empty"),
            (punct, "<", c.min_line_punct_ratio, "fineweb_line_punct_ratio"),
            ("fineweb_short_line_ratio", ">", c.max_short_line_ratio, "fineweb_short_line_ratio"),
            ("fineweb_char_dup_ratio", ">", c.max_char_dup_ratio, "fineweb_char_dup_ratio"),
            ("fineweb_list_ratio", ">", c.max_list_ratio, "fineweb_list_ratio"),
        ]


def quality_steps(
    gopher_rep=GopherRepetitionConfig(),
    gopher=GopherQualityConfig(),
    c4=C4Config(),
    fineweb=FineWebConfig(),
    exclusion_writers: dict[str, object] | None = None,
) -> list[PipelineStep]:
    """Stage 5 in FineWeb's order, the filters sharing one SignalCache. `exclusion_writers` keys: gopher_rep,
    gopher, c4, fineweb (a writer for the documents each filter drops)."""
    cache, w = SignalCache(), exclusion_writers or {}
    return [
        GopherRepetitionFilter(gopher_rep, cache=cache, exclusion_writer=w.get("gopher_rep")),
        GopherQualityFilter(gopher, cache=cache, exclusion_writer=w.get("gopher"), keep_signals=GOPHER_KEPT),
        C4LineCleaner(c4),
        C4Filter(c4, cache=cache, exclusion_writer=w.get("c4")),
        FineWebQualityFilter(
            fineweb, cache=cache, exclusion_writer=w.get("fineweb"), keep_signals=FINEWEB_KEPT
        ),
    ]


def datatrove_configs() -> dict[str, object]:
    """Configs that reproduce datatrove 0.10.1's four filters as FineWeb runs them (for parity checks):
    `quality_steps(**datatrove_configs())`."""
    return {
        "gopher": GopherQualityConfig(alpha_ratio_over_tokens=True),
        "fineweb": FineWebConfig(line_punct_by_chars=False, max_char_dup_ratio=0.01),
    }
