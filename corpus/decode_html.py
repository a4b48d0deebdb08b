"""Stage 1 helpers: is a payload HTML, and which charset turns its bytes into text? Pure functions.

Charset order (WHATWG "encoding sniffing", https://html.spec.whatwg.org/#determining-the-character-encoding,
adapted to crawled pages whose declarations are often wrong):
1. a byte-order mark (UTF-8, UTF-16 LE/BE);
2. the HTTP `Content-Type` charset, 3. a `<meta charset>` / `http-equiv` in the first 4 KB — each accepted only
   if the bytes decode with (almost) no errors under it, else the next source is tried;
4. strict UTF-8; 5. faust-cchardet detection; 6. lenient UTF-8 or windows-1252 with U+FFFD replacements.
Labels are mapped as browsers map them (WHATWG encoding table): latin-1/ascii → windows-1252, GBK/GB2312 →
GB18030, Shift_JIS → cp932. A windows-1252-family declaration on bytes that are valid non-ASCII UTF-8 is wrong
(servers send `iso-8859-1` by default): UTF-8 wins, as in Chromium's and Firefox's detectors.
"""

from __future__ import annotations

import codecs
import re

# WHATWG label → Python codec, for the labels whose Python meaning differs from the browser's.
_LABEL_MAP = {
    **dict.fromkeys(
        ["iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "us-ascii", "ascii", "ansi_x3.4-1968", "cp819",
         "ibm819", "iso-ir-100", "windows-1252", "cp1252", "x-cp1252"], "cp1252"),
    **dict.fromkeys(["iso-8859-9", "iso8859-9", "latin5", "l5"], "cp1254"),
    **dict.fromkeys(["iso-8859-11", "tis-620", "windows-874"], "cp874"),
    **dict.fromkeys(["gbk", "gb2312", "gb_2312", "gb_2312-80", "x-gbk", "cp936", "chinese", "gb18030"], "gb18030"),
    **dict.fromkeys(["shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "windows-31j", "cp932"], "cp932"),
    **dict.fromkeys(["euc-kr", "ks_c_5601-1987", "korean", "windows-949", "cp949"], "cp949"),
    **dict.fromkeys(["big5", "big5-hkscs", "cn-big5", "x-x-big5"], "big5hkscs"),
    **dict.fromkeys(["utf8", "utf-8", "unicode-1-1-utf-8", "x-unicode20utf8"], "utf-8"),
}
_WEAK = {"cp1252"}  # declarations that servers send by default; valid UTF-8 overrides them
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]{0,400}?charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.I)
META_SCAN_BYTES = 4096  # WHATWG prescan looks at the first 1024 bytes; real pages put <meta> later
MAX_BAD_FRACTION = 0.001  # a declared charset is kept despite ≤ 0.1 % undecodable chars (a few bad bytes)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# File signatures (https://en.wikipedia.org/wiki/List_of_file_signatures) of payloads that are never HTML.
_MAGIC = (b"%PDF-", b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"PK\x03\x04", b"\x1f\x8b", b"RIFF",
          b"OggS", b"ID3", b"fLaC", b"wOFF", b"wOF2", b"7z\xbc\xaf", b"Rar!", b"\xd0\xcf\x11\xe0", b"%!PS",
          b"\x7fELF", b"BZh", b"\x28\xb5\x2f\xfd", b"\x00\x00\x01\x00", b"II*\x00", b"MM\x00*")
# C0 controls that text never contains (TAB LF FF CR ESC are allowed): random bytes hold ~10 % of them.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
MAX_CONTROL_FRACTION = 0.05
_HTML_HINT = re.compile(rb"<(!doctype\s+html|html|head|body|meta|title|div|p[\s>]|script|link|table)", re.I)


def media_type(content_type: str | None) -> str | None:
    """`'text/HTML; charset=x'` → `'text/html'`; None or empty → None."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def normalize_charset(label: str | None) -> str | None:
    """A charset label as a Python codec name, browser-style; None when unknown or absent."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    name = _LABEL_MAP.get(label, label)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def sniff_non_html(head: bytes) -> str | None:
    """Why the first bytes cannot be an HTML page (`'pdf'`-like magic or `'binary'`), else None."""
    stripped = head.lstrip()
    if stripped.startswith(_MAGIC) or head[4:8] == b"ftyp":  # ftyp: MP4/MOV/HEIC
        return "magic"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None  # UTF-16 text is full of NUL bytes
    sample = head[:4096]
    if sample and sum(sample.count(c) for c in _CONTROL) > MAX_CONTROL_FRACTION * len(sample):
        return "binary"
    return None


def looks_like_html(head: bytes) -> bool:
    """True when an untyped payload starts like an HTML document (a tag among the first 1 KB)."""
    return _HTML_HINT.search(head[:1024]) is not None


def _try(payload: bytes, codec: str | None, strict_only: bool = False) -> str | None:
    """Decode with `codec` if it yields at most MAX_BAD_FRACTION replacement characters."""
    if codec is None:
        return None
    try:
        return payload.decode(codec)
    except UnicodeDecodeError:
        if strict_only:
            return None
    except LookupError:
        return None
    text = payload.decode(codec, errors="replace")
    bad = text.count("\ufffd")
    if bad > max(3, MAX_BAD_FRACTION * len(text)):
        return None
    if codec == "utf-8":  # a few bad bytes among real UTF-8, not a 1-byte charset with a few accents
        good = len(text) - len(text.encode("ascii", "ignore")) - bad
        if good < bad:
            return None
    return text


def _declared(payload: bytes, codec: str | None) -> tuple[str, str] | None:
    if codec in _WEAK and not payload.isascii():
        text = _try(payload, "utf-8", strict_only=True)
        if text is not None:
            return text, "utf-8"
    if codec and codec.startswith("utf-16") and codec != "utf-16":
        codec = "utf-16"
    text = _try(payload, codec)
    return (text, codec) if text is not None else None


def decode_html(payload: bytes, content_type_header: str | None = None) -> tuple[str, str]:
    """Bytes of an HTML page → (text, codec used). Never raises on bad bytes: the last resort replaces them."""
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return payload[len(bom):].decode(codec, errors="replace"), codec
    header = _HEADER_CHARSET.search(content_type_header or "")
    found = _declared(payload, normalize_charset(header.group(1))) if header else None
    if found:
        return found
    meta = _META_CHARSET.search(payload, 0, META_SCAN_BYTES)
    meta_codec = normalize_charset(meta.group(1).decode("ascii", "replace")) if meta else None
    if meta_codec and meta_codec.startswith("utf-16"):
        meta_codec = "utf-8"  # a meta we could read in ASCII is not UTF-16 (WHATWG prescan rule)
    found = _declared(payload, meta_codec) if meta_codec else None
    if found:
        return found
    text = _try(payload, "utf-8", strict_only=True)
    if text is not None:
        return text, "utf-8"
    return _detect(payload)


def _detect(payload: bytes) -> tuple[str, str]:
    import cchardet  # faust-cchardet: ~100× faster than chardet

    guess = normalize_charset(cchardet.detect(payload).get("encoding"))
    for codec in (guess, "utf-8"):
        text = _try(payload, codec)
        if text is not None:
            return text, codec
    return payload.decode("cp1252", errors="replace"), "cp1252"
