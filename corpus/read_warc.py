"""Stage 1 · read_warc: WARC `response` records → `Document(html)`, one per HTTP 200 HTML capture.

What is kept: `response` records with HTTP status 200 whose payload is HTML. The type is decided by
`WARC-Identified-Payload-Type` (Common Crawl's own detection) first, then the HTTP `Content-Type`, and the
first bytes are always sniffed, so a PDF or binary garbage labelled `text/html` is dropped too; a payload
with neither type must start like HTML. Charsets: `corpus.decode_html.decode_html` (BOM, header, meta,
detection). `WARC-Truncated` payloads (CC cuts them at 1 MiB) are kept, marked `metadata["warc_truncated"]`.

Every skip is counted, never silent (datatrove's reader returns None without a count):
`skipped_record_type[_<type>]`, `skipped_status[_<code>]`, `skipped_empty`,
`skipped_non_html[_declared|_magic|_binary|_untyped]`, `skipped_undecodable[_content_encoding]`; per file
`file_empty`, `file_unreadable`, `file_no_records`, `file_truncated` (a cut or corrupt gzip member: logged
with file and byte offset, the records before it are kept, the task goes on with its next file).

Library call: `iter_warc_documents(path_or_fileobj)`; pipeline step: `WarcReader(paths)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, BinaryIO

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from corpus.decode_html import (
    HTML_TYPES,
    UNKNOWN_TYPES,
    decode_html,
    gunzip_stray,
    media_type,
    payload_reason,
)
from corpus.fetch_validate import FetchFailure

Opener = Callable[[str], BinaryIO]
OnSkip = Callable[..., None]


def default_opener(path: str) -> BinaryIO:
    """Local paths, http(s):// and s3:// (s3fs) via fsspec; raw bytes (warcio un-gzips member by member)."""
    import fsspec

    return fsspec.open(path, "rb").open()


class _CountingReader:
    """Counts the compressed bytes read, so errors can name an offset and an empty file can be told apart."""

    def __init__(self, fh: IO[bytes]):
        self.fh, self.pos = fh, 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.pos += len(data)
        return data

    def tell(self) -> int:
        return self.pos


def _skip_reason(record) -> tuple[str, ...] | None:
    """Why a record is not an HTML 200 response (stat labels), from its headers alone; None to go on."""
    if record.rec_type != "response":
        return "skipped_record_type", f"skipped_record_type_{record.rec_type}"
    http = record.http_headers
    status = http.get_statuscode() if http is not None else None
    if status != "200":
        return ("skipped_status", f"skipped_status_{status}") if status else ("skipped_status",)
    declared = _declared_type(record)
    if declared is not None and declared not in HTML_TYPES:
        return "skipped_non_html", "skipped_non_html_declared"
    encoding = (http.get_header("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate", "br") or (
        encoding == "br" and "br" not in _supported_decompressors()
    ):
        return "skipped_undecodable", "skipped_undecodable_content_encoding"
    return None


def _declared_type(record) -> str | None:
    """The payload type CC identified, else the server's; None when both are absent or say "unknown"."""
    for value in (
        record.rec_headers.get_header("WARC-Identified-Payload-Type"),
        record.http_headers.get_header("Content-Type"),
    ):
        kind = media_type(value)
        if kind and kind not in UNKNOWN_TYPES:
            return kind
    return None


def _supported_decompressors() -> Iterable[str]:
    from warcio.bufferedreaders import BufferedReader

    return BufferedReader.get_supported_decompressors()


def _to_document(record, payload: bytes, dump: str | None, file_path: str | None) -> Document:
    http, headers = record.http_headers, record.rec_headers
    text, _codec = decode_html(payload, http.get_header("Content-Type"))
    metadata = {
        "url": headers.get_header("WARC-Target-URI"),
        "date": headers.get_header("WARC-Date"),
        "dump": dump,
        "file_path": file_path,
    }
    truncated = headers.get_header("WARC-Truncated")
    if truncated:
        metadata["warc_truncated"] = truncated  # "length", "time", … : the payload is a prefix of the page
    return Document(text=text, id=headers.get_header("WARC-Record-ID"), metadata=metadata)


def _dump_from_warcinfo(record) -> str | None:
    for line in record.content_stream().read().decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "ispartof" and value.strip():
            return value.strip()
    return None


def _no_stats(*labels: str, **_kw) -> None:
    return None


def iter_warc_documents(
    source: str | BinaryIO,
    dump: str | None = None,
    file_path: str | None = None,
    opener: Opener | None = None,
    on_skip: OnSkip | None = None,
) -> Iterator[Document]:
    """Yield one Document per HTML 200 response of one WARC file (path or open binary file object).

    `dump` overrides the warcinfo `isPartOf`; `on_skip(*labels)` receives every skip/file label
    (`PipelineStep.stat_update` fits). Never raises on bad data: a bad file ends with a logged error.
    """
    on_skip = on_skip or _no_stats
    if file_path is None:
        file_path = source if isinstance(source, str) else getattr(source, "name", None)
    if isinstance(source, str):
        try:
            fh = (opener or default_opener)(source)
        except FetchFailure:  # the download gave up or was corrupt: fail the task so a rerun fetches it again
            raise
        except Exception as err:  # missing, no permission, HTTP error after the opener's retries, …
            on_skip("file_unreadable")
            logger.error(f"{file_path}: cannot open ({type(err).__name__}: {err}); skipping this file")
            return
    else:
        fh = source
    try:
        yield from _iter_file(_CountingReader(fh), dump, file_path, on_skip)
    finally:
        if isinstance(source, str):
            fh.close()


def _iter_file(
    fh: _CountingReader, dump: str | None, file_path: str | None, on_skip: OnSkip, skip: int = 0
) -> Iterator[Document]:
    from warcio.archiveiterator import ArchiveIterator

    n_done, member_start, last_member = 0, None, None
    records = ArchiveIterator(fh)
    try:
        for record in records:
            member_start, last_member = records.offset, records.reader.decompressor
            if n_done < skip:  # already read before a rewind (see _rewind_single_gzip)
                n_done += 1
                continue
            doc = _process(record, dump, file_path, on_skip)
            records.read_to_end()  # drain what _process left unread, to see whether the record is whole
            if record.raw_stream.limit > 0:  # the data ended before the record's Content-Length: file cut
                raise EOFError(f"record {record.rec_headers.get_header('WARC-Record-ID')} is cut short")
            if isinstance(doc, str):
                dump = dump or doc  # the warcinfo record names the crawl
            elif doc is not None:
                yield doc
            n_done, member_start = n_done + 1, None
    except FetchFailure:  # a corrupt stream from the fetcher is not bad data: a rerun must fetch the file again
        raise
    except Exception as err:  # zlib.error, EOFError, ArchiveLoadFailed, …
        if _single_gzip_stream(err):
            yield from _rewind_single_gzip(fh, dump, file_path, on_skip, n_done)
            return
        offset = member_start if member_start is not None else records.offset
        _log_truncated(file_path, offset, n_done, err, on_skip)
        return
    if (last_member is not None and not last_member.eof) or fh.tell() > records.offset:
        # bytes after the last whole record that make no record: warcio ends quietly on a cut header
        _log_truncated(
            file_path, records.offset, n_done, EOFError("data after the last whole record"), on_skip
        )
    elif n_done == 0:
        on_skip("file_empty" if fh.tell() == 0 else "file_no_records")
        if fh.tell():
            logger.error(f"{file_path}: {fh.tell()} bytes but no WARC record; is it a WARC file?")


def _single_gzip_stream(err: Exception) -> bool:
    """warcio's refusal of a WARC gzip'd as one stream (`gzip file.warc`) instead of one member per record."""
    return type(err).__name__ == "ArchiveLoadFailed" and "multi-member gzip" in str(err)


def _rewind_single_gzip(fh: _CountingReader, dump, file_path, on_skip: OnSkip, n_done: int) -> Iterator[Document]:
    """Read a one-stream gzip'd WARC again, decompressed as a whole, after the `n_done` records already read.

    warcio reads it no further than its first record: it wants one gzip member per record, so that a reader can
    seek to any record. A whole-file stream is still a valid WARC; only a seekable (local or cached) file can be
    read again from its start, a streamed download ends here with warcio's hint (`warcio recompress`)."""
    import gzip

    on_skip("file_single_gzip_stream")
    if not (hasattr(fh.fh, "seekable") and fh.fh.seekable()):
        logger.error(f"{file_path}: gzip'd as one stream, not one member per record, and streamed: it cannot be "
                     f"read again from its start; {n_done} records were read. Use --fetch cache, or "
                     "`warcio recompress IN OUT`")
        return
    logger.warning(f"{file_path}: gzip'd as one stream, not one member per record; reading it decompressed "
                   "(`warcio recompress IN OUT` makes it seekable)")
    fh.fh.seek(0)
    yield from _iter_file(_CountingReader(gzip.GzipFile(fileobj=fh.fh)), dump, file_path, on_skip, skip=n_done)


def _log_truncated(file_path, offset: int, n_records: int, err: Exception, on_skip: OnSkip) -> None:
    on_skip("file_truncated")
    logger.error(
        f"{file_path}: truncated or corrupt gzip member at byte offset {offset} ({type(err).__name__}: "
        f"{err}); the {n_records} records before it were read; going on with the next file. "
        "Re-download the file to read the rest."
    )


def _process(record, dump: str | None, file_path: str | None, on_skip: OnSkip) -> Document | str | None:
    """A Document, the crawl name (from warcinfo), or None after counting why the record was skipped."""
    if record.rec_type == "warcinfo":
        on_skip("skipped_record_type", "skipped_record_type_warcinfo")
        return None if dump else _dump_from_warcinfo(record)
    reason = _skip_reason(record)
    if reason is None:
        try:
            payload = gunzip_stray(record.content_stream().read())
        except Exception:  # a broken chunked/gzip/brotli Content-Encoding
            payload, reason = b"", ("skipped_undecodable",)
    if reason is None:
        reason = payload_reason(payload, typed=_declared_type(record) is not None)
    if reason is None:
        try:
            return _to_document(record, payload, dump, file_path)
        except Exception:
            reason = ("skipped_undecodable",)
    on_skip(*reason)
    return None


class WarcReader(PipelineStep):
    """Stage 1: read WARC files (local, http(s)://, s3://) into HTML Documents; see the module docstring.

    Task `rank` of `world_size` reads `sorted(paths)[rank::world_size]` (the given order with `sort=False`);
    `opener(path) -> binary file` replaces fsspec (e.g. a retrying, resuming HTTP opener); `limit` caps the
    documents per task (None: no cap).
    """

    name = "1 read WARC"
    type = "📖 - READER"
    _requires_dependencies = ["warcio", ("cchardet", "faust-cchardet")]

    def __init__(
        self,
        paths: list[str] | str,
        dump: str | None = None,
        opener: Opener | None = None,
        limit: int | None = None,
        sort: bool = True,
    ):
        super().__init__()
        paths = [paths] if isinstance(paths, str) else list(paths)
        if not paths:
            raise ValueError("WarcReader: no input paths; pass WARC paths or URLs, e.g. tests/data/*.warc.gz")
        if limit is not None and limit < 1:
            raise ValueError(
                f"limit={limit}: use None for no limit or a positive number of documents per task"
            )
        self.paths = sorted(paths) if sort else paths
        self.dump, self.opener, self.limit = dump, opener, limit

    def shard(self, rank: int = 0, world_size: int = 1) -> list[str]:
        """The files task `rank` reads: every `world_size`-th path, starting at `rank`."""
        return self.paths[rank::world_size]

    def _count_skip(self, *labels: str, **_kw) -> None:
        self.stat_update(*labels)
        if labels[0].startswith("skipped_"):  # a record (file_* labels are files): one more record in
            self.stat_update("total")

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        n_docs = 0
        for path in self.shard(rank, world_size):
            self.stat_update("files")
            docs = iter_warc_documents(path, dump=self.dump, opener=self.opener, on_skip=self._count_skip)
            while True:
                with self.track_time():
                    doc = next(docs, None)
                if doc is None:
                    break
                self.stat_update("total", "forwarded", "documents")  # total/forwarded: the funnel's in/out
                self.update_doc_stats(doc)
                yield doc
                n_docs += 1
                if self.limit is not None and n_docs >= self.limit:
                    docs.close()
                    return
