"""Common Crawl input: resolve a crawl's WARC listing, and open WARCs politely and verifiably.

- `crawl_warc_urls(crawl, base_url, cache_dir)` reads `{base}crawl-data/{crawl}/warc.paths.gz` once, keeps a
  validated local copy (atomic rename) and returns full URLs in listing order.
- Openers are what the WARC reader calls per file (`opener(url) -> binary file object`):
  `StreamingOpener` streams records while downloading and resumes a broken connection with a Range request
  from the byte already consumed; `CachingOpener(cache_dir)` downloads to `<cache>/<url path>.part`
  (resuming), validates, renames, then opens the local file.
Both share a node-wide RateBudget, retry per FetchPolicy (fetch_http.py), validate every byte
(fetch_validate.py) and append accepted files to a JSONL ledger. Local paths are opened as they are;
`s3://` goes through fsspec (botocore retries, no budget).
"""

from __future__ import annotations

import fcntl
import gzip
import os
import re
import time
import urllib.parse
from pathlib import Path

from corpus import atomic
from corpus.fetch_budget import RateBudget
from corpus.fetch_cache import CachingOpener
from corpus.fetch_http import Attempts, FetchError, FetchPolicy, open_at
from corpus.fetch_stream import StreamingOpener, is_remote, open_plain
from corpus.fetch_validate import CorruptDownload, FetchFailure, Ledger

__all__ = ["CC_BASE_URL", "CachingOpener", "CorruptDownload", "FetchError", "FetchFailure", "FetchPolicy", "Ledger",
           "RateBudget", "StreamingOpener", "crawl_warc_urls", "make_opener", "read_paths_file"]

CC_BASE_URL = "https://data.commoncrawl.org/"
_CRAWL = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")  # e.g. CC-MAIN-2024-10 (year, ISO week)


def default_cache_dir() -> str:
    return os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fineweb-corpus")


def crawl_warc_urls(crawl: str, base_url: str = CC_BASE_URL, cache_dir: str | None = None,
                    policy: FetchPolicy | None = None, budget: RateBudget | None = None) -> list[str]:
    """Full WARC URLs of `crawl`, in the order of its warc.paths.gz (cached under cache_dir)."""
    if not _CRAWL.match(crawl):
        raise ValueError(f"--crawl {crawl!r} is not a Common Crawl crawl name like CC-MAIN-2024-10; "
                         "the list is at https://index.commoncrawl.org/collinfo.json")
    base = base_url if base_url.endswith("/") else base_url + "/"
    rel = f"crawl-data/{crawl}/warc.paths.gz"
    local = Path(cache_dir or default_cache_dir()) / "listings" / urllib.parse.quote(base, safe="") / rel
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(f"{local}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:  # a thousand array tasks starting at once make one request, not a thousand
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not local.exists():
                _download_listing(base + rel, crawl, local, policy or FetchPolicy(), budget or RateBudget())
        finally:
            os.close(lock)
    return [base + line for line in _check_listing(local.read_bytes(), crawl, str(local))]


def read_paths_file(path: str) -> list[str]:
    """WARC paths or URLs, one a line, in file order; blank lines and `#` comments skipped."""
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def _download_listing(url: str, crawl: str, local: Path, policy: FetchPolicy, budget: RateBudget) -> None:
    for rejected in range(policy.max_corrupt + 1):  # a 200 error page is retried like a 503
        data = _fetch_small(url, policy, budget)
        try:
            _check_listing(data, crawl, url)
            break
        except CorruptDownload:
            if rejected == policy.max_corrupt:
                raise
            time.sleep(policy.backoff_base_s)
    atomic.write_bytes(local, data)


def _check_listing(data: bytes, crawl: str, where: str) -> list[str]:
    try:
        lines = gzip.decompress(data).decode().split()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise CorruptDownload(f"{where}: not a gzip'd path list ({e}); delete it and retry") from e
    bad = [ln for ln in lines if not ln.startswith(f"crawl-data/{crawl}/")]
    if not lines or bad:
        raise CorruptDownload(f"{where}: {len(bad)} of {len(lines)} lines are not crawl-data/{crawl}/ paths")
    return lines


def _fetch_small(url: str, policy: FetchPolicy, budget: RateBudget) -> bytes:
    if not is_remote(url) or url.startswith("s3://"):
        with open_plain(url) as f:
            return f.read()
    attempts = Attempts(url, policy)
    resp = open_at(url, 0, policy, budget, attempts, check_warc=False)
    try:
        return resp.resp.read()
    finally:
        resp.close()




def make_opener(mode: str, *, cache_dir: str | None = None, policy: FetchPolicy | None = None,
                budget: RateBudget | None = None, ledger: str | None = None, keep: bool = True,
                requests_per_s: float = 1.0, max_connections: int = 16, budget_dir: str | None = None):
    """`stream` -> StreamingOpener, `cache` -> CachingOpener(cache_dir) (fineweb.py's --fetch flag).

    `ledger` is the JSONL ledger path (cache mode default: CACHE_DIR/ledger.jsonl); the node's request
    budget is `budget`, or one built from requests_per_s / max_connections / budget_dir (docs/scale.md §3).
    """
    budget = budget or RateBudget(budget_dir, requests_per_s, max_connections)
    if mode == "stream":
        return StreamingOpener(policy, budget, ledger)
    if mode == "cache":
        return CachingOpener(cache_dir or os.path.join(default_cache_dir(), "warc"), policy, budget, ledger, keep)
    raise ValueError(f"fetch mode {mode!r}: use 'stream' (process while downloading) or 'cache'")
