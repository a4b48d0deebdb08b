"""Stage 6, part 1: the one MinHash signature definition (shared by the library call and the pipeline steps).

A document becomes one fixed-size record: a 64-bit key of its id and `bands + 1` 64-bit band keys (the last
one is a hash of the whole normalized text: exact duplicates are caught as an extra band). Two documents are
candidate duplicates when any band key is equal.

Signatures are bit-identical to datatrove 0.10.1's `MinhashDedupSignature` with the same `MinhashConfig`
(n-grams, bands × rows, seed, `HashConfig(hash_fc, precision=64)`), which FineWeb ran with sha1: the same
`simplify_text` normalization, the same spaCy word splitting, the same affine permutations mod 2^61-1
(including datatrove's uint64 wrap-around of `shingle * a`). `tests/test_dedup_minhash.py` checks it. The speed
comes from three exact shortcuts: spaCy runs once per distinct space-separated word (its tokenizer splits on
spaces first, so a word's pieces do not depend on its neighbours), diacritics are stripped with one
`str.translate`, and the permutations run on a whole batch of documents in numpy with a shift-and-mask
reduction instead of a 64-bit `%`.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha1
from itertools import chain

import numpy as np
import xxhash
from datatrove.utils.text import TextNormConfig, simplify_text

MERSENNE = np.uint64((1 << 61) - 1)  # datatrove's `_mersenne_prime`
_NO_DIACRITICS = TextNormConfig(norm_unicode_diacritics=False)  # defaults otherwise, as FineWeb
_WORD_CACHE_MAX = 2_000_000  # distinct words kept per process (~200 MB at worst), then the cache restarts


@dataclass(frozen=True)
class MinhashConfig:
    """FineWeb's MinHash settings by default (datatrove examples/fineweb.py: 5-grams, 14 buckets × 8 hashes,
    sha1 64-bit, seed 1). `word_splitter="spacy"` reproduces datatrove's English words exactly;
    `"whitespace"` is `str.split()` (no spaCy; differs on e.g. "im" → "i m", "£0m" → "£ 0 m")."""

    n_grams: int = 5
    bands: int = 14
    rows: int = 8
    hash_fc: str = "sha1"  # FineWeb's choice; "xxhash" (datatrove 0.10.1's default) is ~2× cheaper per shingle
    seed: int = 1
    word_splitter: str = "spacy"
    exact: bool = True  # add the normalized-text hash as an extra band

    def __post_init__(self):
        for name in ("n_grams", "bands", "rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"MinhashConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hash_fc not in ("sha1", "xxhash"):
            raise ValueError(f"MinhashConfig.hash_fc must be 'sha1' or 'xxhash', got {self.hash_fc!r}")
        if self.word_splitter not in ("spacy", "whitespace"):
            raise ValueError(f"MinhashConfig.word_splitter must be 'spacy' or 'whitespace', got {self.word_splitter!r}")

    @property
    def num_hashes(self) -> int:
        return self.bands * self.rows

    @property
    def num_keys(self) -> int:
        return self.bands + (1 if self.exact else 0)


def record_dtype(config: MinhashConfig) -> np.dtype:
    """One document's signature record: 8 bytes of id key + 8 bytes per band key."""
    return np.dtype([("id", "<u8"), ("keys", "<u8", (config.num_keys,))])


@lru_cache(maxsize=1)
def _diacritics_table() -> dict[int, None]:
    """`str.translate` table deleting every combining mark (category Mn), as datatrove's per-char loop does."""
    return {c: None for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Mn"}


def normalize_text(text: str) -> str:
    """datatrove's `simplify_text` with the default `TextNormConfig` (lowercase, digits → 0, punctuation → space,
    whitespace collapsed, diacritics stripped), the last step done by one `str.translate` in C."""
    head = simplify_text(text, _NO_DIACRITICS)
    if head.isascii():
        return head
    return unicodedata.normalize("NFD", head).translate(_diacritics_table()).strip()


class WordSplitter:
    """Words of normalized text. "spacy" = datatrove's English tokenizer (spaCy `blank("en")`), memoized per
    space-separated chunk; "whitespace" = `str.split()`."""

    def __init__(self, kind: str = "spacy"):
        self.kind = kind
        self._nlp = None
        self._cache: dict[str, tuple[str, ...]] = {}

    def _pieces(self, chunk: str) -> tuple[str, ...]:
        if self._nlp is None:
            self._nlp = spacy_english_tokenizer()
        if len(self._cache) >= _WORD_CACHE_MAX:
            self._cache.clear()
        with self._nlp.vocab.memory_zone():  # else spaCy's string store grows with every new word, forever
            pieces = tuple(t for t in (tok.text.strip() for tok in self._nlp(chunk)) if t)
        self._cache[chunk] = pieces
        return pieces

    def __call__(self, normalized: str) -> list[str]:
        chunks = normalized.split(" ")
        if self.kind == "whitespace":
            return [c for c in chunks if c]
        pieces = list(map(self._cache.get, chunks))  # C-level loops: this runs once per word of the corpus
        if None in pieces:
            pieces = [p if p is not None else self._pieces(c) for p, c in zip(pieces, chunks)]
        return list(chain.from_iterable(pieces))

    def __getstate__(self):  # executors pickle steps: ship the splitter without spaCy or its cache
        return {"kind": self.kind, "_nlp": None, "_cache": {}}


def spacy_english_tokenizer():
    """The tokenizer of spaCy's `blank("en")` (datatrove's English word tokenizer), built from the English
    defaults directly: `spacy.blank` also imports every registered spaCy plugin (presidio, transformers...),
    which costs seconds per process. Imported here only: the "whitespace" splitter works without spaCy."""
    from spacy.lang.en import English
    from spacy.tokenizer import Tokenizer
    from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex
    from spacy.vocab import Vocab

    d = English.Defaults
    return Tokenizer(
        Vocab(), rules=d.tokenizer_exceptions, prefix_search=compile_prefix_regex(d.prefixes).search,
        suffix_search=compile_suffix_regex(d.suffixes).search,
        infix_finditer=compile_infix_regex(d.infixes).finditer, token_match=d.token_match, url_match=d.url_match,
    )


def shingle_hashes(words: list[str], config: MinhashConfig) -> np.ndarray:
    """64-bit hashes of the word n-grams joined by one space (none when fewer than n words, as datatrove).
    sha1: the first 8 bytes of the digest, little-endian (datatrove's `sha1_hash64`); xxhash: xxh64."""
    n = config.n_grams
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    grams = map(" ".join, zip(*(words[k:] for k in range(n))))
    if config.hash_fc == "xxhash":
        return np.fromiter(map(xxhash.xxh64_intdigest, grams), dtype=np.uint64, count=len(words) - n + 1)
    digests = b"".join([sha1(g).digest() for g in map(str.encode, grams)])
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, 20)[:, :8].copy().view("<u8").ravel()


@lru_cache(maxsize=8)
def permutations(seed: int, num_hashes: int) -> tuple[np.ndarray, np.ndarray]:
    """datatrove's `MinhashDedupSignature.parameters`: (a, b) drawn from RandomState(seed)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(1, MERSENNE, dtype=np.uint64, size=num_hashes)
    b = gen.randint(0, MERSENNE, dtype=np.uint64, size=num_hashes)
    return a, b


def _mod_mersenne(x: np.ndarray) -> np.ndarray:
    """x % (2^61 - 1) in place for uint64 x, without a division: x = hi·2^61 + lo ≡ hi + lo =: r ≤ p + 7, and
    r mod p = (r + ((r + 1) >> 61)) & p (the carry is 1 exactly when r ≥ p)."""
    hi = x >> np.uint64(61)
    np.bitwise_and(x, MERSENNE, out=x)
    x += hi
    np.add(x, np.uint64(1), out=hi)
    np.right_shift(hi, np.uint64(61), out=hi)
    x += hi
    np.bitwise_and(x, MERSENNE, out=x)
    return x


def minhash_signatures(shingles: list[np.ndarray], config: MinhashConfig, chunk: int = 1024) -> np.ndarray:
    """(docs, bands·rows) uint64 minima of `(h·a + b) mod p` (uint64 wrap in h·a as in datatrove), one numpy
    pass over the shingles of many documents. Rows of documents without shingles are all 0xFF…"""
    a, b = permutations(config.seed, config.num_hashes)
    sigs = np.full((len(shingles), config.num_hashes), np.iinfo(np.uint64).max, dtype=np.uint64)
    lengths = np.array([len(s) for s in shingles], dtype=np.int64)
    if lengths.sum() == 0:
        return sigs
    flat = np.concatenate(shingles)
    owner = np.repeat(np.arange(len(shingles)), lengths)
    for start in range(0, len(flat), chunk):
        part, who = flat[start : start + chunk], owner[start : start + chunk]
        phv = np.multiply(part[:, None], a[None, :])
        phv += b[None, :]
        phv = _mod_mersenne(phv)
        cuts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        docs = who[cuts]
        sigs[docs] = np.minimum(sigs[docs], np.minimum.reduceat(phv, cuts, axis=0))
    return sigs


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection on uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def band_keys(sigs: np.ndarray, config: MinhashConfig) -> np.ndarray:
    """(docs, bands) 64-bit keys, one per band of `rows` hashes; equal bands give equal keys. 0 is reserved
    for "no key" (documents shorter than n words), so a computed 0 becomes 1."""
    rows = sigs.reshape(len(sigs), config.bands, config.rows)
    keys = np.broadcast_to(np.arange(1, config.bands + 1, dtype=np.uint64), rows.shape[:2]).copy()
    with np.errstate(over="ignore"):
        for r in range(config.rows):
            keys = _mix64(keys ^ rows[:, :, r])
    keys[keys == 0] = 1
    keys[~(sigs != np.iinfo(np.uint64).max).any(axis=1)] = 0
    return keys


def text_key(normalized: str) -> int:
    """Exact-duplicate key: xxh64 of the normalized text; 0 (no key) for empty text."""
    return (xxhash.xxh64_intdigest(normalized.encode("utf-8")) or 1) if normalized else 0


def id_key(doc_id: str) -> int:
    """64-bit key of a document id (WARC-Record-ID): what pairs, clusters and the filter store."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8"))


def signature_records(docs: Iterable[tuple[str, str]], config: MinhashConfig, splitter: WordSplitter) -> np.ndarray:
    """Records (see `record_dtype`) for a batch of (id, text) pairs."""
    ids, shingles, exact = [], [], []
    for doc_id, text in docs:
        normalized = normalize_text(text)
        ids.append(id_key(doc_id))
        shingles.append(shingle_hashes(splitter(normalized), config))
        exact.append(text_key(normalized))
    out = np.zeros(len(ids), dtype=record_dtype(config))
    out["id"] = ids
    out["keys"][:, : config.bands] = band_keys(minhash_signatures(shingles, config), config)
    if config.exact:
        out["keys"][:, config.bands] = exact
    return out
