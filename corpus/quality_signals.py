"""Stage 5 scores: pure functions that measure a text for the Gopher, C4 and FineWeb quality rules.

Nothing here decides; `corpus.filter_quality` compares these numbers with thresholds. The text is split into
lines once and into words once (`TextView`), and every signal group reads that one split: datatrove instead
runs spaCy in the Gopher repetition, Gopher quality, C4 (once per line) and FineWeb filters.

Word splitting: FineWeb with datatrove 0.10.1 uses spaCy `blank("en")`. `split_words` is a regex that
reproduces its English tokens closely (clitics 's/n't/'re split off, numbers such as 3.5 and 1,000 kept whole,
U.S./e.g. kept, URLs kept, punctuation one token per character except "..." and "--"). Known differences,
measured on the bench texts (117,229 spaCy tokens vs 117,581; same decisions, see
docs/stage_5_filter_quality.md): spaCy keeps some hyphenated codes whole (COVID-19, +44), splits digits from
units (5m → 5 m), and knows a longer list of abbreviations (etc., a.m.).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from itertools import accumulate

import numpy as np
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, POLICY_SUBSTRINGS
from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates
from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

STOP_WORDS = frozenset(("the", "be", "to", "of", "and", "that", "have", "with"))  # Gopher §A1 / datatrove
TOP_NGRAM_SIZES = (2, 3, 4)  # Gopher Table A1: top n-gram character fraction
DUP_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)  # Gopher Table A1: duplicate n-gram character fraction
_TERMINAL = tuple(TERMINAL_PUNCTUATION)  # datatrove 0.10.1 FineWebQualityFilter stop chars (no quotes)
_LINE_CLOSERS = "\"'”’»)]} \t*_"  # may follow a sentence's final mark: closing quotes, brackets, emphasis

_CLITIC = r"(?:[sSdDmM]|re|RE|ve|VE|ll|LL)\b"  # 's 're 've 'll 'd 'm: spaCy splits them off
_ABBREVIATIONS = "Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|Mt|Inc|Ltd|Co|Corp|Gov|Sen|Rep|Gen|Lt|Col|Sgt|Capt"
_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD_RE = re.compile(
    rf"""(?:https?://|www\.)\S+?(?=[.,;:!?"')\]]*(?:\s|$))     # URL, trailing punctuation split off
    |[{_CJK}]\S*?(?=[、。，．；：？！」』）”]*(?:\s|$))           # CJK run up to a space (no inner split)
    |[\w.+-]+@[\w-]+(?:\.[\w-]+)+|@\w+                         # e-mail address, @handle
    |(?:[^\W\d_]\.)+(?!\w)|(?:{_ABBREVIATIONS})\.(?=\s+\w)    # U.S. e.g. r. Mr. keep their dots
    |\w+?(?=n['’]t\b)|(?<=\w)n['’]t\b                           # do|n't, ca|n't
    |(?<=\w)['’]{_CLITIC}|[Cc]an(?=not\b)                        # John|'s, can|not
    |\d+(?:[.,:/–—]\d+)+                                         # 3.5 1,000 10:30 9/11 1919–1932
    |\w+(?:['’](?!{_CLITIC})\w+|(?<=[^\W\d_])-(?=\d)\w+)*(?:\.\w+)*  # word, O'Neill, COVID-19, a.com
    |\.{{2,}}|-{{2,}}|[^\w\s]                                     # "...", "--", any other symbol
    """,
    re.VERBOSE,
)


def split_words(text: str) -> list[str]:
    """English word tokens, close to spaCy blank("en") as datatrove uses it (whitespace never in a token)."""
    return _WORD_RE.findall(text)


def is_punct(token: str) -> bool:
    """spaCy's `Token.is_punct`: every character is Unicode punctuation (category P*)."""
    return all(unicodedata.category(ch).startswith("P") for ch in token)


def count_sentences(words: list[str]) -> int:
    """Sentences in one line as spaCy's rule-based `sentencizer` counts them (datatrove's C4 sentence count).

    A new sentence starts at the first non-punctuation token after a sentence-final mark ("." "!" "?" ...).
    """
    if not words:
        return 0
    count, seen_final = 1, False
    for w in words:
        if w in TERMINAL_PUNCTUATION:
            seen_final = True
        elif seen_final and not is_punct(w):
            count, seen_final = count + 1, False
    return count


class TextView:
    """One text split once into lines ("\\n") and words (per line: the C4 sentence count reuses them)."""

    __slots__ = ("line_words", "lines", "text", "words")

    def __init__(self, text: str):
        self.text = text
        self.lines = text.split("\n")
        self.line_words = [split_words(line) for line in self.lines]
        self.words = [w for ws in self.line_words for w in ws]


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _top_ngram_chars(ids: np.ndarray, lengths: np.ndarray, n: int) -> int:
    """Characters in the most frequent n-gram (" "-joined, times its count), as datatrove's Gopher filter:
    ties go to the n-gram seen first (Counter.most_common). `ids` are word ids < 2**16, so 4 fit a uint64."""
    if len(ids) < n:
        return 0
    keys = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    for k in range(n):
        keys = (keys << 16) | ids[k : len(ids) - n + 1 + k]
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    best = counts.max()
    start = int(first[counts == best].min())
    return (int(lengths[start : start + n].sum()) + n - 1) * int(best)


def _top_ngram_chars_slow(words: list[str], n: int) -> int:
    """The same with a Counter, for documents of more than 65,536 distinct words."""
    if len(words) < n:
        return 0
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    top, count = grams.most_common(1)[0]
    return (sum(map(len, top)) + n - 1) * count


def _dup_ngram_chars(joined: str, offsets: list[int], n: int) -> int:
    """datatrove's `find_all_duplicate` (greedy: a repeated n-gram counts its characters and skips n words;
    n-grams are "".join-ed words), with each n-gram sliced from the joined words instead of re-joined."""
    seen, dup, i, last = set(), 0, 0, len(offsets) - n
    while i < last:
        gram = joined[offsets[i] : offsets[i + n]]
        if gram in seen:
            dup, i = dup + len(gram), i + n
        else:
            seen.add(gram)
            i += 1
    return dup


def gopher_repetition_signals(view: TextView) -> dict[str, float]:
    """Gopher (arXiv 2112.11446, Table A1) repetition fractions, each over the document's characters."""
    text, n_chars = view.text, len(view.text)
    paragraphs = re.split(r"\n{2,}", text.strip())
    para_dups, para_dup_chars = find_duplicates(paragraphs)
    lines = re.split(r"\n+", text)
    line_dups, line_dup_chars = find_duplicates(lines)
    out = {
        "gopher_rep_chars": len(text.strip()),
        "gopher_rep_dup_para_frac": _ratio(para_dups, len(paragraphs)),
        "gopher_rep_dup_para_char_frac": _ratio(para_dup_chars, n_chars),
        "gopher_rep_dup_line_frac": _ratio(line_dups, len(lines)),
        "gopher_rep_dup_line_char_frac": _ratio(line_dup_chars, n_chars),
    }
    vocab = {w: i for i, w in enumerate(dict.fromkeys(view.words))}
    ids = np.fromiter((vocab[w] for w in view.words), dtype=np.uint64, count=len(view.words))
    lengths = np.fromiter(map(len, view.words), dtype=np.int64, count=len(view.words))
    for n in TOP_NGRAM_SIZES:
        top = (
            _top_ngram_chars(ids, lengths, n)
            if len(vocab) <= 1 << 16
            else _top_ngram_chars_slow(view.words, n)
        )
        out[f"gopher_rep_top_{n}_gram"] = _ratio(top, n_chars)
    joined, offsets = "".join(view.words), [0, *accumulate(map(len, view.words))]
    dup_chars = 1
    for n in DUP_NGRAM_SIZES:
        # no repeated n-gram means no repeated longer one either: skip the scans for clean prose
        dup_chars = _dup_ngram_chars(joined, offsets, n) if dup_chars else 0
        out[f"gopher_rep_dup_{n}_gram"] = _ratio(dup_chars, n_chars)
    return out


def _has_alpha(word: str) -> bool:
    return any(c.isalpha() for c in word)


def gopher_quality_signals(view: TextView) -> dict[str, float | int]:
    """Gopher (arXiv 2112.11446, §A1 "quality filters") document statistics, datatrove's definitions."""
    text, words = view.text, view.words
    n_words = len(words)  # every token, symbols included (denominator of the ratios, as datatrove)
    kinds = {w: (not PUNCTUATION_SET.issuperset(w), _has_alpha(w)) for w in set(words)}  # per distinct word
    real_words = [w for w in words if kinds[w][0]]  # not only punctuation
    word_lengths = [len(w) for w in real_words]
    alpha_words = sum(kinds[w][1] for w in real_words)
    lines = text.splitlines()
    return {
        "gopher_words": len(word_lengths),  # words with a non-symbol character
        "gopher_avg_word_length": _ratio(sum(word_lengths), len(word_lengths)),
        "gopher_hash_ratio": _ratio(text.count("#"), n_words),
        "gopher_ellipsis_ratio": _ratio(text.count("...") + text.count("…"), n_words),
        "gopher_bullet_lines_ratio": _ratio(
            sum(s.lstrip().startswith(("•", "-")) for s in lines), len(lines)
        ),
        "gopher_end_ellipsis_lines_ratio": _ratio(
            sum(s.rstrip().endswith(("...", "…")) for s in lines), len(lines)
        ),
        # Gopher: "80% of words contain at least one alphabetic character". datatrove divides by every token,
        # punctuation included (`_tokens_`), which puts prose with numbers (prices, phones) near 0.8; ours
        # divides by the same words it counts for gopher_words.
        "gopher_alpha_words_ratio": _ratio(alpha_words, len(real_words)),
        "gopher_alpha_tokens_ratio": _ratio(alpha_words, n_words),  # symbol-only tokens have no letter
        "gopher_stop_words": len(STOP_WORDS.intersection(words)),  # distinct, case-sensitive as datatrove
    }


def c4_signals(view: TextView) -> dict[str, int]:
    """C4 (Raffel et al. 2020 §2.2; tfds c4_utils.py) document checks, on a text cleaned line by line."""
    low = view.text.lower()
    return {
        "c4_sentences": sum(count_sentences(ws) for ws in view.line_words),
        "c4_lorem_ipsum": int("lorem ipsum" in low),
        "c4_curly_bracket": int("{" in view.text),
    }


_CELL_BORDER = re.compile(
    r"(?<!\\)\|"
)  # trafilatura writes table rows as "| cell | cell |", literal pipes as "\\|"


def line_punct_chars(lines: list[str]) -> float:
    """Share of characters in table cells / lines that end a sentence (ours; FineWeb counts whole lines).

    Each line is cut at table-cell borders, and trailing closers (quotes, brackets, "*", "_") are ignored
    before the terminal-punctuation test; cells are weighted by length. An article paragraph laid out in a
    table cell ("| nav | The article ... form." | |") counts for its length, not as one unpunctuated line.
    """
    total = punct = 0
    for line in lines:
        for cell in _CELL_BORDER.split(line):
            cell = cell.strip()
            total += len(cell)
            if cell.rstrip(_LINE_CLOSERS).endswith(_TERMINAL):
                punct += len(cell)
    return _ratio(punct, total)


def fineweb_signals(view: TextView) -> dict[str, float | int]:
    """FineWeb (arXiv 2406.17557 §3.3; datatrove fineweb_quality_filter.py) statistics of non-empty lines.

    `fineweb_line_punct_ratio` is datatrove's (share of lines ending in terminal punctuation);
    `fineweb_line_punct_chars` is the length-weighted, table-aware variant (see `line_punct_chars`).
    """
    lines = [line for line in view.lines if line.strip()]
    short = sum(len(line) <= 30 for line in lines)  # FineWeb: short_line_length 30
    return {
        "fineweb_lines": len(lines),
        "fineweb_line_punct_ratio": _ratio(sum(line.endswith(_TERMINAL) for line in lines), len(lines)),
        "fineweb_line_punct_chars": line_punct_chars(lines),
        "fineweb_short_line_ratio": _ratio(short, len(lines)),
        "fineweb_char_dup_ratio": _ratio(find_duplicates(lines)[1], len(view.text) - view.text.count("\n")),
        "fineweb_list_ratio": _ratio(view.text.count("\n"), len(view.words)),  # newlines per word
    }


def quality_signals(text: str) -> dict[str, float | int]:
    """Every stage-5 signal of `text` (one line split, one word split). Filters use the groups separately."""
    view = TextView(text)
    return {
        **gopher_repetition_signals(view),
        **gopher_quality_signals(view),
        **c4_signals(view),
        **fineweb_signals(view),
    }


def c4_clean_lines(
    text: str,
    max_word_length: int | None = 1000,
    min_words_per_line: int | None = 3,
    remove_citations: bool = True,
    drop_javascript: bool = True,
    drop_policy: bool = True,
) -> tuple[str, Counter]:
    """C4's line cleaning in datatrove C4QualityFilter's order (terminal-punctuation rule off, as FineWeb).

    Returns the kept lines (stripped, joined by "\\n") and a count of removed lines per reason. Lines with
    "lorem ipsum" or "{" are kept so the document-level C4 check sees them exactly where datatrove would.
    """
    kept, removed = [], Counter()
    for line in text.splitlines():
        line = line.strip()
        words = line.split()
        if max_word_length is not None and any(len(w) > max_word_length for w in words):
            removed["c4_line_long_word"] += 1
            continue
        if remove_citations:
            line = CITATION_REGEX.sub("", line)
        if min_words_per_line is not None and len(words) < min_words_per_line:
            removed["c4_line_few_words"] += 1
            continue
        low = line.lower()
        if "lorem ipsum" in low:
            kept.append(line)  # the document is dropped by C4Filter
        elif drop_javascript and "javascript" in low:
            removed["c4_line_javascript"] += 1
        elif "{" in line:
            kept.append(line)  # the document is dropped by C4Filter
        elif drop_policy and any(p in low for p in POLICY_SUBSTRINGS):
            removed["c4_line_policy"] += 1
        else:
            kept.append(line)
    return "\n".join(kept).strip(), removed
