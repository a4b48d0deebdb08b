"""A fault-injecting stand-in for data.commoncrawl.org on 127.0.0.1 (stdlib http.server, threaded).

Serves a directory laid out like Common Crawl (`crawl-data/CC-MAIN-…/warc.paths.gz`, WARC files) with Range
support, and, per path, consumes a list of faults one request at a time:
  "503:S" / "429:S"  status with `Retry-After: S` (omit ":S" for none)   "403"   "500"
  "reset:N"          headers for the full body, N bytes, then a TCP RST
  "xml200"           status 200 with an S3-style XML error body
  "trunc"            the first half of the asked-for bytes, with a Content-Length of that half (a body a
                     proxy cut short: a 200 gives no other sign of it, a 206 keeps its Content-Range)
  "slow:S"           the whole body, spread over about S seconds
  "stall:N:S"        N bytes, then S seconds of silence, then close
  "norange"          ignores the Range header (200 with the whole file)
  "startrunc"        a ranged request gets the first half of what it asked for, framed as a complete 206 whose
                     Content-Range gives no total (`bytes S-E/*`): only asking for what follows shows the rest
Every request is logged at arrival (time, path, Range, fault), and its status as the status line goes out;
`max_active` is the peak number of requests being served at once. The server stops itself after `lifetime_s`
whatever the test does.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

XML_ERROR = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>\n")


def make_warc(n_records: int, seed: int) -> bytes:
    """A small gzip'd WARC (one record per gzip member, like Common Crawl's) of HTML response records."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(seed)
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for i in range(n_records):
        words = " ".join(rng.choice(["data", "crawl", "river", "stone", "light", "paper"]) for _ in range(300))
        noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3000))  # poorly compressible
        html = f"<html><head><title>Page {seed}-{i}</title></head><body><p>{words}</p><p>{noise}</p></body></html>"
        http_headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        rec = writer.create_warc_record(f"http://example{seed}.com/page{i}", "response",
                                        payload=io.BytesIO(html.encode()), http_headers=http_headers)
        writer.write_record(rec)
    return buf.getvalue()


def build_crawl(root: Path, crawl: str, files: dict[str, bytes]) -> list[str]:
    """Write `files` as the crawl's WARCs plus its warc.paths.gz; return the relative paths in order."""
    rels = []
    for name, data in files.items():
        rel = f"crawl-data/{crawl}/segments/1700000000000.00/warc/{name}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        rels.append(rel)
    (root / f"crawl-data/{crawl}/warc.paths.gz").write_bytes(gzip.compress("\n".join(rels).encode() + b"\n"))
    return rels


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def send_response(self, code, message=None) -> None:
        # noted before the body goes out: a client that has read the whole body may look at the log at once
        self._entry["status"] = code
        super().send_response(code, message)

    def do_GET(self) -> None:
        srv, t0 = self.server.owner, time.time()
        rel = self.path.lstrip("/").split("?")[0]
        fault = srv.next_fault(rel)
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        start = int(m.group(1)) if m and fault != "norange" else 0
        entry = {"t": t0, "path": rel, "range": int(m.group(1)) if m else None, "status": None, "fault": fault}
        self._entry = entry
        with srv.lock:
            srv.log.append(entry)  # at arrival; send_response() fills in the status
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        try:
            self._serve(srv.root / rel, start, bool(m) and fault != "norange", fault)
        finally:
            with srv.lock:
                srv.active -= 1

    def _serve(self, path: Path, start: int, ranged: bool, fault: str | None) -> None:
        kind, *args = (fault or "").split(":")
        if kind in ("503", "429", "403", "500"):
            self.send_response(int(kind))
            if args:
                self.send_header("Retry-After", args[0])
            self._body(XML_ERROR, "application/xml")
            return
        if kind == "xml200":
            self.send_response(200)
            self._body(XML_ERROR, "application/xml")
            return
        if not path.is_file():
            self.send_response(404)
            self._body(b"not found", "text/plain")
            return
        data = path.read_bytes()
        if start >= len(data) and ranged:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self._body(b"", "text/plain")
            return
        body = data[start:]
        if kind == "trunc":  # the half of what was asked for, not of the file: a ranged trunc is still data[start:…]
            body = body[: len(body) // 2]
        if kind == "startrunc" and ranged:
            body = body[: len(body) // 2]
        self.send_response(206 if ranged else 200)
        if ranged:
            end, total = (start + len(body), "*") if kind == "startrunc" else (len(data), len(data))
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{total}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._send(body, kind, args)

    def _body(self, body: bytes, ctype: str) -> None:
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send(self, body: bytes, kind: str, args: list[str]) -> None:
        try:
            if kind == "reset":
                self.wfile.write(body[: int(args[0])])
                # SO_LINGER 0: close() sends RST instead of FIN, like a dropped TCP connection
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            elif kind == "stall":
                self.wfile.write(body[: int(args[0])])
                with self.server.owner.lock:  # silence is not a request in flight for the budget check
                    self.server.owner.active -= 1
                time.sleep(float(args[1]))
                with self.server.owner.lock:
                    self.server.owner.active += 1
                self.connection.close()
            elif kind == "slow":
                step = max(1, len(body) // 20)
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    time.sleep(float(args[0]) / 20)
            else:
                self.wfile.write(body)
        except OSError:  # the client hung up (e.g. after its own timeout)
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handlers (all bounded), so the log is final after exit
    owner: CCServer

    def handle_error(self, request, client_address) -> None:  # resets are the point, not errors
        pass


class CCServer:
    """`with CCServer(root, faults) as srv:` serves `root` at `srv.url` (ends with '/')."""

    def __init__(self, root: Path, faults: dict[str, list[str]] | None = None, lifetime_s: float = 120.0):
        self.root = Path(root)
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.lifetime_s = lifetime_s
        self.lock = threading.Lock()
        self.log: list[dict] = []
        self.active = self.max_active = 0
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def next_fault(self, rel: str) -> str | None:
        with self.lock:
            queue = self.faults.get(rel)
            return queue.pop(0) if queue else None

    def __enter__(self) -> CCServer:  # noqa: PYI034
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._timer = threading.Timer(self.lifetime_s, self._httpd.shutdown)  # bounded lifetime
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()

    def requests_for(self, rel: str) -> list[dict]:
        return [r for r in self.log if r["path"] == rel]


if __name__ == "__main__":  # manual use: serve a directory with no faults
    import sys

    with CCServer(Path(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()), lifetime_s=3600) as s:
        print(s.url, flush=True)
        time.sleep(3600)
