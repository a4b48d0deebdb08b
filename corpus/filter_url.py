"""Stage 2: drop documents whose URL is on an adult/blocklist or spells out banned words.

FineWeb (Penedo et al. 2024, arXiv:2406.17557, "URL filtering") applies datatrove's `URLFilter`
(https://github.com/huggingface/datatrove/blob/v0.10.1/src/datatrove/pipeline/filters/url_filter.py):
UT1's adult domains and URLs (https://dsi.ut-capitole.fr/blacklists/) plus banned words in the URL.
Rules, in order, and the reason slug each one returns:
- `url_invalid`   no host can be parsed from `metadata["url"]`; dropped by default (`keep_invalid=False`):
                  such a URL cannot be checked, and Common Crawl never fetches one.
- `url_domain`    the host (lower case, punycode, no port/user-info/trailing dot/`www.`) is listed.
- `url_subdomain` a parent domain of the host is listed (cdn.x.com when x.com is). Only parents: a listed
                  host x.blogspot.com never blocks its sibling y.blogspot.com. A listed public suffix (sa.com)
                  blocks only itself unless blocklists/parent_suffixes.txt names it (.xxx, .sex, ...).
- `url_listed`    host/path, or a `/`-prefix of it (squidGuard's urllist semantics), is a listed URL,
                  whatever the scheme, `www.`, case or trailing slash. datatrove compares the raw URL with
                  scheme-less entries, so its URL list never matches a crawled URL.
- `url_banned_word`       a token of host+path is a FineWeb hard banned word (FineWeb: any token).
- `url_soft_banned_words` >= 2 distinct soft banned words among the tokens (FineWeb: soft_word_threshold=2).
- `url_banned_subword`    a banned subword ("big breasts" -> "bigbreasts") starts a token (bigbreastsworld.com,
                  /big-breasts-x) or follows dictionary words inside one (freegangbang.com).
Deviations from FineWeb, all to avoid blocking innocent pages (the Scunthorpe problem):
- Words are read from host+path only, never the query string or fragment (`?ref=pornsite.com` is a link
  to a site, not the site).
- A subword must start a token or follow dictionary words inside it (blocklists/english_words.txt: words
  of >= 4 letters and a few short ones), so "sussexfreepress" does not hit "sexfree" ("sus" is no word)
  and "boxvideos" does not hit "xvideos"; FineWeb matches any substring of the whole URL with its
  punctuation removed.
- A banned word with an innocent sense (tit: a bird; cock: poultry; scat: jazz) is ignored when the token
  before or after it, or any token of the URL, marks that sense (blocklists/innocent_senses.txt):
  `great-tit-nesting` stays, `new-tits-videos` goes.
"""

from __future__ import annotations

import itertools
import os
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote

from datatrove.data import Document

from corpus.blocklist_index import (
    DOMAIN,
    HOST,
    URL,
    BlocklistIndex,
    UrlParts,
    host_keys,
    list_lines,
    load_or_build,
    normalize_host,
    normalize_url_entry,
    parse_url,
    sorted_hashes,
    sources_digest,
    split_domains,
    url_keys,
    ut1_chunks,
)
from corpus.stage import Filter

REPO_ROOT = Path(__file__).resolve().parents[1]
UT1_TARBALL = "url_filterblacklistsv0_3_0.tar.gz"  # in datatrove's assets/: 4.56 M domains, 19.6 k URLs
TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")  # FineWeb's normalizer: any run of non-alphanumerics splits


def fineweb_normalize(word: str) -> str:
    return TOKEN_SPLIT.sub("", word.lower())


def url_tokens(parts: UrlParts) -> list[str]:
    """FineWeb's URL words, from host+path only (percent-escapes decoded first)."""
    return [t for t in TOKEN_SPLIT.split(f"{parts.host}/{unquote(parts.path)}") if t]


def is_word(piece: str, vocab: frozenset[str]) -> bool:
    return piece in vocab or piece.isdigit()


def splits_into_words(text: str, vocab: frozenset[str], longest: int) -> bool:
    """True if `text` is a concatenation of dictionary words and digit runs (dynamic programming)."""
    reach = [True] + [False] * len(text)
    for i in range(len(text)):
        if reach[i]:
            for j in range(i + 1, min(len(text), i + longest) + 1):
                reach[j] = reach[j] or is_word(text[i:j], vocab)
    return reach[-1]


def reading_across(text: str, cuts: list[int], vocab: frozenset[str], longest: int) -> bool:
    """True if `text` splits wholly into words with one word running across a cut position."""
    n = len(text)
    head = [True] + [False] * n  # head[i]: text[:i] splits into words
    for i in range(n):
        for j in range(i + 1, min(n, i + longest) + 1) if head[i] else ():
            head[j] = head[j] or is_word(text[i:j], vocab)
    tail = [False] * n + [True]  # tail[j]: text[j:] splits into words
    for i in range(n - 1, -1, -1):
        tail[i] = any(tail[j] and is_word(text[i:j], vocab) for j in range(i + 1, min(n, i + longest) + 1))
    return head[n] and any(head[i] and tail[j] and is_word(text[i:j], vocab) for c in cuts
                           for i in range(max(0, c - longest + 1), c) for j in range(c + 1, min(n, i + longest) + 1))


@dataclass(frozen=True)  # not slots: cached_property needs __dict__
class WordRules:
    """FineWeb's three word lists plus what keeps innocent URLs out of them."""

    hard: frozenset[str]
    soft: frozenset[str]
    subwords: tuple[str, ...]
    vocab: frozenset[str]  # dictionary for splitting the rest of a token around a subword
    senses: dict = field(default_factory=dict)  # word -> (before, after, anywhere) token sets

    @cached_property
    def longest_word(self) -> int:
        return max(map(len, self.vocab), default=1)

    @cached_property
    def min_subword(self) -> int:
        return min(map(len, self.subwords), default=1)

    @cached_property
    def by_prefix(self) -> dict[str, list[str]]:
        """Subwords by their first `min_subword` letters: a scan costs one dict lookup per position."""
        out = {}
        for sub in self.subwords:
            out.setdefault(sub[: self.min_subword], []).append(sub)
        return out

    def innocent(self, tokens: list[str], i: int) -> bool:
        sense = self.senses.get(tokens[i])
        if sense is None:
            return False
        before, after, anywhere = sense
        return ((i > 0 and tokens[i - 1] in before) or (i + 1 < len(tokens) and tokens[i + 1] in after)
                or not anywhere.isdisjoint(tokens))

    def hits(self, tokens: list[str], words: frozenset[str]) -> set[str]:
        return {t for i, t in enumerate(tokens) if t in words and not self.innocent(tokens, i)}

    def subword_hit(self, tokens: list[str]) -> str | None:
        """A banned subword that starts a token, or follows dictionary words inside one ("freegangbang")
        when no reading of the token as words runs across its start ("middlesex|free" if "middlesex" were
        a word). What follows it is not checked (FineWeb checks nothing): "gangbangvids4u" is caught, but
        so is "phonesexpress" (phones|express), as in FineWeb: its end is where spam glues its words."""
        joined, starts = "".join(tokens), [0]
        for t in tokens:
            starts.append(starts[-1] + len(t))
        longest, m = self.longest_word, self.min_subword
        for p in range(len(joined) - m + 1):  # one set lookup per position finds the few candidates
            for sub in self.by_prefix.get(joined[p:p + m], ()):
                if not joined.startswith(sub, p):
                    continue
                k = bisect_right(starts, p) - 1  # the token holding the subword's first letter
                token, a = tokens[k], p - starts[k]
                if token != sub and token in self.vocab and a + len(sub) <= len(token):
                    continue  # a dictionary word that merely contains the phrase (none of GPT-2's does today)
                if a == 0 or (splits_into_words(token[:a], self.vocab, longest)
                              and not reading_across(token, [a], self.vocab, longest)):
                    return sub
        return None


def read_words(paths: list[Path]) -> frozenset[str]:
    """FineWeb word-list format: one word or phrase a line, `#` lines skipped, normalized to [a-z0-9]."""
    return frozenset(w for p in paths if p.exists() for w in map(fineweb_normalize, list_lines(p)) if w)


def read_senses(paths: list[Path]) -> dict:
    """innocent_senses.txt lines: `words | before | after | anywhere` (space-separated token sets)."""
    senses = {}
    for path in paths:
        for line in list_lines(path) if path.exists() else ():
            cols = [frozenset(c.split()) for c in line.split("|")]
            if len(cols) != 4:
                raise ValueError(f"{path}: `{line}` needs 4 columns `words | before | after | anywhere`")
            for word in cols[0]:
                senses[word] = tuple(cols[1:])
    return senses


def default_cache_dir() -> Path:
    root = os.environ.get("CORPUS_CACHE_DIR")
    return Path(root) / "blocklist" if root else Path.home() / ".cache" / "fineweb-corpus" / "blocklist"


def blocklists_home() -> Path:
    """The repository's blocklists/ folder, or $CORPUS_BLOCKLISTS_DIR for an install without the checkout
    (a wheel): the rules' own data (english_words, innocent_senses, parent_suffixes) lives there."""
    home = Path(os.environ.get("CORPUS_BLOCKLISTS_DIR") or REPO_ROOT / "blocklists")
    if not (home / "english_words.txt").is_file():
        raise FileNotFoundError(f"{home}/english_words.txt not found: install the repository in editable mode "
                                "(`make install`), or set CORPUS_BLOCKLISTS_DIR to a copy of its blocklists/")
    return home


def resolve_lists_dir(path: str | os.PathLike | None) -> Path | None:
    """A relative path is taken from the folder above blocklists/ (the repository root), never the cwd:
    the result must not depend on where a worker starts."""
    if path is None:
        return None
    path = Path(path) if Path(path).is_absolute() else blocklists_home().parent / path
    if not path.is_dir():
        raise FileNotFoundError(f"blocklist folder {path} not found: pass extra_lists_dir=<folder with "
                                "domains*.txt / urls*.txt / banned_*.txt>, or None for none")
    return path


class UrlBlocklistFilter(Filter):
    """Stage 2. Drops a document by its `metadata["url"]`; see the module docstring for rules and reasons.

    Lists are loaded lazily on the first document (the step pickles small to workers); the domain and URL
    hashes come from a per-machine cache (corpus/blocklist_index.py): built once (~10-20 s), then mapped.
    """

    name = "2 URL blocklist"

    def __init__(self, use_ut1: bool = True, extra_lists_dir: str | os.PathLike | None = "blocklists/",
                 cache_dir: str | os.PathLike | None = None, use_fineweb_words: bool = True,
                 soft_word_threshold: int = 2,  # FineWeb / datatrove URLFilter default
                 keep_invalid: bool = False, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.use_ut1, self.use_fineweb_words = use_ut1, use_fineweb_words
        self.extra_dir = resolve_lists_dir(extra_lists_dir)
        self.rules_dir = blocklists_home()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.soft_word_threshold, self.keep_invalid = soft_word_threshold, keep_invalid
        self._index: BlocklistIndex | None = None
        self._words: WordRules | None = None

    def __getstate__(self):  # ship the config to workers, not the memory maps
        return {**self.__dict__, "_index": None, "_words": None}

    def _files(self, pattern: str) -> list[Path]:
        dirs = dict.fromkeys(d for d in (self.rules_dir, self.extra_dir) if d is not None)
        return [p for d in dirs for p in sorted(d.glob(pattern))]

    def _fineweb_asset(self, name: str) -> list[Path]:
        from datatrove.utils._import_utils import ASSETS_PATH

        return [Path(ASSETS_PATH) / name] if self.use_fineweb_words else []

    def load(self) -> None:
        """Open (building it on the first run on this machine) the index; read the word lists."""
        ut1 = self._fineweb_asset(UT1_TARBALL) if self.use_ut1 else []
        lists = self._files("domains*.txt") + self._files("urls*.txt") + self._files("parent_suffixes*.txt")
        digest = sources_digest(ut1 + lists, extra=str([p.name for p in ut1 + lists]))
        self._index = load_or_build(self.cache_dir, digest, lambda: self._build(ut1))
        hard = read_words(self._fineweb_asset("banned_words.txt") + self._files("banned_words*.txt"))
        soft = read_words(self._fineweb_asset("soft_banned_words.txt") + self._files("soft_banned_words*.txt"))
        self._words = WordRules(
            hard=hard, soft=soft,
            subwords=tuple(sorted(read_words(self._fineweb_asset("banned_subwords.txt")
                                             + self._files("banned_subwords*.txt")))),
            vocab=read_words(self._files("english_words*.txt")) | {w for w in hard | soft if len(w) >= 4},
            senses=read_senses(self._files("innocent_senses*.txt")),
        )

    def _build(self, ut1: list[Path]):
        """Sorted hashes of every tagged key, streamed: peak RSS ~0.5 GB once per machine, not per worker."""
        domains = [p.read_text(encoding="utf-8") for p in self._files("domains*.txt")]
        urls = [line for p in self._files("urls*.txt") for line in list_lines(p)]
        if ut1:
            domains = itertools.chain(ut1_chunks(ut1[0], "domains"), domains)
            urls += "".join(ut1_chunks(ut1[0], "urls")).splitlines()  # 19.6 k lines
        parent_ok = {normalize_host(h) for p in self._files("parent_suffixes*.txt") for h in list_lines(p)}
        parents, exact = split_domains(domains, parent_ok)
        return sorted_hashes(itertools.chain((DOMAIN + h for h in parents), (HOST + h for h in exact),
                                             (URL + u for u in map(normalize_url_entry, urls) if u)))

    def reject_reason(self, doc: Document) -> str | None:
        if self._index is None:
            self.load()
        parts = parse_url(doc.metadata.get("url"))
        if parts is None:
            return None if self.keep_invalid else "url_invalid"
        hosts = host_keys(parts.host)
        # candidates in decision order: the host (as domain, as exact host), its parents, the URL keys
        keys = [DOMAIN + hosts[0], HOST + hosts[0]] + [DOMAIN + h for h in hosts[1:]]
        hit = self._index.first_hit(keys + [URL + k for k in url_keys(parts)])
        if hit >= 0:
            return "url_domain" if hit < 2 else "url_subdomain" if hit < len(keys) else "url_listed"
        return self.word_reason(url_tokens(parts))

    def word_reason(self, tokens: list[str]) -> str | None:
        words = self._words
        if words.hits(tokens, words.hard):
            return "url_banned_word"
        if len(words.hits(tokens, words.soft)) >= self.soft_word_threshold:
            return "url_soft_banned_words"
        if words.subword_hit(tokens):
            return "url_banned_subword"
        return None
