"""Stage 1 speed: our WARC reader vs datatrove 0.10.1's WarcReader, on the same files, one process.

Files: `--warc-glob` (default: the labeled bench WARCs in /work/shared/bench, else the sample WARCs).
Both sides read every file `--repeat` times, warmed up once; datatrove's reader stops at the first corrupt
member with an exception (it has no recovery), so such files are read by both sides up to the error.
Prints records/s and MB/s (compressed) for each side, the ratio, and how many documents each kept.

    python -m benchmarks.bench_read_warc [--warc-glob 'path/*.warc.gz'] [--repeat 5]
"""

from __future__ import annotations

import argparse
import glob
import os
import time

from loguru import logger

from corpus.read_warc import iter_warc_documents

BENCH_GLOB = "/work/shared/bench/warc/*.warc.gz"
SAMPLE_GLOB = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "sample-*.warc.gz")


def read_ours(paths: list[str]) -> int:
    return sum(1 for path in paths for _ in iter_warc_documents(path))


def read_datatrove(paths: list[str]) -> int:
    from datatrove.pipeline.readers.warc import process_record
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    for path in paths:
        with open(path, "rb") as f:
            try:
                for record in ArchiveIterator(f):
                    n += process_record(record) is not None
            except Exception:  # noqa: BLE001 - the truncated bench file; datatrove's task would fail here
                pass
    return n


def timed(fn, paths: list[str], repeat: int) -> tuple[float, int]:
    fn(paths)  # warm-up: imports, page cache
    start = time.perf_counter()
    for _ in range(repeat):
        n = fn(paths)
    return (time.perf_counter() - start) / repeat, n


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warc-glob", help="WARC files to read (default: bench WARCs, else the sample WARCs)")
    p.add_argument("--repeat", type=int, default=5, help="timed passes over all files per side")
    args = p.parse_args(argv)
    paths = sorted(glob.glob(args.warc_glob or BENCH_GLOB)) or sorted(glob.glob(SAMPLE_GLOB))
    if not paths:
        raise SystemExit("no WARC files found: pass --warc-glob 'dir/*.warc.gz'")
    logger.remove()  # the truncated file logs an error on every pass
    size_mb = sum(os.path.getsize(p) for p in paths) / 1e6
    t_dt, n_dt = timed(read_datatrove, paths, args.repeat)
    t_us, n_us = timed(read_ours, paths, args.repeat)
    print(f"{len(paths)} files, {size_mb:.1f} MB compressed, {args.repeat} passes each")
    print(f"datatrove WarcReader : {t_dt:6.3f} s/pass  {size_mb / t_dt:6.1f} MB/s  {n_dt} docs")
    print(f"ours (read_warc)     : {t_us:6.3f} s/pass  {size_mb / t_us:6.1f} MB/s  {n_us} docs")
    print(f"speed ratio ours/datatrove: {t_dt / t_us:.2f}x")


if __name__ == "__main__":
    main()
