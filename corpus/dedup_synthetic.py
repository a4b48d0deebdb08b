"""Synthetic corpora with planted duplicates, for stage 6's tests and benchmark (deterministic from a seed).

Words are drawn from a Zipf-like pseudo-vocabulary, so texts look like prose to the normalizer and the word
splitter (punctuation, capitals, digits). Planted structure:
  - near-duplicate clusters: copies of one article with `edit_rate` of the words replaced and a different
    boilerplate line (5-gram Jaccard to the original ≈ 0.85-0.9: far above the 0.72 threshold);
  - exact duplicates: the same article with other capitals, spacing and punctuation (same normalized text);
  - distinct pairs: two different articles under the same long site template (Jaccard ≈ 0.2): both must stay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticDoc:
    id: str
    text: str
    cluster: str | None = None  # planted cluster: exactly one member should survive
    pair: str | None = None  # planted distinct pair: both should survive


def _vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    syllables = ["ka", "to", "re", "mi", "lo", "an", "es", "ur", "bi", "no", "ta", "el", "os", "va", "pe", "di"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(size * 2)}
    return sorted(words)[:size]


class _Writer:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.vocab = _vocabulary(self.rng)
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.vocab))]

    def words(self, n: int) -> list[str]:
        return self.rng.choices(self.vocab, weights=self.weights, k=n)

    def prose(self, words: list[str]) -> str:
        out, sentence = [], []
        for w in words:
            sentence.append(w)
            if len(sentence) >= self.rng.randint(8, 20):
                out.append(" ".join(sentence).capitalize() + self.rng.choice([".", ".", "!", "?"]))
                sentence = []
        if sentence:
            out.append(" ".join(sentence).capitalize() + ".")
        return " ".join(out)

    def edit(self, words: list[str], rate: float) -> list[str]:
        words = list(words)
        for i in self.rng.sample(range(len(words)), max(1, int(len(words) * rate))):
            words[i] = self.rng.choice(self.vocab)
        return words


def synthetic_corpus(n_singletons: int = 200, n_clusters: int = 20, n_pairs: int = 10, cluster_size=(2, 5),
                     words=(150, 400), edit_rate: float = 0.01, seed: int = 0) -> list[SyntheticDoc]:
    """A shuffled corpus; ids look like WARC-Record-IDs. ~`n_singletons + n_clusters·3.5 + 2·n_pairs` docs."""
    w = _Writer(seed)
    docs: list[SyntheticDoc] = []
    uid = iter(f"<urn:uuid:{seed:04x}{i:08x}-0000-4000-8000-{i:012x}>" for i in range(10**9))
    for _ in range(n_singletons):
        docs.append(SyntheticDoc(next(uid), w.prose(w.words(w.rng.randint(*words)))))
    for c in range(n_clusters):
        base = w.words(w.rng.randint(*words))
        for k in range(w.rng.randint(*cluster_size)):
            if k == 0:
                text = w.prose(base)
            elif k % 3 == 2:  # an exact copy in other clothes: same normalized text as the original
                text = w.prose(base).upper().replace(".", " ;  ")
            else:
                text = w.prose(w.edit(base, edit_rate)) + "\n" + w.prose(w.words(6))
            docs.append(SyntheticDoc(next(uid), text, cluster=f"c{c}"))
    for p in range(n_pairs):
        header, footer = w.words(60), w.words(40)
        for _ in range(2):
            body = w.words(w.rng.randint(*words))
            docs.append(SyntheticDoc(next(uid), w.prose(header + body + footer), pair=f"p{p}"))
    w.rng.shuffle(docs)
    return docs
