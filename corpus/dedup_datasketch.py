"""Stage 6 with datasketch: this stage's MinHash signatures as datasketch objects, for code built on datasketch.

    from corpus.dedup_datasketch import datasketch_lsh, lean_minhashes, text_signatures
    lsh, minhashes = datasketch_lsh([(doc_id, text), ...])   # MinHashLSH(params=(14, 8)) + {id: LeanMinHash}
    lsh.query(minhashes["a"])                                 # ids sharing a band with "a" (itself included)
    minhashes["a"].jaccard(minhashes["b"])                    # estimated 5-gram Jaccard

The signatures are the pipeline's (corpus/dedup_signatures.py: FineWeb's normalization, words, 5-gram sha1
shingles and datatrove's permutations), so datasketch's MinHashLSH, MinHashLSHForest and their Redis or Cassandra
storage index exactly what the pipeline compares. datasketch puts two documents in one bucket when one band of
`rows` values is equal; the pipeline's band keys are equal under the same condition (apart from a 2^-64 key
collision), so the candidates are the same pairs (tests/test_dedup_minhash.py). What datasketch does not have:
the pipeline's extra exact-text band, its survivor rule and its out-of-core pairing (dedup_cluster.py).

The LeanMinHash objects are labelled with datasketch's scheme "affine64", the one whose storage holds 64-bit
values (its "legacy" scheme stores 32 bits); their values are the pipeline's, mod 2^61 - 1. A MinHash made by
datasketch's own `MinHash.update` (its own shingle hashing and permutations) is not comparable with them, though
datasketch cannot tell: index signatures from this module only.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from corpus.dedup_signatures import MinhashConfig, WordSplitter, minhash_signatures, normalize_text, shingle_hashes

NO_SHINGLES = np.iinfo(np.uint64).max  # every value of a document shorter than n words


def text_signatures(texts: Iterable[str], config: MinhashConfig | None = None) -> np.ndarray:
    """(docs, bands·rows) uint64 signatures of `texts`, as the pipeline computes them."""
    config = config or MinhashConfig()
    split = WordSplitter(config.word_splitter)
    return minhash_signatures([shingle_hashes(split(normalize_text(t)), config) for t in texts], config)


def lean_minhashes(signatures: np.ndarray, config: MinhashConfig | None = None) -> list:
    """One datasketch `LeanMinHash` per row of `signatures` (its `seed` records the pipeline's seed)."""
    from datasketch import LeanMinHash

    config = config or MinhashConfig()
    return [LeanMinHash(seed=config.seed, hashvalues=row, scheme="affine64") for row in signatures]


def datasketch_lsh(docs: Iterable[tuple[str, str]], config: MinhashConfig | None = None):
    """A datasketch `MinHashLSH` with the pipeline's bands × rows over (id, text) pairs, and {id: LeanMinHash}.

    Documents shorter than n words have no shingles, so no signature: they are left out of the index (the
    pipeline gives them no band key either), and every one of them would otherwise share every bucket.
    """
    from datasketch import MinHashLSH

    config = config or MinhashConfig()
    docs = list(docs)
    sigs = text_signatures((text for _, text in docs), config)
    lsh = MinHashLSH(num_perm=config.num_hashes, params=(config.bands, config.rows))
    minhashes = {}
    for (doc_id, _), minhash, row in zip(docs, lean_minhashes(sigs, config), sigs):
        if (row != NO_SHINGLES).any():
            lsh.insert(doc_id, minhash)
            minhashes[doc_id] = minhash
    return lsh, minhashes
