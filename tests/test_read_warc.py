"""Stage 1 (corpus/read_warc.py, corpus/decode_html.py): WARC response records → HTML Documents.

Checks, on the sample WARCs in tests/data (their expected fates are in expected_fates.json) and on small WARCs
built with warcio in tmp_path: one named skip reason per dropped record (non-HTML by type or by sniffing, feeds
and JSON served as HTML, HTTP status, record type, empty, undecodable); a truncated file keeps every record
before the cut and logs the byte offset, at any cut point; a WARC gzip'd as one stream is read whole; an empty
or missing file is counted and the task goes on; every charset case decodes, also short legacy-charset phrases
without a declaration; the library call, sharding by rank/world_size, and byte-identical regeneration of the
sample WARCs.

    pytest tests/test_read_warc.py -q
"""

from __future__ import annotations

import codecs
import collections
import gzip
import io
import json
from pathlib import Path

import pytest
from loguru import logger
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpus.decode_html import decode_html, guess_single_byte_or_cjk, normalize_charset, sniff_non_html
from corpus.read_warc import WarcReader, iter_warc_documents

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(str(p) for p in DATA.glob("sample-*.warc.gz"))
EXPECTED = json.loads((DATA / "expected_fates.json").read_text(encoding="utf-8"))
PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>Hello, world.</p></body></html>"


# ---------------------------------------------------------------- helpers
def make_warc(path: Path, records: list[dict], warcinfo: str | None = "CC-MAIN-2024-10") -> str:
    """A gzipped WARC, one member per record; dict keys: url body status headers identified type warc."""
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        if warcinfo:
            writer.write_record(
                writer.create_warc_record(
                    "",
                    "warcinfo",
                    payload=io.BytesIO(f"isPartOf: {warcinfo}\r\n".encode()),
                    warc_content_type="application/warc-fields",
                )
            )
        for i, r in enumerate(records):
            url = r.get("url", f"https://example.org/{i}")
            warc_headers = {
                "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>",
                "WARC-Date": "2024-02-21T00:00:00Z",
                **r.get("warc", {}),
            }
            if r.get("identified"):
                warc_headers["WARC-Identified-Payload-Type"] = r["identified"]
            headers = r.get("headers", [("Content-Type", "text/html; charset=utf-8")])
            http = StatusAndHeaders(r.get("status", "200 OK"), headers, protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(
                    url,
                    r.get("type", "response"),
                    payload=io.BytesIO(r.get("body", PAGE)),
                    http_headers=http,
                    warc_headers_dict=warc_headers,
                )
            )
    return str(path)


def read(source, **kw) -> tuple[list, collections.Counter]:
    counts: collections.Counter = collections.Counter()
    docs = list(iter_warc_documents(source, on_skip=lambda *labels, **_: counts.update(labels), **kw))
    return docs, counts


@pytest.fixture
def errors():
    """Messages logged at ERROR level during the test."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="ERROR")
    yield messages
    logger.remove(sink)


# ---------------------------------------------------------------- the sample WARCs
def test_sample_warcs_keep_exactly_the_expected_records():
    kept = {d.id for path in SAMPLES for d in read(path)[0]}
    stage1_drops = {"non_html", "status", "record_type", "truncated_file"}
    assert kept == {rid for rid, e in EXPECTED.items() if e["fate"] not in stage1_drops}


def test_sample_warcs_count_every_skip():
    counts: collections.Counter = collections.Counter()
    for path in SAMPLES:
        counts += read(path)[1]
    fates = collections.Counter(e["fate"] for e in EXPECTED.values())
    assert counts["skipped_non_html"] == fates["non_html"]
    assert (
        counts["skipped_status"]
        == fates["status"]
        == counts["skipped_status_404"] + counts["skipped_status_500"]
    )
    assert counts["skipped_record_type"] == fates["record_type"]
    assert counts["file_truncated"] == 1 and counts["file_empty"] == 1


def test_reader_stats_add_up():
    reader = WarcReader(SAMPLES)
    docs = list(reader.run())
    stats = {k: v.total for k, v in reader.stats.stats.items()}
    assert stats["forwarded"] == len(docs) == stats["documents"]
    assert stats["total"] == stats["forwarded"] + sum(stats.get(p, 0) for p in PARENTS)
    assert stats["total"] == len(EXPECTED) - 1  # all records but the one cut in half
    assert stats["files"] == 4


def test_document_fields_and_dump_from_warcinfo():
    doc = read(SAMPLES[0])[0][0]
    entry = EXPECTED[doc.id]
    assert doc.id.startswith("<urn:uuid:") and doc.metadata["url"] == entry["url"]
    assert doc.metadata["dump"] == "CC-MAIN-2024-10" and doc.metadata["file_path"] == SAMPLES[0]
    assert doc.metadata["date"].startswith("2024-02-") and doc.text.lstrip().startswith("<!DOCTYPE html>")
    assert read(SAMPLES[0], dump="CC-MAIN-2099-01")[0][0].metadata["dump"] == "CC-MAIN-2099-01"


def test_sample_charset_pages_decode():
    docs = {d.id: d for path in SAMPLES for d in read(path)[0]}
    checked = 0
    for rid, entry in EXPECTED.items():
        if "must_contain" in entry and rid in docs:
            assert entry["must_contain"] in docs[rid].text, entry["why"]
            checked += 1
    assert checked >= 8  # cp1252 without charset, UTF-8 with bad bytes, fr/de/es, GBK, Shift_JIS, cp1251


# ---------------------------------------------------------------- skip reasons
PARENTS = (
    "skipped_non_html",
    "skipped_status",
    "skipped_record_type",
    "skipped_undecodable",
    "skipped_empty",
)


@pytest.mark.parametrize(
    "record, label",
    [
        (
            dict(
                identified="application/pdf",
                headers=[("Content-Type", "application/pdf")],
                body=b"%PDF-1.4 x",
            ),
            "skipped_non_html_declared",
        ),
        (
            dict(identified="application/pdf", body=b"%PDF-1.4 x"),
            "skipped_non_html_declared",
        ),  # type beats header
        (dict(headers=[("Content-Type", "text/html")], body=b"%PDF-1.4\n1 0 obj"), "skipped_non_html_magic"),
        (dict(identified="text/html", body=b"\x89PNG\r\n\x1a\n" + bytes(200)), "skipped_non_html_magic"),
        (dict(identified="text/html", body=bytes(range(256)) * 40), "skipped_non_html_binary"),
        (dict(headers=[("Content-Type", "application/json")], body=b'{"a": 1}'), "skipped_non_html_declared"),
        (dict(headers=[], body=b"just some plain text, no markup at all"), "skipped_non_html_untyped"),
        # served as HTML, but a feed or JSON (with HTML in its strings): trafilatura would make text of them
        (dict(identified="text/html", body=b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
              b"<entry><content>The council met.</content></entry></feed>"), "skipped_non_html_text_format"),
        (dict(identified="text/html", body=b'<rss version="2.0"><channel><item>x</item></channel></rss>'),
         "skipped_non_html_text_format"),
        (dict(headers=[("Content-Type", "text/html")], body=b' {"body": "<p>The council met.</p>", "n": [1, 2]}'),
         "skipped_non_html_text_format"),
        (
            dict(headers=[("Content-Type", "application/octet-stream")], body=b"plain"),
            "skipped_non_html_untyped",
        ),
        (dict(body=b"  \r\n "), "skipped_empty"),
        (
            dict(headers=[("Content-Type", "text/html"), ("Content-Encoding", "compress")]),
            "skipped_undecodable_content_encoding",
        ),
        (dict(status="404 Not Found"), "skipped_status_404"),
        (dict(status="500 Internal Server Error"), "skipped_status_500"),
        (dict(status="301 Moved Permanently"), "skipped_status_301"),
        (dict(type="request"), "skipped_record_type_request"),
        (dict(type="revisit"), "skipped_record_type_revisit"),
        (dict(type="metadata"), "skipped_record_type_metadata"),
        (dict(type="resource"), "skipped_record_type_resource"),
    ],
)
def test_each_skip_has_its_reason(tmp_path, record, label):
    docs, counts = read(make_warc(tmp_path / "a.warc.gz", [record, {}]))
    assert len(docs) == 1 and counts[label] == 1  # the good record after it is still read
    parent = next(p for p in PARENTS if label.startswith(p))
    # each label also counts under its family (for record types, the warcinfo record is one more)
    assert counts[parent] == 1 + (parent == "skipped_record_type")
    assert counts["skipped_record_type_warcinfo"] == 1


@pytest.mark.parametrize(
    "record",
    [
        dict(identified="application/xhtml+xml", headers=[("Content-Type", "application/xhtml+xml")]),
        dict(headers=[("Content-Type", "text/html")]),  # no identified type: the HTTP header decides
        dict(headers=[]),  # neither: the bytes start like HTML
        dict(headers=[("Content-Type", "application/octet-stream")]),  # says nothing: the same
        dict(
            headers=[("Content-Type", "text/html"), ("X-Crawler-Content-Encoding", "gzip")]
        ),  # CC stores it decoded
    ],
)
def test_html_is_kept(tmp_path, record):
    docs, _ = read(make_warc(tmp_path / "a.warc.gz", [record]))
    assert [d.text for d in docs] == [PAGE.decode()]


def test_content_encoding_gzip_is_decoded(tmp_path):
    record = dict(
        headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")], body=gzip.compress(PAGE)
    )
    assert read(make_warc(tmp_path / "a.warc.gz", [record]))[0][0].text == PAGE.decode()


def test_stray_gzip_payload_is_inflated(tmp_path):
    # CC stores payloads decoded and renames the header X-Crawler-Content-Encoding; a payload still gzipped
    # (double compression, a missing header) is inflated instead of being dropped as binary
    record = dict(
        headers=[("Content-Type", "text/html"), ("X-Crawler-Content-Encoding", "gzip")],
        body=gzip.compress(PAGE),
    )
    assert read(make_warc(tmp_path / "a.warc.gz", [record]))[0][0].text == PAGE.decode()


def test_warc_truncated_payload_is_kept_and_marked(tmp_path):
    docs, _ = read(make_warc(tmp_path / "a.warc.gz", [dict(warc={"WARC-Truncated": "length"}), {}]))
    assert docs[0].metadata["warc_truncated"] == "length" and "warc_truncated" not in docs[1].metadata


# ---------------------------------------------------------------- broken files
def test_truncated_sample_keeps_records_before_the_cut(errors):
    path = str(DATA / "sample-truncated.warc.gz")
    docs, counts = read(path)
    keep = {
        rid for rid, e in EXPECTED.items() if e["file"] == "sample-truncated.warc.gz" and e["fate"] == "keep"
    }
    assert {d.id for d in docs} == keep and counts["file_truncated"] == 1
    assert len(errors) == 1 and path in errors[0] and "byte offset" in errors[0]


def test_any_cut_point_keeps_a_prefix_and_is_counted(tmp_path):
    data = Path(SAMPLES[0]).read_bytes()
    full = [d.id for d in read(io.BytesIO(data))[0]]
    for cut in range(1, len(data), 1499):
        docs, counts = read(io.BytesIO(data[:cut]))
        assert [d.id for d in docs] == full[: len(docs)]
        assert counts["file_truncated"] == 1, f"cut at {cut} not reported"


def test_warc_gzipped_as_one_stream_reads_whole_and_a_cut_keeps_a_prefix(tmp_path):
    """`gzip file.warc` (one stream, not one member per record): warcio stops after the first record; a local
    file is read again decompressed, with the same documents and stats as the per-record original."""
    full_docs, full_counts = read(SAMPLES[0])
    one_stream = gzip.compress(gzip.decompress(Path(SAMPLES[0]).read_bytes()))
    (tmp_path / "one.warc.gz").write_bytes(one_stream)
    docs, counts = read(str(tmp_path / "one.warc.gz"))
    assert [(d.id, d.text) for d in docs] == [(d.id, d.text) for d in full_docs]
    assert counts.pop("file_single_gzip_stream") == 1 and counts == full_counts
    class Unseekable(io.BytesIO):  # a streamed download
        def seekable(self) -> bool:
            return False

    docs, counts = read(Unseekable(one_stream))
    assert docs == [] and counts["file_single_gzip_stream"] == 1  # only the warcinfo record was read
    (tmp_path / "cut.warc.gz").write_bytes(one_stream[: len(one_stream) // 2])
    docs, counts = read(str(tmp_path / "cut.warc.gz"))
    assert 0 < len(docs) < len(full_docs) and [d.id for d in docs] == [d.id for d in full_docs[: len(docs)]]
    assert counts["file_truncated"] == 1


def test_empty_file_gives_nothing_and_is_counted():
    docs, counts = read(str(DATA / "sample-empty.warc.gz"))
    assert docs == [] and counts["file_empty"] == 1


def test_missing_file_is_counted_and_the_task_goes_on(tmp_path, errors):
    good = make_warc(tmp_path / "b.warc.gz", [{}])
    reader = WarcReader([str(tmp_path / "a-missing.warc.gz"), good])
    docs = list(reader.run())
    assert len(docs) == 1 and reader.stats["file_unreadable"].total == 1
    assert "a-missing.warc.gz" in errors[0]


def test_not_a_warc_is_counted(tmp_path):
    path = tmp_path / "x.warc.gz"
    path.write_bytes(gzip.compress(b"hello, I am not a WARC file\n"))
    docs, counts = read(str(path))
    assert docs == [] and sum(counts.values()) >= 1  # counted, never silent


# ---------------------------------------------------------------- charsets
CASES = [  # (text, encoding of the bytes, Content-Type header, meta charset or None)
    ("naïve café “quoted”", "cp1252", "text/html; charset=cp1252", None),
    ("naïve café “quoted”", "cp1252", "text/html; charset=ISO-8859-1", None),  # latin-1 label means cp1252
    ("naïve café “quoted”", "cp1252", "text/html", None),  # undeclared: detected
    ("naïve café “quoted”", "cp1252", "text/html", "utf-8"),  # declared UTF-8, is not
    ("Ærø naïve", "utf-8", "text/html; charset=iso-8859-1", None),  # declared latin-1, is UTF-8
    ("欢迎来到北京", "gbk", "text/html; charset=GBK", None),
    ("欢迎来到北京", "gbk", "text/html", None),  # a short phrase: cchardet alone misses it
    ("東京駅はこちらです", "shift_jis", "text/html", "Shift_JIS"),
    ("東京駅はこちらです", "shift_jis", "text/html", None),
    ("Тише едешь — дальше будешь", "cp1251", "text/html; charset=windows-1251", None),
    ("Тише едешь — дальше будешь", "cp1251", "text/html", "windows-1251"),
    ("Тише едешь — дальше будешь", "cp1251", "text/html", None),
    ("Тише едешь — дальше будешь", "cp1251", "text/html; charset=iso-8859-1", None),  # wrong default label
    ("Ærø naïve 東京", "utf-8-sig", "text/html; charset=iso-8859-1", None),  # BOM beats the header
    ("Ærø naïve 東京", "utf-16", "text/html", None),  # UTF-16 with BOM
    ("Ærø naïve 東京", "utf-16-le", "text/html", None),  # UTF-16 without BOM
]


@pytest.mark.parametrize("snippet, encoding, content_type, meta", CASES)
def test_charset_cases(snippet, encoding, content_type, meta):
    meta_tag = f'<meta charset="{meta}">' if meta else ""
    prose = "The council met on Tuesday to talk about the new bridge and the old harbour. " * 20
    html = (
        f"<html><head>{meta_tag}<title>News</title></head><body><p>{prose}</p><p>{snippet}</p></body></html>"
    )
    text, _ = decode_html(html.encode(encoding), content_type)
    assert snippet in text and prose in text


@pytest.mark.parametrize("snippet, encoding", [
    ("naïve café", "cp1252"), ("señor", "cp1252"),  # cchardet was sure of IBM852 / ISO-8859-10 here
    ("Москва", "cp1251"), ("Привет, мир", "cp1251"),  # also valid GBK / Hebrew bytes
    ("Москва", "koi8-r"), ("Καλημέρα", "cp1253"), ("مرحبا بالعالم", "cp1256"),
    ("欢迎来到北京", "gbk"), ("東京駅はこちらです", "shift_jis")])
@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=iso-8859-1"])
def test_undeclared_charset_of_a_short_phrase_in_an_english_page(snippet, encoding, content_type):
    """Six English paragraphs, one with the phrase, no declaration (or the servers' default latin-1): the bytes
    alone must give the phrase back."""
    prose = ("The council met on Tuesday to discuss the new budget for the coming year. Officials said the plan "
             "would fund schools, roads and the local library. ")
    body = "".join(f"<p>{prose}{' ' + snippet if i == 0 else ''}</p>" for i in range(6))
    text, _ = decode_html(f"<html><head><title>News</title></head><body>{body}</body></html>".encode(encoding),
                          content_type)
    assert snippet in text


def test_utf8_with_a_few_invalid_bytes_stays_utf8():
    payload = "<p>Ærø is an island. Ærøskøbing is its town.</p>".encode() + b"\x80 x \xff y \xe2\x82 z"
    for header in ("text/html; charset=utf-8", "text/html", "text/html; charset=latin-1"):
        text, codec = decode_html(payload, header)
        assert codec == "utf-8" and "Ærøskøbing" in text and text.count("\ufffd") == 3


def test_charset_helpers():
    assert normalize_charset("ISO-8859-1") == normalize_charset("us-ascii") == "cp1252"
    assert normalize_charset("GB2312") == "gb18030" and normalize_charset("Shift_JIS") == "cp932"
    assert normalize_charset("no-such-charset") is None and normalize_charset(None) is None
    assert guess_single_byte_or_cjk("plain café".encode("cp1252")) is None  # Western: windows-1252
    assert sniff_non_html(codecs.BOM_UTF16_LE + "<html>".encode("utf-16-le")) is None
    assert sniff_non_html(b"\x00\x01\x02\x03" * 100) == "binary" and sniff_non_html(PAGE) is None


# ---------------------------------------------------------------- library call, sharding, determinism
def test_library_call_on_an_open_file_object():
    with open(SAMPLES[1], "rb") as f:
        docs = list(iter_warc_documents(f))
    assert docs and all(d.metadata["file_path"] == SAMPLES[1] for d in docs)


def test_sharding_by_rank_is_sorted_disjoint_and_complete(tmp_path):
    paths = [make_warc(tmp_path / f"{name}.warc.gz", [dict(url=f"https://x.org/{name}")]) for name in "dcab"]
    reader = WarcReader(paths)
    shards = [reader.shard(rank, 3) for rank in range(3)]
    assert shards == [sorted(paths)[0::3], sorted(paths)[1::3], sorted(paths)[2::3]]
    urls = [d.metadata["url"] for rank in range(3) for d in WarcReader(paths).run(rank=rank, world_size=3)]
    assert sorted(urls) == [f"https://x.org/{n}" for n in "abcd"]
    assert WarcReader(paths, sort=False).shard(0, 2) == paths[0::2]


def test_reader_limit_and_config_errors(tmp_path):
    path = make_warc(tmp_path / "a.warc.gz", [{}, {}, {}])
    assert len(list(WarcReader([path], limit=2).run())) == 2
    with pytest.raises(ValueError, match="no input paths"):
        WarcReader([])
    with pytest.raises(ValueError, match="limit"):
        WarcReader([path], limit=0)


def test_same_input_same_documents():
    first = [(d.id, d.text, d.metadata) for path in SAMPLES for d in read(path)[0]]
    again = [(d.id, d.text, d.metadata) for path in SAMPLES for d in read(path)[0]]
    assert first == again


def test_sample_warcs_regenerate_byte_identical(tmp_path, monkeypatch):
    import make_sample_warcs as make  # tests/ is on sys.path (pytest rootdir-less "prepend" import mode)

    monkeypatch.setattr(make, "DATA", tmp_path)
    make.main()
    for name in (
        "sample-00000.warc.gz",
        "sample-00001.warc.gz",
        "sample-truncated.warc.gz",
        "sample-empty.warc.gz",
        "expected_fates.json",
    ):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), (
            f"{name}: run tests/make_sample_warcs.py"
        )
