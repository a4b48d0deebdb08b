"""Stage 8: documents → Parquet with FineWeb's columns, written atomically and rotated by size.

FineWeb's published schema (HF dataset card): `text, id, dump, url, date, file_path, language, language_score,
token_count`. We write exactly those, typed up front (datatrove's ParquetWriter infers the schema from the first
document and fails on a later `None`: datatrove PR #503), followed by a few cheap score columns so thresholds can
be re-tuned without re-running the crawl.

Each file is written as `NAME.tmp` and renamed when it is closed, so a killed task never leaves a file that looks
finished; a rerun of the task first removes what that task wrote before.
"""

from __future__ import annotations

import glob
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

FINEWEB_SCHEMA = pa.schema([
    ("text", pa.string()),
    ("id", pa.string()),  # WARC-Record-ID
    ("dump", pa.string()),  # e.g. CC-MAIN-2024-10
    ("url", pa.string()),  # WARC-Target-URI
    ("date", pa.string()),  # WARC-Date
    ("file_path", pa.string()),  # the WARC file the record came from
    ("language", pa.string()),
    ("language_score", pa.float64()),
    ("token_count", pa.int64()),  # GPT-2 tokens of `text`
])
FINEWEB_COLUMNS = FINEWEB_SCHEMA.names


def output_schema(score_columns: dict[str, pa.DataType] | None = None, extra_metadata: bool = False) -> pa.Schema:
    """FineWeb's columns, then score columns, then (for intermediate files) a JSON `metadata` column."""
    schema = FINEWEB_SCHEMA
    for name, dtype in (score_columns or {}).items():
        schema = schema.append(pa.field(name, dtype))
    if extra_metadata:
        schema = schema.append(pa.field("metadata", pa.string()))
    return schema


def document_row(doc: Document, schema: pa.Schema) -> dict:
    """One Parquet row: `text` and `id` from the document, every other column from its metadata.

    Metadata keys that are not columns go into the JSON `metadata` column when the schema has one, and are
    dropped otherwise; keys starting with "_" are in-process scratch and never written.
    """
    meta = doc.metadata
    row = {"text": doc.text, "id": doc.id}
    for name in schema.names[2:]:
        row[name] = meta.get(name)
    if "metadata" in schema.names:
        extra = {k: v for k, v in meta.items() if k not in schema.names and not k.startswith("_")}
        row["metadata"] = json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str) if extra else None
    return row


class ParquetShardWriter(PipelineStep):
    """Write the documents of each task to `{rank:05d}_{part:04d}{suffix}` under `output_dir`.

    Args:
        output_dir: local directory (created if needed).
        score_columns: extra typed columns taken from metadata (None → NULL).
        extra_metadata: also keep every other metadata key in a JSON `metadata` column (used for the
            pipeline's intermediate files, so the next stage gets back exactly what this one had).
        max_file_bytes: start a new part once a file's written row groups exceed this size (FineWeb: 5 GiB;
            our default 1 GiB keeps files easy to move around).
        suffix: ".parquet" for outputs; intermediate files use ".pq" so globs for outputs never pick them up.
        rows_per_group: Parquet row-group size (rows are buffered in memory up to this).
        name: the step's name in stats (default "8 Parquet").
    """

    name = "8 Parquet"
    type = "💽 - WRITER"

    def __init__(self, output_dir: str, score_columns: dict[str, pa.DataType] | None = None,
                 extra_metadata: bool = False, max_file_bytes: int = 1 << 30, suffix: str = ".parquet",
                 rows_per_group: int = 2000, compression: str = "zstd", name: str | None = None):
        if name:
            self.name = name  # e.g. the pipeline's intermediate files are not stage 8 (set before Stats is made)
        super().__init__()
        if max_file_bytes <= 0 or rows_per_group <= 0:
            raise ValueError("max_file_bytes and rows_per_group must be positive")
        self.output_dir = output_dir
        self.schema = output_schema(score_columns, extra_metadata)
        self.max_file_bytes = max_file_bytes
        self.suffix = suffix
        self.rows_per_group = rows_per_group
        self.compression = compression

    def _path(self, rank: int, part: int) -> str:
        return os.path.join(self.output_dir, f"{rank:05d}_{part:04d}{self.suffix}")

    def _remove_previous_attempt(self, rank: int) -> None:
        for path in glob.glob(os.path.join(glob.escape(self.output_dir), f"{rank:05d}_*{self.suffix}*")):
            os.remove(path)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        os.makedirs(self.output_dir, exist_ok=True)
        self._remove_previous_attempt(rank)
        part, writer, rows = 0, None, []

        def flush():
            nonlocal writer, part
            if not rows:
                return
            if writer is None:
                writer = pq.ParquetWriter(self._path(rank, part) + ".tmp", self.schema, compression=self.compression)
            with self.track_time("row_group"):
                writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            rows.clear()
            if os.path.getsize(self._path(rank, part) + ".tmp") >= self.max_file_bytes:
                close()
                part += 1

        def close():
            nonlocal writer
            if writer is not None:
                writer.close()
                os.replace(self._path(rank, part) + ".tmp", self._path(rank, part))
                self.stat_update("files")
                writer = None

        for doc in data:
            rows.append(document_row(doc, self.schema))
            self.stat_update("documents")
            if len(rows) >= self.rows_per_group:
                flush()
            yield doc
        flush()
        close()


class AtomicParquetWriter(ParquetWriter):
    """datatrove's ParquetWriter (schema inferred from the data, so a user's own columns are kept as they are)
    whose files are written under a `.tmp` name and renamed once the task has closed them. For Parquet that is not
    FineWeb's schema (`python -m pipelines.dedup` over a user's corpus); ParquetShardWriter is the pipeline's."""

    def __init__(self, output_folder: str, **kwargs):
        super().__init__(output_folder, output_filename="${rank}.parquet.tmp", **kwargs)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        yield from super().run(data, rank, world_size)  # closes every file of the task at its end
        for tmp in self.output_folder.glob(f"[0-9][0-9][0-9]_{rank:05d}.parquet.tmp"):  # NNN_: datatrove's rotation
            self.output_folder.mv(tmp, tmp.removesuffix(".tmp"))


class IntermediateReader(ParquetReader):
    """Reads back what `ParquetShardWriter(extra_metadata=True, suffix=".pq")` wrote (the pipeline's work/)."""

    name = "← work"

    def __init__(self, folder: str, **kwargs):
        super().__init__(folder, glob_pattern="*.pq", **kwargs)
