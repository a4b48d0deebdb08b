"""Fetch overhead: reading WARCs through the polite fetcher (local HTTP server) vs from local disk, one process.

Files: `--warc-glob` (default: the valid bench WARCs in /work/shared/bench, else tests/data/sample-*.warc.gz),
served by tests/cc_server.py on 127.0.0.1. Sides, each timed over all files (best of `--repeat`):
  baseline    stage-1 reader (corpus.read_warc) on the local files
  stream      the same reader through StreamingOpener (validation on)
  stream+faults  one 503 (Retry-After 0) and one connection reset mid-file per file
  cache       CachingOpener: download, validate, rename, then read the local copy (empty cache each pass)
and the validator alone (gzip members + sha256) vs gzip.open().read() of the same bytes.
Localhost has no bandwidth limit, so this measures CPU overhead only; real downloads are network-bound.

    python -m benchmarks.bench_fetch [--warc-glob 'dir/*.warc.gz'] [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

from corpus.fetch_cc import CachingOpener, FetchPolicy, RateBudget, StreamingOpener
from corpus.fetch_validate import CorruptDownload, validate_warc_gz_file
from corpus.read_warc import iter_warc_documents

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cc_server import CCServer, build_crawl

BENCH_GLOB = "/work/shared/bench/warc/CC-MAIN-*.warc.gz"
SAMPLE_GLOB = str(Path(__file__).resolve().parents[1] / "tests" / "data" / "sample-0*.warc.gz")
POLICY = FetchPolicy(backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5)


def valid_files(pattern: str) -> list[str]:
    out = []
    for p in sorted(glob.glob(pattern)):
        try:
            validate_warc_gz_file(p)
            out.append(p)
        except CorruptDownload:
            pass  # the truncated/empty bench files are for the reader's tests, not for timing
    return out


def best_of(repeat: int, fn) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t)
    return min(times), n


def count_docs(urls: list[str], opener=None) -> int:
    return sum(1 for u in urls for _ in iter_warc_documents(u, opener=opener))


def bare_gunzip(paths: list[str]) -> int:
    n = 0
    for p in paths:
        with gzip.open(p) as f:
            while chunk := f.read(1 << 20):
                n += len(chunk)
    return n


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warc-glob", help="WARC files (default: the valid bench WARCs, else the sample WARCs)")
    p.add_argument("--repeat", type=int, default=3, help="passes per side; the best is reported")
    args = p.parse_args(argv)
    paths = valid_files(args.warc_glob or BENCH_GLOB) or valid_files(SAMPLE_GLOB)
    if not paths:
        raise SystemExit("no valid WARC files found: pass --warc-glob 'dir/*.warc.gz'")
    logger.remove()  # the reader's per-file logs would dominate the output
    mb = sum(os.path.getsize(x) for x in paths) / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="bench_fetch_"))
    try:
        rels = build_crawl(tmp / "cc", "CC-MAIN-2024-10", {Path(x).name: Path(x).read_bytes() for x in paths})
        budget = RateBudget(str(tmp / "budget"), requests_per_s=1000, max_connections=4)
        rows = [("baseline (local files)", *best_of(args.repeat, lambda: count_docs(paths)))]
        with CCServer(tmp / "cc", lifetime_s=600) as srv:
            urls = [srv.url + r for r in rels]
            stream = StreamingOpener(POLICY, budget)
            rows.append(("stream", *best_of(args.repeat, lambda: count_docs(urls, stream))))

            def with_faults():
                srv.faults.update({r: ["503:0", f"reset:{os.path.getsize(x) // 2}"] for r, x in zip(rels, paths)})
                return count_docs(urls, stream)

            rows.append(("stream + 503 + reset per file", *best_of(args.repeat, with_faults)))

            def cached():
                shutil.rmtree(tmp / "cache", ignore_errors=True)
                return count_docs(urls, CachingOpener(str(tmp / "cache"), POLICY, budget))

            rows.append(("cache (download, validate, read)", *best_of(args.repeat, cached)))
        print(f"{len(paths)} files, {mb:.1f} MB compressed, best of {args.repeat}")
        base = rows[0][1]
        for name, secs, n in rows:
            print(f"  {name:34s} {secs:7.3f} s  {mb / secs:7.1f} MB/s  {n:6d} docs  ×{secs / base:5.2f}")
        t_val, _ = best_of(args.repeat, lambda: [validate_warc_gz_file(x) for x in paths])
        t_gz, _ = best_of(args.repeat, lambda: bare_gunzip(paths))
        print(f"  validator alone {mb / t_val:7.1f} MB/s vs gzip.open().read() {mb / t_gz:7.1f} MB/s"
              f"  ×{t_val / t_gz:5.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
