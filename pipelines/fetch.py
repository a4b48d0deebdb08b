"""Download WARC files ahead of a run, for compute nodes without internet: validated, resumable, polite.

    python -m pipelines.fetch --crawl CC-MAIN-2024-10 --limit 20 --out /shared/warcs      # on a node with internet
    python -m pipelines.fineweb --paths-file /shared/warcs/paths.txt --dump CC-MAIN-2024-10 ...   # anywhere

Each file goes through the same CachingOpener as `--fetch cache` (corpus/fetch_cache.py): downloaded to a
`.part` name (a rerun resumes it with a Range request), validated member by member, then renamed, so a file
under --out is always a complete WARC; every accepted file gets a ledger line (URL, bytes, sha256, requests).
`paths.txt` (local paths, in listing order) is written, atomically, only once every file is complete: a run
with failures names them and exits 1, and the same command again fetches only what is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from corpus import atomic


@dataclass(frozen=True)
class FetchConfig:
    urls: tuple[str, ...]
    out: str
    parallel: int = 2
    requests_per_s: float = 1.0
    max_connections: int = 16
    budget_dir: str | None = None


def fetch_all(cfg: FetchConfig) -> tuple[list[str], dict[str, str]]:
    """Download every URL; return the local paths in input order and {url: why} for the files that failed."""
    from corpus.fetch_cc import FetchFailure, make_opener

    opener = make_opener("cache", cache_dir=cfg.out, requests_per_s=cfg.requests_per_s,
                         max_connections=cfg.max_connections, budget_dir=cfg.budget_dir)

    def one(url: str) -> str | FetchFailure:
        try:
            return str(opener.fetch(url))
        except FetchFailure as e:  # this file failed within the policy; the others go on
            return e

    with ThreadPoolExecutor(max_workers=cfg.parallel) as pool:
        results = list(pool.map(one, cfg.urls))
    failed = {url: str(r) for url, r in zip(cfg.urls, results) if not isinstance(r, str)}
    return [r for r in results if isinstance(r, str)], failed


def write_paths(out: str, paths: list[str]) -> str:
    target = os.path.join(out, "paths.txt")
    atomic.write_text(target, "".join(p + "\n" for p in paths))
    return target


def parse_args(argv=None) -> FetchConfig:
    p = argparse.ArgumentParser(prog="python -m pipelines.fetch", description=__doc__.split("\n\n")[0])
    p.add_argument("--crawl", help="Common Crawl dump, e.g. CC-MAIN-2024-10: reads its warc.paths.gz")
    p.add_argument("--cc-base-url", default="https://data.commoncrawl.org/",
                   help="where --crawl is read from (https://, or s3://commoncrawl/ through fsspec)")
    p.add_argument("--paths-file", help="instead of --crawl: a file with one WARC URL per line")
    p.add_argument("--limit", type=int, help="only the first N WARC files")
    p.add_argument("--out", required=True, help="download folder (files keep their URL path under it)")
    p.add_argument("--parallel", type=int, default=2, help="files downloaded at once (the budget still applies)")
    p.add_argument("--fetch-rps", type=float, default=1.0, help="requests per second, shared by every process "
                   "on this node (Common Crawl asks for no more than one retry per second; docs/scale.md)")
    p.add_argument("--fetch-connections", type=int, default=16, help="concurrent connections on this node")
    p.add_argument("--fetch-budget-dir", help="node-local folder of the shared request budget "
                   "(default /tmp/fineweb-fetch-budget)")
    args = p.parse_args(argv)
    if bool(args.crawl) == bool(args.paths_file):
        raise SystemExit("error: give exactly one of --crawl or --paths-file")
    if args.parallel < 1:
        raise SystemExit("error: --parallel must be at least 1")
    from corpus.fetch_cc import FetchFailure, crawl_warc_urls, read_paths_file

    try:
        if args.crawl:
            urls = crawl_warc_urls(args.crawl, args.cc_base_url, cache_dir=args.out)
        else:
            urls = read_paths_file(args.paths_file)
    except (FetchFailure, ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    urls = urls[: args.limit] if args.limit else urls
    if not urls:
        raise SystemExit("error: no WARC URLs to fetch (check --paths-file / --limit)")
    return FetchConfig(urls=tuple(urls), out=args.out, parallel=args.parallel, requests_per_s=args.fetch_rps,
                       max_connections=args.fetch_connections, budget_dir=args.fetch_budget_dir)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    paths, failed = fetch_all(cfg)
    for url, why in failed.items():
        print(f"failed: {url}: {why}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(cfg.urls)} files failed; the {len(paths)} complete ones are kept. Run the "
              "same command again to fetch the rest (paths.txt is written once all are complete).", file=sys.stderr)
        return 1
    target = write_paths(cfg.out, paths)
    print(f"{len(paths)} WARC files, validated: {cfg.out}/ (ledger.jsonl: bytes and sha256 per file)\n"
          f"next: python -m pipelines.fineweb --paths-file {target} --output OUT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
