"""Stage 1 helpers: is a payload HTML, and which charset turns its bytes into text? Pure functions.

Charset order (WHATWG "encoding sniffing", https://html.spec.whatwg.org/#determining-the-character-encoding,
adapted to crawled pages whose declarations are often wrong):
1. a byte-order mark (UTF-8, UTF-16 LE/BE), or UTF-16 recognised by its NUL bytes;
2. the HTTP `Content-Type` charset, 3. a `<meta charset>` / `http-equiv` in the first 4 KB: each accepted
   only if the bytes decode with (almost) no errors under it, else the next source is tried;
4. UTF-8 (≤ 3 bad bytes or 0.1 %, and more good multi-byte characters than bad ones);
5. faust-cchardet when it is sure (≥ 0.9), else `guess_single_byte_or_cjk` (cchardet misses short CJK or
   Cyrillic phrases in English pages), else cchardet's guess (≥ 0.5); 6. windows-1252, which never fails.
Labels are mapped as browsers map them (WHATWG encoding table): latin-1/ascii → windows-1252, GBK/GB2312 →
GB18030, Shift_JIS → cp932. A windows-1252-family declaration is weak (servers send `iso-8859-1` by default):
bytes that are UTF-8, or only make sense as CJK/Cyrillic, override it (as Chromium and Firefox do).
"""

from __future__ import annotations

import codecs
import re
import zlib

# WHATWG label → Python codec, for the labels whose Python meaning differs from the browser's.
_LABELS = (
    ("cp1252", "iso-8859-1 iso8859-1 latin1 latin-1 l1 us-ascii ascii ansi_x3.4-1968 cp819 ibm819 iso-ir-100"
               " windows-1252 cp1252 x-cp1252"),
    ("cp1254", "iso-8859-9 iso8859-9 latin5 l5"),
    ("cp874", "iso-8859-11 tis-620 windows-874"),
    ("gb18030", "gbk gb2312 gb_2312 gb_2312-80 x-gbk cp936 chinese gb18030"),
    ("cp932", "shift_jis shift-jis sjis x-sjis ms_kanji windows-31j cp932"),
    ("cp949", "euc-kr ks_c_5601-1987 korean windows-949 cp949"),
    ("big5hkscs", "big5 big5-hkscs cn-big5 x-x-big5"),
    ("utf-8", "utf8 utf-8 unicode-1-1-utf-8 x-unicode20utf8"),
)  # fmt: skip
_LABEL_MAP = {label: codec for codec, labels in _LABELS for label in labels.split()}
_WEAK = {"cp1252"}  # the declaration servers send by default (iso-8859-1): the bytes may override it
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,400}?charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.IGNORECASE)
META_SCAN_BYTES = 4096  # WHATWG prescan looks at the first 1024 bytes; real pages put <meta> later
MAX_BAD_FRACTION = 0.001  # a declared charset is kept despite ≤ 0.1 % undecodable chars (a few bad bytes)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# types that say nothing: the bytes decide, as for a missing type (WHATWG MIME sniffing treats them alike)
UNKNOWN_TYPES = frozenset(
    "application/octet-stream binary/octet-stream application/unknown unknown/unknown */*"
    " application/x-unknown-content-type".split()
)
# File signatures (https://en.wikipedia.org/wiki/List_of_file_signatures) of payloads that are never HTML.
# fmt: off
_MAGIC = (b"%PDF-", b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"PK\x03\x04", b"\x1f\x8b", b"RIFF",
          b"OggS", b"ID3", b"fLaC", b"wOFF", b"wOF2", b"7z\xbc\xaf", b"Rar!", b"\xd0\xcf\x11\xe0", b"%!PS",
          b"\x7fELF", b"BZh", b"\x28\xb5\x2f\xfd", b"\x00\x00\x01\x00", b"II*\x00", b"MM\x00*")
# fmt: on
# C0 controls that text never contains (TAB LF FF CR ESC are allowed): random bytes hold ~10 % of them.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
MAX_CONTROL_FRACTION = 0.05
MAX_INFLATED_BYTES = 8 << 20  # a stray gzip payload inflating past 8 MiB is not a page (zip-bomb guard)
_HTML_HINT = re.compile(
    rb"<(!doctype\s+html|html|head|body|meta|title|div|p[\s>]|script|link|table)", re.IGNORECASE
)


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
    """Why the first bytes cannot be an HTML page (`'magic'`: a file signature, or `'binary'`), else None."""
    stripped = head.lstrip()
    if stripped.startswith(_MAGIC) or head[4:8] == b"ftyp":  # ftyp: MP4/MOV/HEIC
        return "magic"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or utf16_without_bom(head):
        return None  # UTF-16 text is full of NUL bytes
    sample = head[:4096]
    n_control = len(sample) - len(sample.translate(None, _CONTROL))
    if n_control > MAX_CONTROL_FRACTION * len(sample):
        return "binary"
    return None


def looks_like_html(head: bytes) -> bool:
    """True when an untyped payload starts like an HTML document (a tag among the first 1 KB)."""
    return _HTML_HINT.search(head[:1024]) is not None


def utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when every other byte is NUL (ASCII markup in UTF-16), else None."""
    sample = head[:1024]
    half = len(sample) // 2
    if half < 8:
        return None
    if sample[1::2].count(0) > 0.9 * half and sample[0::2].count(0) < 0.1 * half:
        return "utf-16-le"
    if sample[0::2].count(0) > 0.9 * half and sample[1::2].count(0) < 0.1 * half:
        return "utf-16-be"
    return None


def gunzip_stray(payload: bytes) -> bytes:
    """A payload still gzipped without a Content-Encoding header (or gzipped twice), inflated; else as is."""
    if not payload.startswith(b"\x1f\x8b"):
        return payload
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(payload, MAX_INFLATED_BYTES)
    except zlib.error:
        return payload  # not gzip after all: the sniffer calls it binary
    return data if inflater.eof else payload


def payload_reason(payload: bytes, typed: bool) -> tuple[str, ...] | None:
    """Why a payload is not an HTML page (stat labels), from its bytes; None to go on."""
    if not payload or payload.isspace():  # isspace stops at the first other byte; strip() would copy
        return ("skipped_empty",)
    head = payload[:4096]  # enough for every file signature and a stable control-byte fraction
    sniffed = sniff_non_html(head)
    if sniffed:
        return "skipped_non_html", f"skipped_non_html_{sniffed}"
    if not typed and not looks_like_html(head):
        return "skipped_non_html", "skipped_non_html_untyped"
    return None


def _try(payload: bytes, codec: str | None) -> str | None:
    """Decode with `codec` if it yields few replacement characters (≤ 3 or MAX_BAD_FRACTION), else None."""
    if codec is None:
        return None
    try:
        return payload.decode(codec)
    except UnicodeDecodeError:
        pass
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
        # servers send iso-8859-1 by default: valid UTF-8 (a few bad bytes allowed) or bytes that only make
        # sense in a multi-byte / Cyrillic charset override it
        text = _try(payload, "utf-8")
        if text is not None:
            return text, "utf-8"
        codec = guess_single_byte_or_cjk(payload) or codec
    if codec and codec.startswith("utf-16") and codec != "utf-16":
        codec = "utf-16"
    text = _try(payload, codec)
    return (text, codec) if text is not None else None


def decode_html(payload: bytes, content_type_header: str | None = None) -> tuple[str, str]:
    """Bytes of an HTML page → (text, codec used). Never raises on bad bytes: the last resort replaces them"""
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return payload[len(bom) :].decode(codec, errors="replace"), codec
    utf16 = utf16_without_bom(payload)
    if utf16:
        return payload.decode(utf16, errors="replace"), utf16
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
    text = _try(payload, "utf-8")  # UTF-8 with a few bad bytes
    if text is not None:
        return text, "utf-8"
    return _detect(payload)


def _detect(payload: bytes) -> tuple[str, str]:
    import cchardet  # faust-cchardet: ~100× faster than chardet

    found = cchardet.detect(payload)
    guess, confidence = normalize_charset(found.get("encoding")), found.get("confidence") or 0.0
    if guess == "utf-8" or confidence < SURE_CCHARDET_CONFIDENCE:
        guess = guess_single_byte_or_cjk(payload) or (
            guess if confidence >= MIN_CCHARDET_CONFIDENCE else None
        )
    for codec in (guess, "utf-8"):
        text = _try(payload, codec)
        if text is not None:
            return text, codec
    return payload.decode("cp1252", errors="replace"), "cp1252"


# cchardet needs a few hundred non-ASCII bytes: an English page with one short Chinese phrase gets "UTF-8"
# at 0.25 or "BIG5" at 0.69. Below SURE we first score candidate charsets by the scripts they decode to;
# below MIN a cchardet guess is not used (windows-1252 is the fallback, as in browsers for Western locales).
SURE_CCHARDET_CONFIDENCE = 0.9
MIN_CCHARDET_CONFIDENCE = 0.5
_NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
_NON_ASCII_TEXT = re.compile(r"[^\x00-\x7f]+")
_PUNCT = r"\u00a0\u00ab\u00bb\u2010-\u2027"  # nbsp, «», dashes, ‘’“”, …
_CJK = rf"\u3000-\u303f\u4e00-\u9fff\uff01-\uff60\uffe0-\uffef{_PUNCT}"  # not half-width katakana
_KANA = re.compile("[\u3040-\u30ff]")  # Japanese text always has kana; GBK bytes read as cp932 give none
_SCRIPTS = {  # codec → the characters its real text is made of (beyond ASCII); order breaks ties
    "cp932": re.compile(f"[\u3040-\u30ff{_CJK}]"),
    "gb18030": re.compile(f"[{_CJK}]"),
    "cp1251": re.compile(f"[\u0400-\u04ff\u2116{_PUNCT}]"),
    "cp949": re.compile(f"[\uac00-\ud7af{_CJK}]"),
    "cp1253": re.compile(f"[\u0370-\u03ff{_PUNCT}]"),
    "cp1256": re.compile(f"[\u0600-\u06ff{_PUNCT}]"),
    "cp1255": re.compile(f"[\u0590-\u05ff{_PUNCT}]"),
    "cp874": re.compile(f"[\u0e00-\u0e7f{_PUNCT}]"),
}
MIN_SCRIPT_FRACTION = 0.9
MIN_MEAN_RUN = (
    2.0  # bytes ≥ 0x80 in a row: 1-2 in Western text (naïve, Größe), ≥ 2 per char in CJK, words in Cyrillic
)


def guess_single_byte_or_cjk(payload: bytes) -> str | None:
    """A charset for bytes that are not UTF-8, from how they decode; None for Western text (use windows-1252).

    Western text has isolated bytes ≥ 0x80 (one accented letter); CJK and Cyrillic text has runs of them. For
    runs, the codec whose strict decoding gives the most characters of its own script (≥ 90 %) wins.
    """
    runs = _NON_ASCII_RUN.findall(payload)
    if not runs or sum(map(len, runs)) / len(runs) < MIN_MEAN_RUN:
        return None
    best, best_score = None, 0.0
    for codec, script in _SCRIPTS.items():
        try:  # the whole payload: CJK trail bytes can be ASCII (Shift_JIS 0x40-0x7e), runs may split a char
            text = payload.decode(codec)
        except UnicodeDecodeError:
            continue
        non_ascii = _NON_ASCII_TEXT.findall(text)
        if codec == "cp932" and not _KANA.search("".join(non_ascii)):
            continue
        score = len(script.findall("".join(non_ascii))) / max(1, sum(map(len, non_ascii)))
        if score > best_score:  # strictly: on a tie the earlier (more common) codec stays
            best, best_score = codec, score
    return best if best_score >= MIN_SCRIPT_FRACTION else None
