"""Stage 1 helpers: is a payload HTML, and which charset turns its bytes into text? Pure functions.

Charset order (WHATWG "encoding sniffing", https://html.spec.whatwg.org/#determining-the-character-encoding,
adapted to crawled pages whose declarations are often wrong):
1. a byte-order mark (UTF-8, UTF-16 LE/BE), or UTF-16 recognised by its NUL bytes;
2. the HTTP `Content-Type` charset, 3. a `<meta charset>` / `http-equiv` in the first 4 KB: each accepted
   only if the bytes decode with (almost) no errors under it, else the next source is tried;
4. UTF-8 (≤ 3 bad bytes or 0.1 %, and more good multi-byte characters than bad ones);
5. windows-1252 when the bytes ≥ 0x80 stand alone or in pairs (accents in Western text: cchardet is often
   sure of IBM852 or ISO-8859-10 for "naïve café" in an English page);
6. faust-cchardet when it is sure (≥ 0.9), else `guess_single_byte_or_cjk` (cchardet misses short CJK or
   Cyrillic phrases in English pages; it ranks the decodings by script and plausibility), else cchardet's
   guess (≥ 0.5); 7. windows-1252, which never fails.
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
# An RSS/Atom/RDF feed, whatever the server called it: trafilatura would turn an Atom feed into one run-on text.
_FEED = re.compile(rb"\s*(?:<\?xml[^>]{0,200}\?>\s*)?(?:<!--.{0,500}?-->\s*)*<(?:rss|feed|rdf:RDF)[\s>]", re.DOTALL)
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
    if _FEED.match(head) or head.lstrip()[:1] in (b"{", b"[") and _is_json(payload):
        return "skipped_non_html", "skipped_non_html_text_format"
    return None


def _is_json(payload: bytes) -> bool:
    import json

    try:
        json.loads(payload)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False
    return True


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

    if _western(payload):
        # isolated bytes ≥ 0x80 in a page: accents in Western text, windows-1252 as in browsers of Western
        # locales. cchardet is often "sure" of another single-byte charset for a few accents in English
        # (naïve café → IBM852, señor → ISO-8859-10).
        return payload.decode("cp1252", errors="replace"), "cp1252"
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
_JAPANESE, _HAN = re.compile(f"[\u3040-\u30ff{_CJK}]"), re.compile(f"[{_CJK}]")
_CYRILLIC = re.compile(f"[\u0400-\u04ff\u2116{_PUNCT}]")
_SCRIPTS = {  # codec → the characters its real text is made of (beyond ASCII); order breaks ties
    "cp932": _JAPANESE,
    "gb18030": _HAN,
    "cp1251": _CYRILLIC,
    "koi8_r": _CYRILLIC,
    "euc_jp": _JAPANESE,
    "big5hkscs": _HAN,
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


def _western(payload: bytes) -> bool:
    runs = _NON_ASCII_RUN.findall(payload)
    return not runs or sum(map(len, runs)) / len(runs) < MIN_MEAN_RUN


# Where a charset keeps its everyday characters, for telling apart decodings that are all in-script: GB2312
# level-1 hanzi (lead bytes 0xB0-0xD7), Big5 frequent characters (0xA4-0xC6), JIS level-1 kanji (Shift_JIS
# 0x88-0x98, EUC-JP 0xB0-0xCF); each with its rows of symbols, kana and punctuation.
_COMMON_LEADS = {
    "gb18030": ("gb2312", (range(0xA1, 0xAA), range(0xB0, 0xD8))),
    "big5hkscs": ("big5", (range(0xA1, 0xC7),)),
    "cp932": ("cp932", (range(0x81, 0x85), range(0x88, 0x99))),
    "euc_jp": ("euc_jp", (range(0xA1, 0xA6), range(0xB0, 0xD0))),
}
_ALPHABETIC = ("cp1251", "koi8_r", "cp1253", "cp1255", "cp1256")  # words separated by spaces, no Latin inside
_GLUED = re.compile(r"[A-Za-z][^\x00-\x7f]|[^\x00-\x7f][A-Za-z]")  # "Dvoшбk": a non-Latin letter in a Latin word
_WORD = re.compile(r"[^\W\d_]+")
MIN_PLAUSIBILITY = 0.5


def _common_cjk(chars: str, codec: str) -> float:
    base, leads = _COMMON_LEADS[codec]

    def common(c: str) -> bool:
        try:
            lead = c.encode(base)[0]
        except UnicodeEncodeError:
            return False
        return any(lead in r for r in leads)

    return sum(map(common, chars)) / len(chars)


def _plausibility(text: str, runs: list[str], codec: str) -> float:
    """How much a decoding looks like real text of its script, 0..1: everyday CJK characters (random byte pairs
    read as GBK give rare ones); for alphabets, words that do not mix in Latin letters ("Dvořák" in
    windows-1250 read as windows-1251 gives "Dvoшбk") and are lower case or capitalised (KOI8-R read as
    windows-1251, or the reverse, comes out with its case inverted). `runs`: the non-ASCII runs of `text`."""
    chars = "".join(runs)
    if not chars:
        return 0.0
    if codec in _COMMON_LEADS:
        return _common_cjk(chars, codec)
    if codec not in _ALPHABETIC:
        return 1.0
    glued = len(_GLUED.findall(text)) / len(runs)
    words = [w for w in _WORD.findall(text) if not w.isascii()]
    cased = sum(_case_score(w) for w in words) / max(1, len(words))
    return max(0.0, cased - glued)


def _case_score(word: str) -> float:
    """1 for "москва" or "Москва" (and caseless scripts), 0.5 for "МВД", 0 for "мОСКВА" (case inverted)."""
    if word.islower() or not word.isupper() and word[0].isupper() and word[1:].islower():
        return 1.0
    if word.isupper():
        return 0.5
    return 0.0 if any(c.isupper() or c.islower() for c in word) else 1.0


def guess_single_byte_or_cjk(payload: bytes) -> str | None:
    """A charset for bytes that are not UTF-8, from how they decode; None for Western text (use windows-1252).

    Western text has isolated bytes ≥ 0x80 (one accented letter); CJK and Cyrillic text has runs of them. For
    runs, the codecs whose strict decoding gives ≥ 90 % characters of their own script are candidates, and the
    one whose characters are the most everyday ones (`_plausibility`) wins: "Москва" in windows-1251 is also
    three valid GBK characters, but rare ones.
    """
    if _western(payload):
        return None
    best, best_score = None, (0.0, 0.0)
    for codec, script in _SCRIPTS.items():
        try:  # the whole payload: CJK trail bytes can be ASCII (Shift_JIS 0x40-0x7e), runs may split a char
            text = payload.decode(codec)
        except UnicodeDecodeError:
            continue
        non_ascii = _NON_ASCII_TEXT.findall(text)
        chars = "".join(non_ascii)
        if codec in ("cp932", "euc_jp") and not _KANA.search(chars):
            continue
        in_script = len(script.findall(chars)) / max(1, len(chars))
        if in_script < MIN_SCRIPT_FRACTION:
            continue
        score = (_plausibility(text, non_ascii, codec), in_script)
        # strictly greater: on a tie the earlier (more common) codec stays
        if score[0] >= MIN_PLAUSIBILITY and score > best_score:
            best, best_score = codec, score
    return best
