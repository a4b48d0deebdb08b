"""Stream a WARC over HTTP(S) while it downloads; reconnect with a Range request after a failure.

The reader sees one continuous byte stream: a reset, a timeout or a body cut short is answered by a new GET
with `Range: bytes=<bytes already consumed>-` (fetch_http.open_at), within FetchPolicy's limits. Every byte
also goes through a WarcGzValidator, so a corrupt or truncated file is detected at the latest at its end.
The end of a file is believed only from a Content-Range total (206, or 416 `bytes */N`): a 200 body that
ends at its own Content-Length is followed by one `Range: bytes=<end>-` request, because a body cut on a
gzip member (record) boundary is a valid WARC and no validation can tell it from the whole file.
"""

from __future__ import annotations

import io
import time
import urllib.parse

from corpus.fetch_budget import RateBudget
from corpus.fetch_http import NETWORK_ERRORS, Attempts, FetchPolicy, Response, open_at
from corpus.fetch_validate import CorruptDownload, Ledger, WarcGzValidator


def is_remote(url: str) -> bool:
    return urllib.parse.urlsplit(url).scheme in ("http", "https", "s3")


def open_plain(url: str):
    """Local paths (and file://) as they are; s3:// through fsspec (botocore does its own retries)."""
    if url.startswith("s3://"):
        import fsspec

        return fsspec.open(url, "rb").open()
    return open(url.removeprefix("file://"), "rb")


class ResumableStream(io.RawIOBase):
    """Read-only stream over an HTTP(S) URL that reconnects with Range from its position after a failure.

    With `validate`, every byte goes through a WarcGzValidator: at EOF a truncated or corrupt file raises
    CorruptDownload (the records already read came from a bad file, so the task must fail and be rerun).
    """

    def __init__(self, url: str, policy: FetchPolicy, budget: RateBudget, start: int = 0,
                 validate: bool = True, check_head: bool = True, on_done=None):
        super().__init__()
        self.url, self.policy, self.budget, self.pos = url, policy, budget, start
        self.attempts = Attempts(url, policy)
        self.validator = WarcGzValidator() if validate and start == 0 else None
        self.check_head = check_head  # reject a non-WARC body (error page) before reading it
        self.total: int | None = None
        self._resp: Response | None = None
        self._probed = False  # asked once for the bytes after a 200 body's end
        self._eof = False
        self._on_done = on_done
        self._t0 = time.time()

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while not self._eof:
            if self._resp is None:
                self._resp = open_at(self.url, self.pos, self.policy, self.budget, self.attempts,
                                     check_warc=self.check_head and self.pos == 0)
                if self._resp is None:  # 416: nothing after pos
                    self.total = self.pos
                    break
                self.total = self._resp.total if self._resp.total is not None else self.total
            try:
                n = self._resp.readinto(buf)
            except NETWORK_ERRORS as e:
                self._drop(f"{type(e).__name__} at byte {self.pos}: {e}")
                continue
            if n:
                if self.validator:
                    self.validator.update(memoryview(buf)[:n])
                self.pos += n
                return n
            if self.total is not None and self.pos < self.total:
                self._drop(f"connection closed at byte {self.pos} of {self.total}")
                continue
            if not self._resp.ranged and not self._probed:  # a 200 says only where its own body ends
                self._probed = True
                self._resp.close()
                self._resp = None  # next turn: 416 at pos confirms the end, a 206 brings the missing tail
                continue
            break
        self._finish()
        return 0

    def _drop(self, why: str) -> None:
        self._resp.close()
        self._resp = None
        self.attempts.backoff(why)

    def _finish(self) -> None:
        if self._eof:
            return
        self._eof = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        if self.validator is not None:
            sha = self.validator.finish()
            if self._on_done:
                self._on_done(url=self.url, bytes=self.pos, sha256=sha, attempts=self.attempts.requests,
                              seconds=round(time.time() - self._t0, 3))

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        super().close()


class ValidatingReader(io.RawIOBase):
    """Any binary stream (an `s3://` file from fsspec, whose botocore does its own retries) with every byte
    through a WarcGzValidator, as ResumableStream does for http(s): at EOF a truncated or corrupt file raises
    CorruptDownload, and so does a byte count other than the file's `size` where the stream knows it (a cut on a
    gzip member boundary is otherwise a valid WARC); a whole file gets its ledger line."""

    def __init__(self, fh, url: str, on_done=None):
        super().__init__()
        self.fh, self.url, self.on_done = fh, url, on_done
        self.validator, self.pos, self._done, self._t0 = WarcGzValidator(), 0, False, time.time()

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self.fh.read(len(buf))
        if data:
            buf[: len(data)] = data
            self.validator.update(data)
            self.pos += len(data)
            return len(data)
        if not self._done:
            self._done = True
            sha = self.validator.finish()
            size = getattr(self.fh, "size", None)
            if isinstance(size, int) and size != self.pos:
                raise CorruptDownload(f"{self.url}: read {self.pos} bytes of {size}")
            if self.on_done:
                self.on_done(url=self.url, bytes=self.pos, sha256=sha, attempts=1,
                             seconds=round(time.time() - self._t0, 3))
        return 0

    def close(self) -> None:
        self.fh.close()
        super().close()


class StreamingOpener:
    """opener(url) -> file object that streams the WARC while it downloads (no local copy)."""

    def __init__(self, policy: FetchPolicy | None = None, budget: RateBudget | None = None,
                 ledger_path: str | None = None, buffer_size: int = 1 << 20):
        self.policy, self.budget = policy or FetchPolicy(), budget or RateBudget()
        self.ledger_path, self.buffer_size = ledger_path, buffer_size

    def _record(self, **row) -> None:
        if self.ledger_path:
            Ledger(self.ledger_path).append(mode="stream", **row)

    def __call__(self, url: str):
        if not is_remote(url):
            return open_plain(url)
        if url.startswith("s3://"):  # botocore retries; validated and ledgered here, like http(s)
            raw = ValidatingReader(open_plain(url), url, on_done=self._record)
        else:
            raw = ResumableStream(url, self.policy, self.budget, on_done=self._record)
        return io.BufferedReader(raw, buffer_size=self.buffer_size)
