"""Stage 5 speed: our quality steps vs datatrove 0.10.1's four FineWeb filters, on the same extracted texts.

Texts: the HTML 200 responses (all languages) of the labeled bench WARCs (`--warc-glob`), extracted with
trafilatura as FineWeb does (favor_precision, no comments, no stateful dedup); without WARCs, a synthetic mix
of prose and list pages. Both sides are warmed up (spaCy loaded) before timing; times are process CPU seconds,
best of --repeat. Prints docs/s for each, the speed ratio, and how often the two agree on keep/drop (ours with
`datatrove_configs()`, i.e. parity settings, and with our defaults).
"""

from __future__ import annotations

import argparse
import glob
import random
import time
import zlib

from datatrove.data import Document

from corpus.filter_quality import datatrove_configs, quality_steps


def bench_texts(pattern: str, limit: int) -> list[str]:
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    texts = []
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, "rb") as f:
                for rec in ArchiveIterator(f):
                    if rec.rec_type != "response" or rec.http_headers is None:
                        continue
                    if rec.http_headers.get_statuscode() != "200" or "html" not in (
                        rec.http_headers.get_header("Content-Type") or ""
                    ):
                        continue
                    html = rec.content_stream().read().decode("utf-8", "replace")
                    text = trafilatura.extract(
                        html, favor_precision=True, include_comments=False, deduplicate=False
                    )
                    if text:
                        texts.append(text)
        except (OSError, EOFError, zlib.error, ArchiveLoadFailed) as e:  # a truncated file, on purpose
            print(f"skipped the rest of {path}: {type(e).__name__}")
    return texts[:limit]


def synthetic_texts(n: int) -> list[str]:
    """Seeded pseudo-articles (varied sentences, some navigation lines) and a few list pages."""
    rng = random.Random(0)
    nouns = [
        "council",
        "bridge",
        "river",
        "school",
        "budget",
        "report",
        "market",
        "team",
        "village",
        "museum",
        "court",
        "station",
        "farm",
    ]
    verbs = [
        "approved",
        "delayed",
        "opened",
        "reviewed",
        "funded",
        "closed",
        "praised",
        "questioned",
        "expanded",
        "announced",
    ]
    adjs = ["new", "old", "local", "national", "final", "small", "public", "regional", "annual", "major"]

    def sentence() -> str:
        a, b, c = rng.sample(nouns, 3)
        return (
            f"The {a} {rng.choice(verbs)} the {rng.choice(adjs)} {b} of the {c} on {rng.randint(1, 28)} May."
        )

    def article() -> str:
        paras = [" ".join(sentence() for _ in range(rng.randint(2, 6))) for _ in range(rng.randint(3, 12))]
        return "\n".join(["Home | News | Sport", *paras, "Share this story"])

    lists = ["\n".join(f"{rng.choice(nouns)} {rng.randint(1, 999)}" for _ in range(40)) for _ in range(5)]
    return [lists[i % 5] if i % 10 == 9 else article() for i in range(n)]


def run_datatrove(texts: list[str]) -> list[bool]:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    filters = [
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
    ]
    return [all(f.filter(doc) is True for f in filters) for doc in (Document(text=t, id="") for t in texts)]


def run_ours(texts: list[str], **configs) -> list[bool]:
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    for step in quality_steps(**configs):
        docs = step.run(docs)
    kept = {d.id for d in docs}
    return [str(i) in kept for i in range(len(texts))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--warc-glob", default="../shared/bench/warc/*.warc.gz", help="WARC files to take texts from"
    )
    ap.add_argument("--limit", type=int, default=2000, help="at most this many texts")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the texts (best CPU time is reported)")
    args = ap.parse_args(argv)
    texts = bench_texts(args.warc_glob, args.limit) or synthetic_texts(min(args.limit, 300))
    mb = sum(map(len, texts)) / 1e6
    run_datatrove(texts[:2]), run_ours(texts[:2])  # warm-up: spaCy model load, imports
    timings = {}
    for name, fn in (("datatrove 4 filters", run_datatrove), ("ours (5 steps)", run_ours)):
        best = float("inf")
        for _ in range(args.repeat):
            fresh = [t.encode().decode() for t in texts]  # new str objects: no cache carried between passes
            t0 = time.process_time()  # CPU seconds: fairer than wall time on a shared, busy machine
            decisions = fn(fresh)
            best = min(best, time.process_time() - t0)
        timings[name] = (best, decisions)
    (dt_s, dt_keep), (our_s, our_keep) = timings.values()
    parity = run_ours(texts, **datatrove_configs())
    print(f"{len(texts)} texts, {mb:.2f} MB")
    print(f"datatrove 4 filters: {dt_s:.3f} s  ({len(texts) / dt_s:,.0f} docs/s)")
    print(
        f"ours (5 steps):      {our_s:.3f} s  ({len(texts) / our_s:,.0f} docs/s)"
        f"   speed-up x{dt_s / our_s:.1f}"
    )
    print(
        f"kept: datatrove {sum(dt_keep)}, ours (parity configs) {sum(parity)},"
        f" ours (defaults) {sum(our_keep)}"
    )
    print(
        f"same decision as datatrove: parity configs"
        f" {sum(a == b for a, b in zip(dt_keep, parity))}/{len(texts)},"
        f" defaults {sum(a == b for a, b in zip(dt_keep, our_keep))}/{len(texts)}"
    )


if __name__ == "__main__":
    main()
