"""Download a WARC to a local cache, validate it, then open the local copy.

`<cache_dir>/<host>/<url path>.part` grows across attempts (and across task reruns: a rerun resumes it
with a Range request); once the server says the file is complete, the whole file is validated
(fetch_validate.py). Only a valid file is renamed to its final name, so a file in the cache is always a
complete WARC, and a line goes to the ledger. A rejected download is deleted and fetched again, at most
FetchPolicy.max_corrupt times. A per-file flock stops two tasks from downloading the same file at once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import urllib.parse
from pathlib import Path

from corpus.fetch_budget import RateBudget
from corpus.fetch_http import FetchError, FetchPolicy
from corpus.fetch_stream import ResumableStream, is_remote, open_plain
from corpus.fetch_validate import CorruptDownload, Ledger, validate_warc_gz_file


class CachingOpener:
    """opener(url) -> the validated local copy of url, opened for reading.

    keep=False unlinks the local copy as soon as it is opened (Linux keeps the open file readable), for
    runs whose disk cannot hold the whole crawl; a failed task then downloads its file again.
    """

    def __init__(self, cache_dir: str, policy: FetchPolicy | None = None, budget: RateBudget | None = None,
                 ledger_path: str | None = None, keep: bool = True):
        self.cache_dir = str(cache_dir)
        self.policy, self.budget = policy or FetchPolicy(), budget or RateBudget()
        self.ledger_path = ledger_path or os.path.join(self.cache_dir, "ledger.jsonl")
        self.keep = keep

    def local_path(self, url: str) -> Path:
        u = urllib.parse.urlsplit(url)
        return Path(self.cache_dir, u.hostname or u.scheme, u.path.lstrip("/"))

    def __call__(self, url: str):
        if not is_remote(url):
            return open_plain(url)
        path = self.fetch(url)
        f = open(path, "rb")  # noqa: SIM115 (returned to the reader, which closes it)
        if not self.keep:
            path.unlink()
        return f

    def fetch(self, url: str) -> Path:
        """Return the path of a validated local copy of `url`, downloading it if needed."""
        final = self.local_path(url)
        if final.exists():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(f"{final}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not final.exists():  # another task may have finished it while we waited
                self._download(url, final)
            return final
        finally:
            os.close(lock)

    def _download(self, url: str, final: Path) -> None:
        part, t0, requests = final.with_name(final.name + ".part"), time.time(), 0
        if url.startswith("s3://"):  # fsspec/botocore retries; no Range resume, no budget
            with open_plain(url) as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        for rejected in range(self.policy.max_corrupt + 1):
            if not url.startswith("s3://"):
                start = part.stat().st_size if part.exists() else 0
                stream = ResumableStream(url, self.policy, self.budget, start=start, validate=False)
                with stream, open(part, "ab") as out:
                    shutil.copyfileobj(stream, out, 1 << 20)
                requests += stream.attempts.requests
            try:
                nbytes, sha = validate_warc_gz_file(part)
            except CorruptDownload as e:
                part.unlink()
                if url.startswith("s3://") or rejected == self.policy.max_corrupt:
                    raise FetchError(f"{url}: download rejected {rejected + 1} times ({e}); the file on the "
                                     "server may be damaged: report it, or drop it from the paths file") from e
                continue
            os.replace(part, final)
            Ledger(self.ledger_path).append(url=url, bytes=nbytes, sha256=sha, attempts=requests,
                                            mode="cache", seconds=round(time.time() - t0, 3))
            return
