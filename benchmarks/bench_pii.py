"""Stage 7 (PII): ours against datatrove's `PIIFormatter` (FineWeb) and plain presidio, on the same texts.

    python -m benchmarks.bench_pii [--warcs FILE ...] [--truth truth.jsonl] [--repeat 3] [--presidio-docs N]

Texts: the HTML responses of the WARC files (default: the labeled benchmark ../shared/bench, else tests/data
samples), extracted with trafilatura as stage 3 does (favor_precision, no comments); only English records
when the truth file says which are English. Speed: CPU seconds of this one process (MB/s per core), best of
--repeat passes after a warm-up pass. Plain presidio is AnalyzerEngine on a blank spaCy pipeline with the
same six recognizers, no score threshold, overlapping results resolved longest-first and typed placeholders;
it is timed the same way, on all texts or on the first --presidio-docs. With a truth file, the PII records
are also scored the way score.py scores them: leak rate per type (digits with any separators for numbers)
and look-alike survival.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "..", "shared", "bench")
SAMPLE_WARCS = os.path.join(ROOT, "tests", "data", "sample-*.warc.gz")


def extract_texts(warcs: list[str], truth: dict) -> list[tuple[str, str]]:
    """(WARC-Record-ID, trafilatura text) of the HTML responses; only English ones when truth knows."""
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    texts = []
    for path in warcs:
        if not os.path.getsize(path):
            continue
        with open(path, "rb") as f:
            try:
                for rec in ArchiveIterator(f):
                    rid = rec.rec_headers.get_header("WARC-Record-ID")
                    t = truth.get(rid, {})
                    if rec.rec_type != "response" or t.get("category") == "robust" or \
                            t.get("expected_language", "en") != "en":
                        continue
                    html = rec.content_stream().read().decode("utf-8", errors="replace")
                    text = trafilatura.extract(html, favor_precision=True, include_comments=False,
                                               deduplicate=False)
                    if text:
                        texts.append((rid, text))
            except Exception as e:  # noqa: BLE001 - a truncated file ends the file, not the benchmark
                print(f"  ({os.path.basename(path)}: stopped at {type(e).__name__})")
    return texts


def plain_presidio():
    """presidio as documented: AnalyzerEngine.analyze on the whole text, then replace every result."""
    from corpus import pii_presidio

    pii_presidio.import_presidio()
    from presidio_analyzer.predefined_recognizers import IpRecognizer, PhoneRecognizer

    recs = pii_presidio.pattern_recognizers()  # e-mail with the offline suffix list, as ours
    recs = [recs[k] for k in ("email", "credit_card", "iban", "ssn")] + [IpRecognizer(), PhoneRecognizer()]
    engine = pii_presidio.analyzer_engine(pii_presidio.blank_nlp_engine(), recs)
    entities = sorted({r.supported_entities[0] for r in recs})

    def scrub(text: str) -> str:
        results = engine.analyze(text, entities=entities, language="en")
        results.sort(key=lambda r: r.start - r.end)  # longest first
        kept = []
        for r in results:
            if all(r.end <= k.start or r.start >= k.end for k in kept):
                kept.append(r)
        for r in sorted(kept, key=lambda r: -r.start):
            text = text[:r.start] + f"<{r.entity_type}>" + text[r.end:]
        return text
    return scrub


def cpu_seconds(scrub, texts: list[str], repeat: int) -> float:
    for t in texts:  # warm-up: regex compilation, tldextract's suffix list, lazy imports
        scrub(t)
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for t in texts:
            scrub(t)
        best = min(best, time.process_time() - start)
    return best


def leaked(value: str, kind: str, text: str) -> bool:
    """score.py's value_regex: numbers match with any separators, e-mails case-insensitively."""
    if kind in ("phone", "credit_card", "iban", "ssn"):
        pattern = r"[\s.\-/()]{0,3}".join(re.escape(c) for c in value if c.isalnum())
    else:
        pattern = re.escape(value)
    return re.search(pattern, text, re.IGNORECASE) is not None


def quality(scrub, docs: list[tuple[str, str]], truth: dict) -> dict:
    leak, look = collections.defaultdict(lambda: [0, 0]), [0, 0]
    for rid, text in docs:
        out = scrub(text)
        for item in truth[rid].get("pii", []):
            leak[item["type"]][0] += leaked(item["value"], item["type"], out)
            leak[item["type"]][1] += 1
        for item in truth[rid].get("lookalikes", []):
            look[0] += item["value"] in out
            look[1] += 1
    total = [sum(v[0] for v in leak.values()), sum(v[1] for v in leak.values())]
    leaks = {k: f"{a}/{b}" for k, (a, b) in sorted(leak.items())}
    return {"leaks": leaks, "leak_total": total, "lookalikes": look}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warcs", nargs="+", help="WARC files (default: the labeled bench, else tests/data/)")
    p.add_argument("--truth", default=os.path.join(BENCH, "truth.jsonl"), help="bench truth.jsonl (optional)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes per side; the best is reported")
    p.add_argument("--presidio-docs", type=int, default=None,
                   help="time plain presidio on the first N texts only (default: all; ~3 s per MB per core)")
    args = p.parse_args(argv)
    warcs = args.warcs or sorted(glob.glob(os.path.join(BENCH, "warc", "*.warc.gz")))
    warcs = warcs or sorted(glob.glob(SAMPLE_WARCS))
    truth = {}
    if os.path.exists(args.truth):
        with open(args.truth, encoding="utf-8") as f:
            truth = {t["id"]: t for t in map(json.loads, f)}
    docs = extract_texts(warcs, truth)
    texts = [t for _, t in docs]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"stage 7 on {len(texts)} extracted texts ({mb:.2f} MB) from {len(warcs)} WARC files")

    from datatrove.pipeline.formatters import PIIFormatter

    from corpus.scrub_pii import PiiScrubber

    ours, fineweb, presidio = PiiScrubber(), PIIFormatter(), plain_presidio()
    sides = {"ours": lambda t: ours.scrub(t)[0], "datatrove": fineweb.format, "presidio": presidio}
    speed = {}
    for name, scrub in sides.items():
        sample = texts[:args.presidio_docs] if name == "presidio" else texts
        sample_mb = sum(len(t.encode()) for t in sample) / 1e6
        sec = cpu_seconds(scrub, sample, args.repeat)
        speed[name] = sample_mb / sec
        print(f"{name:>10}: {speed[name]:8.3f} MB/s per core  ({sec * 1e3 / sample_mb:9.1f} ms per MB, "
              f"{len(sample)} texts, {sample_mb:.3f} MB)")
    print(f"ratio ours/datatrove {speed['ours'] / speed['datatrove']:.2f}x (target >= 0.3x), "
          f"ours/presidio {speed['ours'] / speed['presidio']:.0f}x (target >= 100x)")
    print_quality(sides, [(rid, t) for rid, t in docs if truth.get(rid, {}).get("category") == "pii"], truth)
    return 0


def print_quality(sides: dict, pii_docs: list[tuple[str, str]], truth: dict) -> None:
    for name, scrub in sides.items() if pii_docs else ():
        q = quality(scrub, pii_docs, truth)
        (nl, n), (ns, m) = q["leak_total"], q["lookalikes"]
        by_type = ", ".join(f"{k} {v}" for k, v in q["leaks"].items())
        print(f"{name:>10}: PII leak {nl}/{n} = {nl / n:.1%} ({by_type}); "
              f"look-alikes kept {ns}/{m} = {ns / m:.1%}")


if __name__ == "__main__":
    raise SystemExit(main())
