"""Stage 8 (corpus/write_parquet.py): FineWeb's Parquet columns, typed, atomic, rotated by size.

Checks: the schema is exactly FineWeb's nine columns (then score columns) even when the first document lacks
values; files appear only under their final name when complete; files rotate by size; a rerun of a task replaces
what the earlier attempt wrote; intermediate files keep every metadata key.
"""

import glob
import os

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document

from corpus.write_parquet import FINEWEB_COLUMNS, ParquetShardWriter


def docs(n, start=0):
    for i in range(start, start + n):
        meta = {"url": f"https://example.com/{i}", "dump": "CC-MAIN-2024-10", "date": "2024-02-21T00:00:00Z",
                "file_path": "a.warc.gz", "language": "en", "language_score": 0.9, "token_count": i, "extra": i}
        if i == 0:
            meta = {"url": "https://example.com/0"}  # missing values must not break the schema (datatrove #503)
        yield Document(text=f"text {i} " * 50, id=f"<urn:uuid:{i}>", metadata=meta)


def test_fineweb_columns_and_types(tmp_path):
    out = tmp_path / "data"
    list(ParquetShardWriter(str(out), score_columns={"fw_line_punct_ratio": pa.float64()}).run(docs(5)))
    (path,) = glob.glob(str(out / "*.parquet"))
    table = pq.read_table(path)
    assert table.column_names == FINEWEB_COLUMNS + ["fw_line_punct_ratio"]
    assert table.schema.field("token_count").type == pa.int64()
    assert table.column("id").to_pylist()[1] == "<urn:uuid:1>"
    assert table.column("language").to_pylist()[0] is None


def test_rotation_and_no_temp_files_left(tmp_path):
    writer = ParquetShardWriter(str(tmp_path), max_file_bytes=1, rows_per_group=10)
    list(writer.run(docs(35), rank=3))
    names = sorted(os.listdir(tmp_path))
    assert names == [f"00003_{p:04d}.parquet" for p in range(4)]
    assert sum(pq.read_metadata(tmp_path / n).num_rows for n in names) == 35


def test_killed_task_leaves_only_a_temp_file_and_rerun_replaces_it(tmp_path):
    writer = ParquetShardWriter(str(tmp_path), rows_per_group=10)
    gen = writer.run(docs(25))
    for _ in range(15):  # the task dies after one row group was written
        next(gen)
    assert not glob.glob(str(tmp_path / "*.parquet")) and glob.glob(str(tmp_path / "*.tmp"))
    list(ParquetShardWriter(str(tmp_path), rows_per_group=10).run(docs(25)))
    assert os.listdir(tmp_path) == ["00000_0000.parquet"]
    assert pq.read_metadata(tmp_path / "00000_0000.parquet").num_rows == 25


def test_intermediate_files_keep_all_metadata(tmp_path):
    from datatrove.pipeline.readers import ParquetReader

    list(ParquetShardWriter(str(tmp_path), extra_metadata=True, suffix=".pq").run(docs(3)))
    back = list(ParquetReader(str(tmp_path), glob_pattern="*.pq")())
    assert [d.id for d in back] == ["<urn:uuid:0>", "<urn:uuid:1>", "<urn:uuid:2>"]
    assert back[2].metadata["extra"] == 2 and back[2].metadata["token_count"] == 2
