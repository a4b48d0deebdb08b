"""A compact, shared, on-disk index of blocked domains and URLs (used by stage 2, `filter_url`).

datatrove's URLFilter keeps UT1's 4.56 M domains in a Python `set` (~800 MB per worker) and re-reads them in
every task. Here each normalized entry becomes a 64-bit xxh64 hash (seed 0, a fixed spec: stable across
machines and Python runs, unlike `hash()`); the sorted hashes are saved once per machine as `.npy` files and
every worker maps them read-only (`np.load(mmap_mode="r")`), so the pages are shared. A lookup is one
`np.searchsorted` over the host, its parent domains and the URL's path prefixes. With ~1 M entries the chance
that an unlisted key collides with a listed one is ~1e6 / 2**64 ≈ 5e-14 per lookup.

Cache layout: `<cache_dir>/<sha256 of the sources + FORMAT, 32 hex>/keys.npy + meta.json`. A build
writes into a temporary folder and renames it into place (atomic), so concurrent builders are safe: the
first rename wins, the others drop their copy. A cache whose files do not match `meta.json` (e.g. truncated)
is rebuilt, never trusted.
"""

from __future__ import annotations

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the atomic rename still keeps the cache whole
    fcntl = None
import hashlib
import ipaddress
import json
import os
import pkgutil
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import xxhash

FORMAT = "blocklist-index-v2"  # bump when the normalization below changes: it re-keys every cache
# One sorted array holds every key, tagged by kind, so a URL costs one searchsorted call (~5 µs of numpy
# overhead a call dominates a lookup): "d <domain>" blocks itself and subdomains, "h <host>" only itself,
# "u <host/path>" a listed URL and the URLs below it.
DOMAIN, HOST, URL = "d ", "h ", "u "
# Blogspot's country domains are aliases of one blog (x.blogspot.de == x.blogspot.com): UT1 lists each blog
# under ~60 of them (3.6 M of its 4.56 M lines). One canonical name shrinks the index 4x and blocks a listed
# blog under every alias.
BLOGSPOT = re.compile(r"\.blogspot\.(?:com?\.)?[a-z]{2,3}$", re.MULTILINE)  # anchored at the end only: fast
HOST_CHARS = re.compile(r"^[a-z0-9_.-]+$")
PLAIN_HOST = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$")
NOT_HOST_CHAR = re.compile(r"[^a-z0-9_.\n-]")
IP_CHARS = re.compile(r"^[0-9a-f.:]+$")  # cheap pre-check: ipaddress raising ValueError costs ~2 µs a name


def key_hash(key: str) -> int:
    return xxhash.xxh64_intdigest(key.encode("utf-8", "surrogatepass"))


def is_ip(host: str) -> bool:
    if not IP_CHARS.match(host) or "." not in host and ":" not in host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def normalize_host(host: str) -> str | None:
    """Lower case, no trailing dot, IDN as punycode, no leading `www.`, one name per blogspot blog.

    Returns None when the host cannot be a DNS name or an IP address."""
    host = host.strip().strip(".").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # IDNA 2003, the codec in the standard library
        except UnicodeError:
            return None
    if host.startswith("www.") and host.count(".") >= 2:
        host = host[4:]
    if not host or not (HOST_CHARS.match(host) or is_ip(host)):  # an IPv6 host has ':'s
        return None
    return BLOGSPOT.sub(".blogspot.com", host)


def normalize_url_entry(line: str) -> str | None:
    """A listed URL (`host/path`, scheme optional) -> `host/path` lower-cased without a trailing slash."""
    line = re.sub(r"^[a-z][a-z0-9+.-]*://", "", line.strip().lower())
    host, _, rest = line.partition("/")
    host = normalize_host(host.rsplit("@", 1)[-1].split(":", 1)[0])
    return None if host is None else f"{host}/{rest}".rstrip("/")


def public_suffixes() -> tuple[set[str], set[str], set[str]]:
    """(suffixes, wildcard parents, exceptions) of the Public Suffix List snapshot that tldextract ships."""
    from tldextract.suffix_list import extract_tlds_from_suffix_list

    text = pkgutil.get_data("tldextract", ".tld_set_snapshot").decode("utf-8")
    public, private = extract_tlds_from_suffix_list(text)
    rules = set(public) | set(private)
    wild = {r[2:] for r in rules if r.startswith("*.")}
    exceptions = {r[1:] for r in rules if r.startswith("!")}
    return rules, wild, exceptions


def ut1_chunks(tar_path: Path, member: str, size: int = 1 << 24) -> Iterator[str]:
    """The text of one member (`domains` or `urls`) of datatrove's url_filterblacklistsv0_3_0.tar.gz, in
    ~16 MB pieces cut at line ends: the 123 MB domain list is never held whole (build peak RSS)."""
    with tarfile.open(tar_path, "r:gz") as tar:
        found = next((m for m in tar if m.isfile() and os.path.basename(m.name) == member), None)
        if found is None:
            raise ValueError(f"{tar_path} has no `{member}` member: is it UT1's blacklists tarball from datatrove?")
        stream, rest = tar.extractfile(found), b""
        for block in iter(lambda: stream.read(size), b""):
            block, _, tail = (rest + block).rpartition(b"\n")
            rest = tail
            yield block.decode("utf-8", "replace")
        yield rest.decode("utf-8", "replace")


def read_ut1(tar_path: Path) -> tuple[list[str], list[str]]:
    """UT1's (domains, urls) as lists of lines (for benchmarks and tests; the index build streams)."""
    return tuple("".join(ut1_chunks(tar_path, m)).splitlines() for m in ("domains", "urls"))


def list_lines(path: Path) -> Iterator[str]:
    """Entries of a list file: one per line, `#` starts a comment line, blank lines ignored."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def is_plain(text: str) -> bool:
    """True if every line of `text` already matches PLAIN_HOST and needs no normalize_host (substring
    tests and one character class: a multi-line regex with anchors is ~10x slower on 123 MB)."""
    bad = ("\nwww.", ".\n", "\n.", "..", "\n\n")
    return not (NOT_HOST_CHAR.search(text) or any(b in text for b in bad) or text[:4] == "www."
                or text[:1] in ("", ".", "\n") or text[-1:] in (".", "\n"))


def normalize_hosts(chunks: Iterable[str]) -> set[str]:
    """normalize_host over text chunks of one name a line: the blogspot rename runs once per chunk, and only
    the names that are not already plain lower-case DNS names go through normalize_host."""
    out = set()
    for text in chunks:
        lines = set(BLOGSPOT.sub(".blogspot.com", text.lower()).split("\n"))
        if is_plain(text):  # UT1's chunks are: skip the per-name checks
            out.update(lines)
            continue
        for host in lines:
            host = host.strip()
            if host.startswith("#"):
                continue
            if host.startswith("www.") or host.endswith(".") or not PLAIN_HOST.match(host):
                host = normalize_host(host)
            if host:
                out.add(host)
    out.discard("")
    return out


def split_domains(chunks: Iterable[str], parent_ok: set[str]) -> tuple[set[str], set[str]]:
    """Normalized domains, split into (blocks subdomains too, blocks the exact host only).

    A listed public suffix (UT1 has `sa.com`, `dynu.net`: registries under which anyone can register a name)
    would block every site under it; such an entry blocks only its own host unless `parent_ok` names it
    (the adult TLDs `.xxx`, `.sex`, ... in blocklists/parent_suffixes.txt)."""
    rules, wild, exceptions = public_suffixes()
    hosts = normalize_hosts(chunks)
    under_wildcard = tuple("." + w for w in wild)  # str.endswith(tuple) runs in C: ~1 M names stay cheap
    exact = (hosts & rules) | {h for h in hosts if h.endswith(under_wildcard)
                               and h.partition(".")[2] in wild and h not in exceptions}
    exact -= parent_ok
    return hosts - exact, exact


def sorted_hashes(keys: Iterable[str]) -> np.ndarray:
    hashes = np.sort(np.fromiter((key_hash(k) for k in keys), dtype=np.uint64))
    return hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))] if len(hashes) else hashes


@dataclass(frozen=True)
class BlocklistIndex:
    """A sorted uint64 array of tagged-key hashes (memory-mapped) with a membership test."""

    keys: np.ndarray

    def first_hit(self, keys: list[str]) -> int:
        """Index of the first of `keys` whose hash is in the index, or -1."""
        if not len(self.keys) or not keys:
            return -1
        hashes = np.fromiter((key_hash(k) for k in keys), dtype=np.uint64, count=len(keys))
        pos = np.minimum(self.keys.searchsorted(hashes), len(self.keys) - 1)
        hits = np.flatnonzero(self.keys[pos] == hashes)
        return int(hits[0]) if len(hits) else -1


def _write_index(folder: Path, keys: np.ndarray) -> None:
    np.save(folder / "keys.npy", keys)
    meta = {"format": FORMAT, "count": len(keys), "bytes": os.path.getsize(folder / "keys.npy")}
    (folder / "meta.json").write_text(json.dumps(meta))


def _open_index(folder: Path) -> BlocklistIndex | None:
    """The cached index, or None if it is missing or does not match its meta.json (truncated, half-written)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        path = folder / "keys.npy"
        if meta.get("format") != FORMAT or os.path.getsize(path) != meta["bytes"]:
            return None
        keys = np.load(path, mmap_mode="r") if meta["count"] else np.load(path)
        if keys.dtype != np.uint64 or keys.shape != (meta["count"],):
            return None
        return BlocklistIndex(keys.view(np.ndarray))  # a plain view: np.memmap's indexing costs ~10 µs a call
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sources_digest(files: list[Path], extra: str = "") -> str:
    """sha256 over FORMAT, the sources' names and bytes: the cache key."""
    h = hashlib.sha256(FORMAT.encode() + extra.encode())
    for path in files:
        h.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def load_or_build(cache_dir: Path, digest: str, build) -> BlocklistIndex:
    """Open `<cache_dir>/<digest>`; if absent or corrupt, `build()` -> sorted hashes, write atomically, open.

    Workers that start together wait on a lock file, so one builds and the others map its result; the
    atomic rename alone keeps the cache whole where locks do not work (some network file systems)."""
    final = cache_dir / digest[:32]
    index = _open_index(final)
    if index is not None:
        return index
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{digest[:32]}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        index = _open_index(final)  # built while we waited
        if index is None:
            _build_into(cache_dir, final, digest, build)
            index = _open_index(final)
    if index is None:
        raise RuntimeError(f"blocklist cache {final} is unreadable right after building it: check free disk "
                           "space and permissions, or point CORPUS_CACHE_DIR at another folder")
    return index


def _build_into(cache_dir: Path, final: Path, digest: str, build) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=cache_dir))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a shared cache must be readable by every worker
    try:
        _write_index(tmp, build())
        if final.exists():  # corrupt: move it aside atomically (another builder may do the same: ignore)
            trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=cache_dir))
            try:
                os.rename(final, trash / "old")
            except OSError:
                pass
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:  # a concurrent builder renamed its copy first: use that one
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class UrlParts:
    host: str  # normalized (see blocklist_index.normalize_host)
    path: str  # lower case, as sent (percent-encoded)
    query: str


def parse_url(url: str | None) -> UrlParts | None:
    """Host, path and query of a URL with or without a scheme; None when it has no usable host."""
    url = (url or "").strip()
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        url = "http://" + url.lstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname  # drops user-info and port, lower-cases, unwraps [IPv6]
    except ValueError:
        return None
    host = normalize_host(host) if host else None
    return None if host is None else UrlParts(host, parts.path.lower(), parts.query.lower())


def host_keys(host: str) -> list[str]:
    """The host, then each parent domain down to the TLD (an IP address has no parents)."""
    if is_ip(host):
        return [host]
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def url_keys(parts: UrlParts) -> list[str]:
    """host/path and its `/`-prefixes (no trailing slash), plus host/path?query when there is a query."""
    segments = [s for s in parts.path.split("/") if s]
    keys = [parts.host + "".join("/" + s for s in segments[:i]) for i in range(len(segments) + 1)]
    return keys + ([f"{keys[-1]}?{parts.query}"] if parts.query else [])
