"""Stage 5 quality filters: one test per drop reason (inline texts), empty / whitespace / punctuation-only
texts, signal values on a hand-computed example, the C4 line cleaner, the steps chained through datatrove's
`run()`, and decision parity with datatrove 0.10.1's four FineWeb filters where we claim it
(`datatrove_configs()`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from datatrove.data import Document

from corpus.filter_quality import (
    C4Filter,
    C4LineCleaner,
    FineWebConfig,
    FineWebQualityFilter,
    GopherQualityConfig,
    GopherQualityFilter,
    GopherRepetitionConfig,
    GopherRepetitionFilter,
    datatrove_configs,
    quality_steps,
)
from corpus.quality_signals import (
    _dup_ngram_chars,
    _top_ngram_chars,
    _top_ngram_chars_slow,
    count_sentences,
    quality_signals,
    split_words,
)

PROSE = (
    "The committee met on Tuesday to discuss the new budget for the city library and its branches.\n"
    "Members agreed that the opening hours should be extended during the winter months of the year.\n"
    "A spokesperson said the plan would cost less than expected, and that staff have welcomed it.\n"
    "Residents with young children were among the strongest supporters of the proposal at the meeting.\n"
    "The final vote will take place next month, after a public consultation with local groups."
)


def off(cls, **keep):
    """A config of `cls` with every threshold disabled (None) except the ones given."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.type.startswith("tuple"):
            values[f.name] = tuple(None for _ in f.default)
        elif "None" in f.type:
            values[f.name] = None
    return cls(**{**values, **keep})


def reason(step, text: str) -> str | None:
    return step.reject_reason(Document(text=text, id="t"))


def test_prose_passes_every_filter():
    for step in (GopherRepetitionFilter(), GopherQualityFilter(), C4Filter(), FineWebQualityFilter()):
        assert reason(step, PROSE) is None, step.name


REP_CASES = [
    ({}, " \n\t ", "gopher_rep_empty"),
    ({}, "Same paragraph here.\n\nSame paragraph here.\n\nOther one.", "gopher_rep_dup_para_frac"),
    (
        {},
        ("Long repeated paragraph text. " * 4 + "\n\n") * 2 + "a b\n\nc d\n\ne f",
        "gopher_rep_dup_para_char_frac",
    ),
    ({}, "Same line.\nSame line.\nOther line.", "gopher_rep_dup_line_frac"),
    ({}, ("Long repeated line text. " * 4 + "\n") * 2 + "a b\nc d\ne f", "gopher_rep_dup_line_char_frac"),
]
for i, n in enumerate((2, 3, 4)):
    fracs = tuple(0.01 if j == i else None for j in range(3))
    REP_CASES.append(
        ({"top_ngram_frac": fracs}, PROSE + " alpha beta gamma delta" * 3, f"gopher_rep_top_{n}_gram")
    )
for i, n in enumerate(range(5, 11)):
    fracs = tuple(0.01 if j == i else None for j in range(6))
    REP_CASES.append(({"dup_ngram_frac": fracs}, PROSE + "\n" + PROSE[:200], f"gopher_rep_dup_{n}_gram"))


@pytest.mark.parametrize("keep,text,expected", REP_CASES, ids=[c[2] for c in REP_CASES])
def test_gopher_repetition_reasons(keep, text, expected):
    config = off(GopherRepetitionConfig, **keep) if keep else GopherRepetitionConfig()
    assert reason(GopherRepetitionFilter(config), text) == expected


QUALITY_CASES = [
    ({}, "Too short to be a page.", "gopher_short_doc"),
    ({"max_words": 20}, PROSE, "gopher_long_doc"),
    ({"min_avg_word_length": 3}, "a b c d e f g h i j k l m n o p", "gopher_avg_word_short"),
    ({"max_avg_word_length": 10}, "incomprehensibilities " * 10, "gopher_avg_word_long"),
    ({"max_symbol_word_ratio": 0.1}, "#news #sport #tv " * 10, "gopher_hash_ratio"),
    ({"max_symbol_word_ratio": 0.1}, "wait... more... " * 10, "gopher_ellipsis_ratio"),
    ({"max_bullet_lines_ratio": 0.9}, "• one item\n- two items\n• three items", "gopher_bullet_lines"),
    (
        {"max_end_ellipsis_lines_ratio": 0.3},
        "Read more…\nSee the rest...\nDone.",
        "gopher_end_ellipsis",
    ),
    ({"min_alpha_words_ratio": 0.8}, "12 34 56 78 90 apples 11 22", "gopher_alpha_words"),
    ({"min_stop_words": 2}, "Cheap flights hotels deals booking today", "gopher_stop_words"),
]


@pytest.mark.parametrize("keep,text,expected", QUALITY_CASES, ids=[c[2] for c in QUALITY_CASES])
def test_gopher_quality_reasons(keep, text, expected):
    config = off(GopherQualityConfig, **keep) if keep else GopherQualityConfig()
    assert reason(GopherQualityFilter(config), text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Lorem ipsum dolor sit amet, consectetur.\n" + PROSE, "c4_lorem_ipsum"),
        ("The code reads var x = { a: 1 } here.\n" + PROSE, "c4_curly_bracket"),
        ("One sentence only, with no second one.", "c4_too_few_sentences"),
        ("", "c4_too_few_sentences"),
    ],
)
def test_c4_reasons(text, expected):
    cleaned, _ = C4LineCleaner().clean(text)
    assert reason(C4Filter(), cleaned) == expected


FINEWEB_CASES = [
    ({}, "", "fineweb_empty"),
    (
        {"min_line_punct_ratio": 0.12},
        "Home page of the site\nNews and sport today\n" * 3,
        "fineweb_line_punct_ratio",
    ),
    (
        {"max_short_line_ratio": 0.67},
        "Short line.\nAnother one.\nAnd one more.\n" + PROSE[:90],
        "fineweb_short_line_ratio",
    ),
    (
        {"max_char_dup_ratio": 0.1},
        PROSE + "\nShare this article with a friend today.\n" * 3,
        "fineweb_char_dup_ratio",
    ),
    ({"max_list_ratio": 0.3}, "apples.\npears.\nplums.\nfigs.", "fineweb_list_ratio"),
]


@pytest.mark.parametrize("keep,text,expected", FINEWEB_CASES, ids=[c[2] for c in FINEWEB_CASES])
def test_fineweb_reasons(keep, text, expected):
    config = off(FineWebConfig, **keep) if keep else FineWebConfig()
    assert reason(FineWebQualityFilter(config), text) == expected


@pytest.mark.parametrize("text", ["", "   \n\n\t  ", "!!! ... ??? --- ###", "…\n|\n.", "\u3000\u3000"])
def test_degenerate_texts_never_divide_by_zero(text):
    signals = quality_signals(text)
    assert all(isinstance(v, (int, float)) for v in signals.values())
    docs = [Document(text=text, id="d")]
    for step in quality_steps():
        docs = list(step.run(docs))
    assert docs == []


def test_signal_values_on_hand_computed_example():
    text = "The cat sat.\nThe cat sat.\nDogs bark loudly!"  # 43 characters, 12 tokens, 9 words
    s = quality_signals(text)
    assert split_words(text) == [
        "The",
        "cat",
        "sat",
        ".",
        "The",
        "cat",
        "sat",
        ".",
        "Dogs",
        "bark",
        "loudly",
        "!",
    ]
    assert s["gopher_words"] == 9 and s["gopher_avg_word_length"] == pytest.approx(32 / 9)
    assert s["gopher_alpha_words_ratio"] == 1.0 and s["gopher_alpha_tokens_ratio"] == pytest.approx(9 / 12)
    assert s["gopher_stop_words"] == 0  # "The" is not "the": case-sensitive, as Gopher/datatrove
    assert s["gopher_rep_dup_line_frac"] == pytest.approx(1 / 3)
    assert s["gopher_rep_dup_line_char_frac"] == pytest.approx(12 / 43)
    assert s["gopher_rep_dup_para_frac"] == 0.0
    assert s["gopher_rep_top_2_gram"] == pytest.approx(14 / 43)  # "The cat" (7 chars) twice
    assert s["fineweb_line_punct_ratio"] == 1.0 and s["fineweb_short_line_ratio"] == 1.0
    assert s["fineweb_char_dup_ratio"] == pytest.approx(12 / 41)  # newlines not counted
    assert s["fineweb_list_ratio"] == pytest.approx(2 / 12)
    assert s["c4_sentences"] == 3


@pytest.mark.parametrize(
    "text", [PROSE + "\n" + PROSE[:300], "ab c a bc " * 20, "x y z " * 50, "one", "b a c a b d"]
)
def test_dup_ngram_scan_equals_datatrove(text):
    from itertools import accumulate

    from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate

    words = split_words(text)
    offsets = [0, *accumulate(map(len, words))]
    for n in range(5, 11):
        assert _dup_ngram_chars("".join(words), offsets, n) == find_all_duplicate(words, n)
    ids = np.array([sorted(set(words)).index(w) for w in words], dtype=np.uint64)
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    for n in (2, 3, 4):  # ties go to the first n-gram seen, as Counter.most_common
        assert _top_ngram_chars(ids, lengths, n) == _top_ngram_chars_slow(words, n)


def test_sentence_count_follows_spacy_sentencizer():
    assert count_sentences(split_words("He left. She stayed! Did they? Yes.")) == 4
    assert count_sentences(split_words("The U.S. team won... again.")) == 1
    assert count_sentences(split_words('He said "stop." Then he left.')) == 2


def test_c4_line_cleaner():
    text = (
        "Please enable JavaScript to view this page.\nRead our Privacy Policy and cookie policy.\nToo short\n"
        "  The study[1] was published in 2020 by the team.  \n"
        + "x" * 1001
        + " long word line\nKept line here."
    )
    step = C4LineCleaner()
    docs = list(step.run([Document(text=text, id="c")]))
    assert docs[0].text == "The study was published in 2020 by the team.\nKept line here."
    assert docs[0].metadata["c4_lines_removed"] == 4
    stats = step.stats.to_dict()["stats"]
    for key in ("c4_line_javascript", "c4_line_policy", "c4_line_few_words", "c4_line_long_word"):
        assert stats[key] == 1, key


def test_table_layout_article_is_kept():
    """trafilatura writes an old <table> layout as one row per line: the article cell ends with '|'."""
    article = " ".join(PROSE.split("\n"))
    text = f"| Home News Sport Weather |  |\n| Top stories | {article} |  |\n| Help \\| RSS \\| Contact |  |"
    assert reason(FineWebQualityFilter(), text) is None
    assert reason(FineWebQualityFilter(datatrove_configs()["fineweb"]), text) == "fineweb_line_punct_ratio"


def test_steps_run_count_reasons_and_keep_signals():
    docs = [Document(text=PROSE, id="good"), Document(text="Too short.", id="short")]
    for step in quality_steps():
        docs = list(step.run(docs))
    assert [d.id for d in docs] == ["good"]
    assert {"gopher_words", "fineweb_line_punct_chars", "c4_lines_removed"} <= set(docs[0].metadata)


PARITY_TEXTS = [
    PROSE,
    "Home\nNews\nSport\nWeather\nContact us\n" * 5,
    "Buy cheap shoes online. " * 40,
    PROSE + "\nShare this story.\nShare this story.",
    "| Home News |  |\n| " + " ".join(PROSE.split("\n")) + " |  |",
    "Click here to enable javascript for this site.\n" + PROSE + "\nSee our privacy policy for details here.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" + PROSE,
    "Too short.",
    "The price is 12.50 dollars; 3,000 units at 4.5% cost 1,234.56 in total.\n" + PROSE,
]


@pytest.mark.parametrize("text", PARITY_TEXTS)
def test_decisions_equal_datatrove(text):
    pytest.importorskip("spacy")
    from datatrove.pipeline.filters import C4QualityFilter
    from datatrove.pipeline.filters import FineWebQualityFilter as DtFineWeb
    from datatrove.pipeline.filters import GopherQualityFilter as DtGopherQ
    from datatrove.pipeline.filters import GopherRepetitionFilter as DtGopherR

    ref = Document(text=text, id="r")
    dt_keep = all(
        f.filter(ref) is True
        for f in (DtGopherR(), DtGopherQ(), C4QualityFilter(filter_no_terminal_punct=False), DtFineWeb())
    )
    docs = [Document(text=text, id="o")]
    for step in quality_steps(**datatrove_configs()):
        docs = list(step.run(docs))
    assert bool(docs) == dt_keep
    if dt_keep:
        assert docs[0].text == ref.text
