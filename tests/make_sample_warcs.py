"""Write the project's sample WARCs (tests/data/sample-*.warc.gz) and their expected fates.

Run: `python tests/make_sample_warcs.py` (deterministic: record ids are uuid5 of the URL, dates are fixed,
gzip members carry no timestamp, so regenerating gives identical bytes). Page texts live in tests/data/pages/
(`*.txt`: a title line, a blank line, paragraphs; `*.html`: junk pages written as HTML).

Common Crawl layout: a `warcinfo` record (isPartOf CC-MAIN-2024-10), then `request`, `response`, `metadata`
per capture, one gzip member per record. `expected_fates.json` maps every record id to its fate:
keep | non_html | status | record_type | url | extract | lang | quality | dedup | truncated_file.
"""

from __future__ import annotations

import io
import json
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DATA = Path(__file__).parent / "data"
PAGES = DATA / "pages"
CRAWL = "CC-MAIN-2024-10"
START = datetime(2024, 2, 20, 3, 14, 15, tzinfo=timezone.utc)  # inside the CC-MAIN-2024-10 crawl window


@dataclass
class Capture:
    url: str
    body: bytes
    fate: str
    why: str
    content_type: str | None = "text/html; charset=utf-8"
    identified: str | None = "text/html"
    status: str = "200 OK"
    revisit: bool = False
    extra: dict = field(default_factory=dict)  # more fields for expected_fates.json (dup_cluster, pii, …)


# ---------------------------------------------------------------- pages
def read_article(name: str) -> tuple[str, list[str]]:
    title, _, rest = (PAGES / f"{name}.txt").read_text(encoding="utf-8").partition("\n\n")
    return title.strip(), [p.strip() for p in rest.split("\n\n") if p.strip()]


_NAVS = [
    ("Home", "News", "Sport", "Business", "Weather", "Contact"),
    ("Front page", "Local", "Features", "Opinion", "Archive", "Subscribe"),
    ("Latest", "Community", "What's on", "Photos", "Letters", "About us"),
]


def article_html(
    name: str,
    site: str,
    template: int = 0,
    charset_meta: str | None = "utf-8",
    edits: dict[str, str] | None = None,
) -> str:
    """An article page: nav, title, paragraphs, related links, footer; `template` varies the boilerplate."""
    title, paragraphs = read_article(name)
    for old, new in (edits or {}).items():
        paragraphs = [p.replace(old, new) for p in paragraphs]
    nav = "".join(f'<li><a href="/{w.lower().replace(" ", "-")}">{w}</a></li>' for w in _NAVS[template % 3])
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    related = "".join(
        f'<li><a href="/story/{i}">More from {site}: story {i}</a></li>' for i in range(1, 4 + template)
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head>{meta}<title>{title} | {site}</title>'
        f'<link rel="stylesheet" href="/static/site{template}.css"></head>\n<body>\n'
        f'<header><div class="logo">{site}</div><nav><ul>{nav}</ul></nav></header>\n'
        f'<main><article><h1>{title}</h1>\n<p class="byline">By staff reporter, {site}</p>\n'
        f"{body}\n</article>\n"
        f'<aside class="related"><h2>Related</h2><ul>{related}</ul></aside></main>\n'
        f'<footer><p>Copyright 2024 {site}. All rights reserved.</p><a href="/contact">Contact</a></footer>\n'
        "</body></html>\n"
    )


def raw_page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def tiny_png() -> bytes:
    """A valid 1x1 PNG (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


TINY_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>"
    b"endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def html_bytes(name, site, template=0, encoding="utf-8", charset_meta="utf-8", edits=None) -> bytes:
    return article_html(name, site, template, charset_meta, edits).encode(encoding)


def good(url, name, site, why="clean article, passes every filter", template=0, **extra) -> Capture:
    return Capture(url, html_bytes(name, site, template), "keep", why, extra=extra)


def lang_page(name: str, lang: str, site: str, encoding: str, content_type: str, meta: str | None) -> Capture:
    title, paragraphs = read_article(name)
    meta_tag = f'<meta http-equiv="Content-Type" content="text/html; charset={meta}">' if meta else ""
    html = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head>{meta_tag}<title>{title}</title></head>\n<body>\n'
        f'<nav><a href="/">{site}</a></nav>\n<article><h1>{title}</h1>\n'
        + "\n".join(f"<p>{p}</p>" for p in paragraphs)
        + "\n</article>\n</body></html>\n"
    )
    why = f"{lang} article ({encoding}, charset from {'meta' if meta else 'HTTP header'}): not English"
    return Capture(
        f"https://{site}/{name.replace('_', '-')}",
        html.encode(encoding),
        "lang",
        why,
        content_type=content_type,
        extra={"language": lang, "must_contain": paragraphs[0][:12]},
    )


def with_invalid_utf8(name: str, site: str) -> bytes:
    """UTF-8 page with 3 invalid bytes (a lone continuation byte, a truncated 3-byte sequence, 0xFF)."""
    html = html_bytes(name, site)
    for needle, bad in (
        (b"really begins.", b"\x80"),
        (b"the mainland", b"\xe2\x82"),
        (b"old painting.", b"\xff"),
    ):
        html = html.replace(needle, needle + bad, 1)
    return html


def captures_00000() -> list[Capture]:
    pii = {"pii": ["volunteers@eastbrook-library.org.uk", "(202) 555-0134"]}
    return [
        good(
            "https://www.harbourgazette.co.uk/news/2024/02/council-approves-footbridge-repairs",
            "harbour_bridge",
            "Harbour Gazette",
        ),
        good(
            "https://www.kitchenbench.net/how-to/keep-a-sourdough-starter-alive",
            "sourdough_starter",
            "Kitchen Bench",
            template=1,
        ),
        good(
            "https://millvalleyhistory.org/articles/rise-and-fall-of-the-canal",
            "canal_history",
            "Mill Valley History Society",
            template=2,
            dup_cluster="canal_history",
        ),
        Capture(
            "https://millvalleyhistory.org/articles/rise-and-fall-of-the-canal?utm_source=x",
            html_bytes("canal_history", "Mill Valley History Society", 2),
            "dedup",
            "exact re-capture of the canal article at a tracking-parameter URL: dedup keeps one",
            extra={"dup_cluster": "canal_history"},
        ),
        good(
            "https://www.eastbrooklibraries.org.uk/news/sunday-opening",
            "library_hours",
            "Eastbrook Libraries",
            why="clean article with planted PII (e-mail, 555-01xx phone): kept, PII scrubbed",
            **pii,
        ),
        good(
            "https://www.netsafetyweekly.com/guides/update-your-home-router",
            "router_update",
            "Net Safety Weekly",
            template=1,
            why="clean article with a public IPv4 (scrubbed) and look-alikes (kept)",
            pii=["81.2.69.160"],
            lookalikes=["4.18.0.553", "192.168.1.1"],
        ),
        good(
            "https://www.countywildlife.org.uk/birds/blue-tit-nesting",
            "blue_tit_nesting",
            "County Wildlife Trust",
            why="URL near-miss: 'tit' is a bird here; no list entry matches",
        ),
        good(
            "https://www.scunthorpe-news.co.uk/business/indoor-market-busy-winter",
            "scunthorpe_market",
            "Scunthorpe News",
            template=2,
            why="URL near-miss: a banned substring inside an innocent host name",
        ),
        # a duplicate cluster: one article, three sites, different boilerplate and a couple of edited words
        Capture(
            "https://www.valleyfarmingnews.com/2024/02/farmers-form-cooperative",
            html_bytes("farmers_market_coop", "Valley Farming News", 0),
            "dedup",
            "near-duplicate cluster",
            extra={"dup_cluster": "farmers_market_coop"},
        ),
        Capture(
            "https://ruralweekly.co.uk/local/farm-cooperative-sells-direct",
            html_bytes(
                "farmers_market_coop",
                "Rural Weekly",
                1,
                edits={"twenty two farms": "twenty three farms", "three vans": "four vans"},
            ),
            "dedup",
            "near-duplicate cluster (2 words edited)",
            extra={"dup_cluster": "farmers_market_coop"},
        ),
        Capture(
            "https://www.upperdaletimes.com/news/cooperative-of-farms",
            html_bytes(
                "farmers_market_coop", "Upperdale Times", 2, edits={"quick to sign up": "keen to sign up"}
            ),
            "dedup",
            "near-duplicate cluster (1 word edited)",
            extra={"dup_cluster": "farmers_market_coop"},
        ),
        lang_page("lang_fr", "fr", "www.journal-de-la-ville.fr", "utf-8", "text/html; charset=utf-8", None),
        lang_page("lang_de", "de", "www.stadtanzeiger-nord.de", "utf-8", "text/html; charset=UTF-8", None),
        lang_page("lang_zh", "zh", "news.chengshi-ribao.cn", "gbk", "text/html; charset=GBK", None),
        Capture(
            "http://www.vicehouse.com/blog/spring-garden-tips",
            html_bytes("spring_planting", "Vice House"),
            "url",
            "domain on the UT1 adult list (vicehouse.com)",
        ),
        Capture(
            "https://members.sizzlingstars.com/articles/harbour",
            html_bytes("harbour_bridge", "Stars", 1),
            "url",
            "subdomain of a UT1-listed domain (sizzlingstars.com)",
        ),
        Capture(
            "https://capitalobserver.example.org/files/annual-report-2023.pdf",
            TINY_PDF,
            "non_html",
            "PDF payload",
            content_type="application/pdf",
            identified="application/pdf",
        ),
        Capture(
            "https://capitalobserver.example.org/download?id=545",
            TINY_PDF,
            "non_html",
            "PDF served as text/html (sniffed)",
            content_type="text/html",
            identified=None,
        ),
        Capture(
            "https://capitalobserver.example.org/img/logo.png",
            tiny_png(),
            "non_html",
            "PNG payload",
            content_type="image/png",
            identified="image/png",
        ),
        Capture(
            "https://www.harbourgazette.co.uk/news/old-lighthouse-story",
            html_bytes("lighthouse_keepers", "Harbour Gazette"),
            "status",
            "HTTP 404 page with a full article body",
            status="404 Not Found",
        ),
        Capture(
            "https://www.kitchenbench.net/feed/recipes.html",
            b"",
            "record_type",
            "revisit record (identical payload)",
            revisit=True,
        ),
        Capture(
            "https://www.linkhub-directory.com/useful-links",
            raw_page("junk_link_list.html"),
            "quality",
            "link list: the same 'read more' on every line, no sentences",
        ),
        Capture(
            "https://cheap-deals-now.com/cheap-flights",
            raw_page("junk_keyword_spam.html"),
            "quality",
            "keyword spam: repeated n-grams",
        ),
        Capture(
            "https://www.townnotices.net/notice/42",
            raw_page("junk_repeated_lines.html"),
            "quality",
            "the same line repeated",
        ),
        Capture(
            "https://www.newsitebuilder.com/demo/article",
            raw_page("junk_lorem_ipsum.html"),
            "quality",
            "placeholder lorem ipsum text",
        ),
        Capture(
            "https://www.appnews.io/read/7731",
            raw_page("wall_cookie_js.html"),
            "extract",
            "cookie/JS wall: no main text to extract",
        ),
    ]


def captures_00001() -> list[Capture]:
    return [
        good(
            "https://www.cyclingworkshop.co.uk/guides/clean-and-oil-a-chain", "bike_chain", "Cycling Workshop"
        ),
        good(
            "https://www.gullpointmuseum.org/exhibitions/last-keepers",
            "lighthouse_keepers",
            "Gull Point Museum",
            template=1,
        ),
        good(
            "https://www.classicmotors.co.uk/features/1964-saloon-restoration",
            "classic_motors",
            "Classic Motors",
            template=2,
            why="URL near-miss host (classicmotors); article with planted PII",
            pii=["secretary@valleyclassics.org.uk", "(312) 555-0187"],
        ),
        good(
            "https://www.weatherwatch-uk.co.uk/gardening/after-the-frosts?ref=vicehouse.com",
            "spring_planting",
            "Weatherwatch",
            why="URL near-miss: a listed domain only in the query string",
        ),
        Capture(
            "http://www.schoolnews-online.com/trips/science-museum",
            html_bytes("museum_cafe_cp1252", "School News", 1, encoding="cp1252", charset_meta=None),
            "keep",
            "English article in cp1252 with no declared charset (detected)",
            content_type="text/html",
            extra={"must_contain": "naïve"},
        ),
        Capture(
            "https://www.slowtravelnotes.com/denmark/ferry-to-aero",
            with_invalid_utf8("aero_ferry_utf8", "Slow Travel Notes"),
            "keep",
            "UTF-8 article with 3 invalid bytes (decoded with replacement)",
            extra={"must_contain": "Ærø"},
        ),
        good(
            "https://www.districtherald.co.uk/news/allotment-waiting-lists",
            "allotment_waiting",
            "District Herald",
            template=1,
        ),
        lang_page("lang_es", "es", "www.diario-municipal.es", "utf-8", "text/html; charset=utf-8", None),
        lang_page("lang_ja", "ja", "www.machi-shimbun.jp", "shift_jis", "text/html", "Shift_JIS"),
        lang_page(
            "lang_ru", "ru", "www.gorodskie-novosti.ru", "cp1251", "text/html; charset=windows-1251", None
        ),
        Capture(
            "https://www.nousensemble.com/articles/canal-boats",
            html_bytes("bike_chain", "Nous Ensemble", 2),
            "url",
            "domain on the UT1 adult list (nousensemble.com)",
        ),
        Capture(
            "https://www.ukfootballtalk.co.uk/forum/referee-talks-bollocks-again",
            html_bytes("library_hours", "UK Football Talk", 1),
            "url",
            "banned word in the URL path",
        ),
        Capture(
            "https://api.capitalobserver.example.org/v2/articles/1196",
            json.dumps({"id": 1196, "title": "Budget talks resume", "tags": ["politics"]}).encode(),
            "non_html",
            "JSON API payload",
            content_type="application/json",
            identified="application/json",
        ),
        Capture(
            "https://www.districtherald.co.uk/news/broken-page",
            html_bytes("sourdough_starter", "District Herald"),
            "status",
            "HTTP 500 page with a full article body",
            status="500 Internal Server Error",
        ),
        Capture(
            "https://www.catalogue-shop.com/mens/shirts",
            raw_page("junk_bullet_catalogue.html"),
            "quality",
            "bullet catalogue: short lines without punctuation",
        ),
        Capture(
            "https://www.quickfacts.net/p/19",
            raw_page("junk_too_short.html"),
            "quality",
            "too short (< 50 words)",
        ),
    ]


def captures_truncated() -> list[Capture]:
    return [
        good(
            "https://www.riverwatch.org.uk/news/volunteers-clear-river",
            "river_cleanup",
            "River Watch",
            template=2,
        ),
        Capture(
            "https://capitalobserver.example.org/img/icon.png",
            tiny_png(),
            "non_html",
            "PNG payload",
            content_type="image/png",
            identified="image/png",
        ),
        Capture(
            "https://www.coastwalks.org.uk/news/harbour-bridge",
            html_bytes("harbour_bridge", "Coast Walks", 1),
            "truncated_file",
            "its gzip member is cut in half: the file ends here",
        ),
    ]


# ---------------------------------------------------------------- writing
def record_id(url: str, kind: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{kind} {url}')}>"


def warc_date(i: int) -> str:
    return (START + timedelta(seconds=97 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_response_headers(cap: Capture) -> StatusAndHeaders:
    headers = [("Date", "Tue, 20 Feb 2024 03:14:15 GMT"), ("Server", "nginx")]
    if cap.content_type:
        headers.append(("Content-Type", cap.content_type))
    headers += [("X-Crawler-Content-Length", str(len(cap.body))), ("Content-Length", str(len(cap.body)))]
    return StatusAndHeaders(cap.status, headers, protocol="HTTP/1.1")


def write_capture(writer: WARCWriter, cap: Capture, i: int) -> list[tuple[str, str]]:
    """request + response (or revisit) + metadata; returns (record id, WARC-Type) in file order."""
    date, host = warc_date(i), cap.url.split("/")[2]
    req_id, resp_id, meta_id = (record_id(cap.url, k) for k in ("request", "response", "metadata"))
    path = "/" + cap.url.split("/", 3)[3] if cap.url.count("/") >= 3 else "/"
    request = StatusAndHeaders(
        f"GET {path} HTTP/1.1",
        [("Host", host), ("User-Agent", "CCBot/2.0 (https://commoncrawl.org/faq/)")],
        is_http_request=True,
    )
    writer.write_record(
        writer.create_warc_record(
            cap.url,
            "request",
            payload=io.BytesIO(b""),
            http_headers=request,
            warc_headers_dict={"WARC-Record-ID": req_id, "WARC-Date": date, "WARC-Concurrent-To": resp_id},
        )
    )
    headers = {"WARC-Record-ID": resp_id, "WARC-Date": date, "WARC-IP-Address": "192.0.2.10"}
    if cap.revisit:
        headers.update(
            {
                "WARC-Profile": "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest",
                "WARC-Payload-Digest": "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ",
            }
        )
        resp = writer.create_warc_record(
            cap.url,
            "revisit",
            payload=io.BytesIO(b""),
            warc_headers_dict=headers,
            http_headers=StatusAndHeaders("304 Not Modified", [], protocol="HTTP/1.1"),
        )
    else:
        if cap.identified:
            headers["WARC-Identified-Payload-Type"] = cap.identified
        resp = writer.create_warc_record(
            cap.url,
            "response",
            payload=io.BytesIO(cap.body),
            http_headers=http_response_headers(cap),
            warc_headers_dict=headers,
        )
    writer.write_record(resp)
    meta = f"fetchTimeMs: {100 + i}\r\ncharset-detected: UTF-8\r\n".encode()
    writer.write_record(
        writer.create_warc_record(
            cap.url,
            "metadata",
            payload=io.BytesIO(meta),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Record-ID": meta_id, "WARC-Date": date, "WARC-Concurrent-To": resp_id},
        )
    )
    return [(req_id, "request"), (resp_id, resp.rec_type), (meta_id, "metadata")]


def write_warc(name: str, captures: list[Capture], first: int, cut_last: bool = False) -> dict[str, dict]:
    """Write tests/data/<name>; returns record id → expected-fate entry. `cut_last` halves the last member."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    info_id = record_id(name, "warcinfo")
    info = f"isPartOf: {CRAWL}\r\nsoftware: tests/make_sample_warcs.py\r\nformat: WARC File Format 1.1\r\n"
    writer.write_record(
        writer.create_warc_record(
            name,
            "warcinfo",
            payload=io.BytesIO(info.encode()),
            warc_content_type="application/warc-fields",
            warc_headers_dict={
                "WARC-Record-ID": info_id,
                "WARC-Date": warc_date(first),
                "WARC-Filename": name,
            },
        )
    )
    fates = {
        info_id: {"fate": "record_type", "why": "warcinfo record", "file": name, "record_type": "warcinfo"}
    }
    for i, cap in enumerate(captures):
        before = buf.tell()
        for rid, rtype in write_capture(writer, cap, first + i):
            if rtype in ("response", "revisit"):
                entry = {"fate": cap.fate, "why": cap.why, "url": cap.url, **cap.extra}
            else:
                entry = {"fate": "record_type", "why": f"{rtype} record"}
            fates[rid] = {**entry, "file": name, "record_type": rtype}
    data = buf.getvalue()
    if cut_last:  # cut the last capture's response member in half (its metadata member is dropped too)
        data = data[:before]
        tail = io.BytesIO()
        w = WARCWriter(tail, gzip=True)
        ids = write_capture(w, captures[-1], first + len(captures) - 1)
        members = tail.getvalue()
        req_len = _first_member_length(members)
        data += (
            members[:req_len] + members[req_len : req_len + (_first_member_length(members[req_len:]) // 2)]
        )
        fates.pop(ids[2][0])
    tmp = DATA / f".{name}.tmp"
    tmp.write_bytes(data)
    tmp.rename(DATA / name)
    return fates


def _first_member_length(data: bytes) -> int:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    d.decompress(data)
    return len(data) - len(d.unused_data)


def mark_dedup_keepers(fates: dict[str, dict]) -> None:
    """In each dup_cluster the survivor is the id of smallest xxh64 (stage 6: corpus/dedup_cluster.py)"""
    import xxhash

    clusters: dict[str, list[str]] = {}
    for rid, entry in fates.items():
        if "dup_cluster" in entry:
            clusters.setdefault(entry["dup_cluster"], []).append(rid)
    for members in clusters.values():
        for rid in members:
            keeper = min(members, key=lambda m: xxhash.xxh64_intdigest(m.encode("utf-8")))
            fates[rid]["fate"] = "keep" if rid == keeper else "dedup"
            fates[rid]["why"] += f" (cluster of {len(members)}: the id with the smallest xxh64 is kept)"


def main() -> None:
    fates: dict[str, dict] = {}
    fates |= write_warc("sample-00000.warc.gz", captures_00000(), first=0)
    fates |= write_warc("sample-00001.warc.gz", captures_00001(), first=100)
    fates |= write_warc("sample-truncated.warc.gz", captures_truncated(), first=200, cut_last=True)
    (DATA / "sample-empty.warc.gz").write_bytes(b"")
    mark_dedup_keepers(fates)
    tmp = DATA / ".expected_fates.json.tmp"
    tmp.write_text(json.dumps(fates, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    tmp.rename(DATA / "expected_fates.json")
    counts: dict[str, int] = {}
    for entry in fates.values():
        counts[entry["fate"]] = counts.get(entry["fate"], 0) + 1
    print(f"wrote {len(fates)} records to {DATA}: {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
