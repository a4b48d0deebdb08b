"""Accept a download only if it is a complete WARC: gzip members decode to the end, the first record's
WARC header parses; and the ledger that records every accepted file.

Why: a 503/SlowDown or proxy error page served with status 200 and saved as `*.warc.gz` later fails deep
inside the WARC parser with a confusing header error (stanford-cs336/lectures#13), and a truncated gzip
silently drops the tail of a file. Checks, in order of cost:
- the first two bytes are the gzip magic `\\x1f\\x8b` (an XML/HTML error body starts with `<`);
- the first member decompresses to `WARC/1.0` or `WARC/1.1` followed by `Name: value` header lines that
  include `WARC-Type` and `Content-Length`;
- every gzip member decodes to its end (CRC32 and length checked by zlib) and the last one is complete.
Common Crawl writes one record per gzip member; a single-member WARC passes the same checks.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
_WARC_VERSION = re.compile(rb"^WARC/1\.[01]\r?\n")
_SLICE = 16 * 1024  # CC members average ~25 KB compressed, so most slices hold at most one member end
_HEAD_LIMIT = 64 * 1024  # a WARC record header is a few hundred bytes; 64 KiB without a blank line is not one


class FetchFailure(Exception):
    """Base of the fetcher's errors: the input could not be obtained intact. Readers should let it propagate
    (fail the task, so that a rerun fetches the file again) rather than count the file as bad data."""


class CorruptDownload(FetchFailure):
    """The bytes are not a complete gzip-compressed WARC; the fetcher retries or the task fails."""


def check_warc_header(head: bytes) -> None:
    """Raise CorruptDownload unless `head` (decompressed start of a WARC) begins with a parseable header."""
    if not _WARC_VERSION.match(head):
        raise CorruptDownload(f"first record does not start with 'WARC/1.x': {head[:40]!r}")
    end = re.search(rb"\r?\n\r?\n", head)
    if end is None:
        raise CorruptDownload("first WARC header has no blank line within 64 KiB")
    names = set()
    for line in head[: end.start()].splitlines()[1:]:
        name, sep, _ = line.partition(b":")
        if not sep or not name.strip():
            raise CorruptDownload(f"bad WARC header line {line[:60]!r}")
        names.add(name.strip().lower())
    if not {b"warc-type", b"content-length"} <= names:
        raise CorruptDownload("first WARC header lacks WARC-Type or Content-Length")


class WarcGzValidator:
    """Incremental validation: feed every byte with `update`, then call `finish` once at the end."""

    def __init__(self):
        self.nbytes = 0
        self.members = 0
        self.sha256 = hashlib.sha256()
        self._inflate = zlib.decompressobj(wbits=31)  # 31 = gzip wrapper, one member at a time
        self._fed = False  # the current member has received input
        self._head = b""  # decompressed start of the first member, until its header is checked
        self._head_ok = False

    def update(self, chunk: bytes | memoryview) -> None:
        if self.nbytes < 2 and bytes(chunk[: 2 - self.nbytes]) != GZIP_MAGIC[self.nbytes : 2]:
            raise CorruptDownload(f"not gzip: starts with {bytes(chunk[:40])!r} (an error page?)")
        self.sha256.update(chunk)
        self.nbytes += len(chunk)
        view = memoryview(chunk)
        for i in range(0, len(view), _SLICE):  # each member end copies the rest of the input: keep it short
            self._inflate_slice(bytes(view[i : i + _SLICE]))

    def _inflate_slice(self, data: bytes) -> None:
        while data:
            try:
                out = self._inflate.decompress(data)
            except zlib.error as e:
                raise CorruptDownload(f"gzip data corrupt near byte {self.nbytes}: {e}") from e
            self._fed = True
            if not self._head_ok:
                self._check_head(out, member_done=self._inflate.eof)
            if not self._inflate.eof:
                break
            self.members += 1
            data = self._inflate.unused_data
            self._inflate = zlib.decompressobj(wbits=31)
            self._fed = False

    def _check_head(self, out: bytes, member_done: bool) -> None:
        self._head += out[: _HEAD_LIMIT - len(self._head)]
        if b"\n\r\n" in self._head or b"\n\n" in self._head or member_done or len(self._head) >= _HEAD_LIMIT:
            check_warc_header(self._head)
            self._head_ok, self._head = True, b""

    def finish(self) -> str:
        """Raise CorruptDownload if the data ended mid-member or was empty; return the sha256 hex digest."""
        if self.nbytes == 0:
            raise CorruptDownload("empty download")
        if self._fed and not self._inflate.eof:
            raise CorruptDownload(f"truncated gzip: last member incomplete after {self.nbytes} bytes")
        if not self._head_ok:
            raise CorruptDownload("no complete WARC header found")
        return self.sha256.hexdigest()


def validate_warc_gz_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> tuple[int, str]:
    """Validate a local `.warc.gz`; return (bytes, sha256). Raises CorruptDownload."""
    v = WarcGzValidator()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            v.update(chunk)
    return v.nbytes, v.finish()


class Ledger:
    """Append-only JSONL record of accepted files: url, bytes, sha256, attempts, mode, seconds, time.

    Appends take an exclusive flock, so every task of a node (or of a cluster, on a file system whose
    locks work across nodes) can share one file; each line is written with a single write().
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)

    def append(self, **row) -> None:
        row.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        line = (json.dumps(row, sort_keys=True) + "\n").encode()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)

    def rows(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]
