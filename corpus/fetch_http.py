"""HTTP GET with Range resumption, polite retries and a shared request budget (stdlib http.client only).

Retry rules (Common Crawl's status page, https://status.commoncrawl.org: "retrying no more than once per
second is polite enough"; "when you see anything unusual, you should slow down"):
- 503/429 and other 5xx: wait `Retry-After` if given (never less than the base delay), otherwise jittered
  exponential backoff: uniform(base, min(cap, base * 2**n));
- 403 (CloudFront's rate-limit rules answer 4xx): retried at most `max_forbidden` times, then fail;
- 404/410 and other 4xx: fail at once, the URL is wrong;
- connection errors, timeouts and short bodies: reconnect with `Range: bytes=<offset>-`;
- a host that cannot be reached at all (DNS failure, connection refused, no route: typical of a compute node
  without internet) fails after `max_unreachable` tries in a row, with a hint, instead of backing off for hours;
- a 200 whose first bytes are not a gzip'd WARC (an XML/HTML error page) is retried like a 503.
Every request, retries included, waits for a turn in the RateBudget and holds a connection slot.
"""

from __future__ import annotations

import email.utils
import errno
import http.client
import random
import re
import socket
import time
import urllib.parse
import zlib
from dataclasses import dataclass

from loguru import logger

from corpus.fetch_budget import ConnectionSlot, RateBudget
from corpus.fetch_validate import GZIP_MAGIC, CorruptDownload, FetchFailure, check_warc_header

HEAD_BYTES = 8192  # compressed bytes checked before a body is accepted; CC's first member (warcinfo) is ~500
NETWORK_ERRORS = (OSError, http.client.HTTPException)  # resets, timeouts (TimeoutError is an OSError), bad lines
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED}


@dataclass(frozen=True)
class FetchPolicy:
    """Retry and timeout settings for one file."""

    max_attempts: int = 50  # requests per file, all causes; CC's own wget recipe retries forever (-t 0)
    max_forbidden: int = 3  # 403s tolerated per file (rate-limit rules), then the file fails
    max_corrupt: int = 3  # whole downloads rejected by validation, then the file fails (caching mode)
    max_unreachable: int = 5  # host not reachable at all, tries in a row (~30 s of backoff), then the file fails
    backoff_base_s: float = 1.0  # CC: no more than one retry per second
    backoff_max_s: float = 120.0
    timeout_s: float = 60.0  # connect and per-read socket timeout
    user_agent: str = "fineweb-corpus/0.1 (pre-training data pipeline; polite fetcher)"


class FetchError(FetchFailure, RuntimeError):
    """A file could not be fetched within the policy; the message says why and what to try."""


class Attempts:
    """Counts the requests made for one file and decides how long to wait before the next."""

    def __init__(self, url: str, policy: FetchPolicy):
        self.url, self.policy = url, policy
        self.requests = self.forbidden = self.failures = self.unreachable = 0
        self.last_error = ""

    def backoff(self, why: str, retry_after: float | None = None) -> None:
        self.failures += 1
        self.last_error = why
        if self.requests >= self.policy.max_attempts:
            raise FetchError(f"{self.url}: gave up after {self.requests} requests (last: {why}); rerun later "
                             "(finished files are kept) or raise FetchPolicy.max_attempts")
        p = self.policy
        delay = random.uniform(p.backoff_base_s, min(p.backoff_max_s, p.backoff_base_s * 2 ** self.failures))
        if retry_after is not None:
            delay = max(retry_after, p.backoff_base_s)
        logger.warning(f"{self.url}: {why}; request {self.requests + 1} in {delay:.1f} s")
        time.sleep(delay)

    def network_error(self, error: Exception) -> None:
        """Back off after a failed connection or read; give up early on a host that cannot be reached at all."""
        if isinstance(error, socket.gaierror) or getattr(error, "errno", None) in _NO_ROUTE:
            self.unreachable += 1
            if self.unreachable >= self.policy.max_unreachable:
                host = urllib.parse.urlsplit(self.url).hostname
                raise FetchError(
                    f"{self.url}: cannot reach {host} ({error}), {self.unreachable} tries in a row. Is this machine "
                    "offline? Compute nodes often are: download on a node with internet (python -m pipelines.fetch "
                    "--crawl ... --out DIR), then run on DIR/paths.txt with --paths-file")
        else:
            self.unreachable = 0
        self.backoff(f"{type(error).__name__}: {error}")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Response:
    """An open GET response positioned at `offset`; `total` is the full file size when the server says.

    `ranged`: the total comes from a 206's Content-Range (not `/*`), which states the whole file's size apart from
    the body; a 200's Content-Length only frames its own body, which a proxy may have cut short.
    """

    def __init__(self, conn, resp, slot: ConnectionSlot, offset: int, total: int | None, head: bytes = b"",
                 ranged: bool = False):
        self.conn, self.resp, self.slot = conn, resp, slot
        self.offset, self.total, self._head, self.ranged = offset, total, head, ranged

    def readinto(self, buf) -> int:
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self.resp.readinto(buf) if self.resp is not None else 0

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.slot.release()


def _new_connection(url: str, timeout: float):
    u = urllib.parse.urlsplit(url)
    cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    return cls(u.hostname, u.port, timeout=timeout), path


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value or "") or re.match(r"bytes \*/(\d+)", value or "")
    if not m:
        return None, None
    if len(m.groups()) == 1:
        return None, int(m.group(1))
    return int(m.group(1)), (None if m.group(2) == "*" else int(m.group(2)))


def _warc_head_ok(head: bytes) -> str | None:
    """Why the start of a body is not a gzip'd WARC (None if it looks like one)."""
    if not head.startswith(GZIP_MAGIC):
        return f"status 200 but the body is not gzip: {head[:60]!r}"
    try:
        out = zlib.decompressobj(wbits=31).decompress(head)
        if b"\n\r\n" in out or b"\n\n" in out:
            check_warc_header(out)
        elif len(out) >= 7 and not out.startswith(b"WARC/1."):  # a short read: judge the prefix only
            raise CorruptDownload(f"does not start with 'WARC/1.': {out[:40]!r}")
    except (zlib.error, CorruptDownload) as e:
        return f"status 200 but the body is not a WARC: {e}"
    return None


def _skip(resp, n: int) -> int:
    done = 0
    while done < n and (chunk := resp.read(min(n - done, 1 << 20))):
        done += len(chunk)
    return done


def open_at(url: str, offset: int, policy: FetchPolicy, budget: RateBudget, attempts: Attempts,
            check_warc: bool = True) -> Response | None:
    """GET `url` from byte `offset`, retrying per the policy. None means the file already ends at `offset`."""
    while True:
        budget.wait_turn()
        slot = budget.acquire_connection()
        attempts.requests += 1
        conn, path = _new_connection(url, policy.timeout_s)
        headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            result = _accept(url, offset, resp, conn, slot, attempts, check_warc)
        except FetchError:
            conn.close()
            slot.release()
            raise
        except NETWORK_ERRORS as e:
            conn.close()
            slot.release()
            attempts.network_error(e)
            continue
        attempts.unreachable = 0
        if isinstance(result, Response) or result is None:
            return result
        conn.close()
        slot.release()
        attempts.backoff(*result)


def _accept(url, offset, resp, conn, slot, attempts, check_warc):
    """Map one response to a Response, None (already complete), or a (why, retry_after) retry reason."""
    status = resp.status
    if status in (200, 206):
        start, total = _content_range(resp.getheader("Content-Range"))
        if status == 200:
            start, length = 0, resp.getheader("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if start != offset and status == 206:
            return f"206 for byte {start}, asked for {offset}", None
        if status == 200 and offset and _skip(resp, offset) != offset:  # the server ignored Range
            return "short body while skipping to the resume offset", None
        head = b""
        if check_warc and offset == 0:
            head = resp.read(HEAD_BYTES)
            if why := _warc_head_ok(head):
                return why, None
        return Response(conn, resp, slot, offset, total, head, ranged=status == 206 and total is not None)
    resp.read(64 * 1024)  # read (part of) the error body before closing
    if status == 416 and _content_range(resp.getheader("Content-Range"))[1] == offset:
        conn.close()
        slot.release()
        return None
    if status in (429, 503) or status >= 500:
        return f"HTTP {status}", parse_retry_after(resp.getheader("Retry-After"))
    if status == 403:
        attempts.forbidden += 1
        if attempts.forbidden > attempts.policy.max_forbidden:
            raise FetchError(f"{url}: HTTP 403 {attempts.forbidden} times; a rate-limit rule or no access: "
                             "lower --fetch-rps or wait, then rerun")
        return "HTTP 403", None
    raise FetchError(f"{url}: HTTP {status}; check the crawl name and the path (no retry for this status)")
