"""`make bench`: every benchmark, one after another, each printing its figures next to its baseline's.

    python -m benchmarks.run_all [--only pipeline,dedup] [--skip train]

Figures recorded from these runs are in docs/benchmarks.md. Each benchmark is also runnable alone:
`python -m benchmarks.bench_<name> --help`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHMARKS = {
    "headline": "quality: ours vs datatrove's FineWeb recipe on the labeled bench WARCs, scored by score.py",
    "pipeline": "stages 1-5: ours vs datatrove's FineWeb recipe (docs/s per core, CPU per step)",
    "read_warc": "stage 1: WARC reading and decoding vs datatrove's WarcReader",
    "blocklist": "stage 2: URL blocklist load time, memory and speed vs datatrove's URLFilter",
    "quality": "stage 5: quality filters vs datatrove's four filters",
    "dedup": "stage 6: MinHash dedup vs datatrove's four MinHash stages",
    "pii": "stage 7: PII scrubbing vs datatrove's PIIFormatter and plain presidio",
    "tokens": "stage 9: token shards vs llm.c's tokenizer script",
    "train": "stage 10: trainer tokens/s (and MFU on GPUs)",
    "fetch": "Common Crawl fetcher overhead vs reading local files",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    p.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names + [s for s in args.skip.split(",") if s] if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    failed = []
    for name in names:
        if name in args.skip.split(","):
            continue
        print(f"\n===== {name}: {BENCHMARKS[name]}\n", flush=True)
        start = time.perf_counter()
        if subprocess.run([sys.executable, "-m", f"benchmarks.bench_{name}"]).returncode != 0:
            failed.append(name)
        print(f"----- {name}: {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
