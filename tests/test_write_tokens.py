"""Stage 9 (corpus/write_tokens.py, corpus/token_shards.py, pipelines/tokenize.py): shards are byte-for-byte what
llm.c's and modded-nanogpt's loaders read; decoding gives back every document once after one EOT; documents are
split correctly at shard boundaries; the bytes do not depend on the task count; reruns resume; --check reports
corrupt, short and tampered shards in words; a vocabulary that does not fit uint16 is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tiktoken
from datatrove.data import Document

from corpus import write_tokens
from corpus.token_shards import MANIFEST, check_dir, fill_shards, read_shard, shard_plans, split_sizes
from corpus.tokenizer import gpt2_encoding
from corpus.write_token_shards import merge_token_shards
from corpus.write_tokens import CountTokens, TokenizeDocuments, encode_documents

EOT = 50256
WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "her",
    "it",
    "an",
    "were",
    "are",
    "which",
    "this",
]


def make_texts(n: int = 60) -> list[str]:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(5, 400))).capitalize() + "." for _ in range(n)]
    texts[3] = "A literal <|endoftext|> stays ordinary text, café 東京 🤖."
    return texts


def make_docs(texts: list[str]) -> list[Document]:
    return [Document(text=t, id=f"<urn:uuid:{(i * 7919) % 1000:04d}-{i}>") for i, t in enumerate(texts)]


def tokenize(docs: list[Document], folder: Path, world: int) -> None:
    """What `world` datatrove tasks do, each with a different share of the documents."""
    for rank in range(world):
        list(TokenizeDocuments(str(folder), batch_docs=7).run(iter(docs[rank::world]), rank, world))


SMALL = {"shard_tokens": 2000, "val_tokens": 1000, "min_shard_tokens": 500}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    texts = make_texts()
    tokenize(make_docs(texts), root / "tasks", world=1)
    manifest = merge_token_shards(str(root / "tasks"), str(root / "out"), **SMALL)
    return texts, root / "out", manifest


def shard_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.bin"), key=lambda p: p.name[-10:])  # by index: val_000000 first


def test_header_exactly_as_llmc_reads_it(corpus):
    _, out, manifest = corpus
    for path in shard_files(out):
        raw = path.read_bytes()
        header = np.frombuffer(raw[:1024], dtype=np.int32)  # llm.c train_gpt2.py:_peek_data_shard
        assert header[0] == 20240520 and header[1] == 1 and not header[3:].any()
        tokens = np.frombuffer(raw[1024:], dtype=np.uint16)  # llm.c _load_data_shard
        assert len(tokens) == header[2] and len(raw) == 1024 + 2 * int(
            header[2]
        )  # llmc/dataloader.h size check
        with open(path, "rb") as f:  # modded-nanogpt: header, then readinto exactly ntok uint16
            f.seek(1024)
            buf = bytearray(2 * int(header[2]))
            assert f.readinto(buf) == len(buf) and f.read() == b""
    assert [s["file"] for s in manifest["shards"]][:2] == [
        "fineweb_val_000000.bin",
        "fineweb_train_000001.bin",
    ]


def test_round_trip_one_eot_before_each_document(corpus):
    texts, out, manifest = corpus
    stream = np.concatenate([read_shard(p) for p in shard_files(out)])
    assert stream[0] == EOT and np.count_nonzero(stream == EOT) == len(texts) == manifest["documents"]
    starts = np.flatnonzero(stream == EOT)  # split on the id, not the string: texts[3] holds the literal text
    decoded = [gpt2_encoding().decode(seg[1:].tolist()) for seg in np.split(stream, starts[1:])]
    assert sorted(decoded) == sorted(texts)


def test_shard_boundaries_split_documents(corpus):
    _, out, manifest = corpus
    shards = manifest["shards"]
    val = read_shard(out / shards[0]["file"])
    assert shards[0]["split"] == "val" and len(val) >= SMALL["val_tokens"]
    first_train = read_shard(out / shards[1]["file"])
    assert first_train[0] == EOT  # val holds whole documents: train starts with a document
    sizes = [s["tokens"] for s in shards[1:]]
    assert sizes[:-1] == [SMALL["shard_tokens"]] * (len(sizes) - 1) or sizes[-1] > SMALL["shard_tokens"]
    # a document crosses at least one train boundary: some train shard does not start with EOT
    assert any(read_shard(out / s["file"])[0] != EOT for s in shards[2:])
    for s in shards:
        assert s["documents_starting"] == np.count_nonzero(read_shard(out / s["file"]) == EOT)


def test_val_is_capped_for_a_small_corpus(tmp_path):
    tokenize(make_docs(make_texts(30)), tmp_path / "tasks", world=1)
    m = merge_token_shards(str(tmp_path / "tasks"), str(tmp_path / "out"), **(SMALL | {"val_tokens": 10**9}))
    # 10% of the corpus, rounded up to a whole document (documents here are < 500 tokens)
    assert m["tokens"] // 10 <= m["val_tokens"] < m["tokens"] // 10 + 500 and len(m["shards"]) > 1


def test_split_sizes_fold_a_small_tail():
    assert split_sizes(10_000, 4000, 500) == [4000, 4000, 2000]
    assert split_sizes(8_300, 4000, 500) == [4000, 4300]  # a 300-token tail would crash llm.c's loader
    assert split_sizes(300, 4000, 500) == [300] and split_sizes(0, 4000, 500) == []


def test_a_document_longer_than_a_shard_spans_several(tmp_path):
    stream = np.arange(1, 12_001, dtype="<u2")
    stream[[0, 100, 9_000]] = EOT  # documents of 100, 8,900 and 3,000 tokens
    spans = iter([(0, 0, 100), (0, 100, 8_900), (0, 9_000, 3_000)])
    plans = shard_plans([], split_sizes(12_000, 2_500, 600))  # 4 x 2,500 + a 2,000 tail (kept: >= 600)
    entries = list(fill_shards(spans, plans, [stream], tmp_path, "t"))
    assert [e["tokens"] for e in entries] == [2_500] * 4 + [2_000]
    assert [e["documents_starting"] for e in entries] == [2, 0, 0, 1, 0]
    assert np.array_equal(np.concatenate([read_shard(tmp_path / e["file"]) for e in entries]), stream)


def test_task_count_does_not_change_the_bytes(tmp_path, corpus):
    texts, out1, _ = corpus
    docs = make_docs(texts)
    tokenize(docs[::-1], tmp_path / "tasks3", world=3)  # other order, other spread over tasks
    merge_token_shards(str(tmp_path / "tasks3"), str(tmp_path / "out3"), **SMALL)
    files = [p.name for p in shard_files(out1)]
    assert files == [p.name for p in shard_files(tmp_path / "out3")]
    for name in files:
        assert (out1 / name).read_bytes() == (tmp_path / "out3" / name).read_bytes()


def test_rerun_resumes_and_reconfigures(tmp_path):
    tokenize(make_docs(make_texts(30)), tmp_path / "tasks", world=2)
    merge_token_shards(str(tmp_path / "tasks"), str(tmp_path / "out"), **SMALL)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    merge_token_shards(str(tmp_path / "tasks"), str(tmp_path / "out"), **SMALL)  # up to date: nothing written
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    bigger = SMALL | {"shard_tokens": 50_000}
    m = merge_token_shards(str(tmp_path / "tasks"), str(tmp_path / "out"), **bigger)
    assert sorted(p.name for p in shard_files(tmp_path / "out")) == sorted(s["file"] for s in m["shards"])
    assert check_dir(tmp_path / "out")[0] == []
    texts = make_texts(30)
    texts[7] = texts[7].replace("the", "and")  # a task reruns on changed text: the merge must notice
    tokenize(make_docs(texts), tmp_path / "tasks", world=2)
    m2 = merge_token_shards(str(tmp_path / "tasks"), str(tmp_path / "out"), **bigger)
    assert m2["shards"] != m["shards"] and check_dir(tmp_path / "out")[0] == []
    (tmp_path / "out" / MANIFEST).unlink()  # as if a merge crashed before its manifest, leaving an orphan
    (tmp_path / "out" / "fineweb_train_000007.bin").write_bytes(b"")
    merge_token_shards(str(tmp_path / "tasks"), str(tmp_path / "out"), **bigger)
    assert check_dir(tmp_path / "out")[0] == []  # the orphan is gone


def test_missing_task_is_an_error(tmp_path):
    tokenize(make_docs(make_texts(10)), tmp_path / "tasks", world=3)
    (tmp_path / "tasks" / "00001.json").unlink()
    with pytest.raises(ValueError, match="not finished"):
        merge_token_shards(str(tmp_path / "tasks"), str(tmp_path / "out"))


def test_check_reports_corrupt_short_and_tampered_shards(tmp_path, corpus):
    from pipelines.tokenize import main

    _, good, _ = corpus
    out = tmp_path / "out"
    out.mkdir()
    for p in good.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    assert main(["--check", str(out)]) == 0
    files = [p.name for p in shard_files(out)]
    with open(out / files[1], "r+b") as f:  # truncate: llm.c's size check fails
        f.truncate(1024 + 10)
    raw = bytearray((out / files[2]).read_bytes())
    raw[0:4] = (20240801).to_bytes(4, "little")  # the uint32 Llama-3 magic
    (out / files[2]).write_bytes(bytes(raw))
    tokens = read_shard(out / files[0]).copy()
    tokens[5] = 60000  # out of GPT-2's vocabulary
    (out / files[0]).write_bytes((out / files[0]).read_bytes()[:1024] + tokens.tobytes())
    problems, _ = check_dir(out)
    text = "\n".join(problems)
    assert "truncated or padded" in text and "magic 20240801" in text
    assert "60000 >= vocabulary size 50257" in text and "sha256 differs" in text
    (out / MANIFEST).unlink()
    assert any("manifest.json is missing" in p for p in check_dir(out)[0])
    assert main(["--check", str(out)]) == 1


def test_encoding_matches_encode_ordinary_and_sets_token_count():
    enc = gpt2_encoding()
    texts = ["Hello world", "x <|endoftext|> y", "lone surrogate \ud800 here", "é"]
    ids, lengths = encode_documents(enc, texts)
    expected = [t for text in texts for t in [EOT, *enc.encode_ordinary(text)]]
    assert ids.dtype == np.dtype("<u2") and ids.tolist() == expected
    assert lengths == [len(enc.encode_ordinary(t)) + 1 for t in texts]
    docs = list(CountTokens().run(iter(make_docs(["Hello world", ""]))))
    assert [d.metadata["token_count"] for d in docs] == [2, 0]


def test_empty_documents_are_counted_not_written(tmp_path):
    step = TokenizeDocuments(str(tmp_path))
    docs = list(step.run(iter(make_docs(["Hello world", "", "Hello"]))))
    assert [d.metadata["token_count"] for d in docs] == [2, 0, 1]
    assert np.fromfile(tmp_path / "00000.tokens", dtype="<u2").tolist() == [EOT, 15496, 995, EOT, 15496]
    assert (
        step.stats["empty_text"].total == 1
        and json.loads((tmp_path / "00000.json").read_text())["documents"] == 2
    )


def test_vocabulary_too_big_for_uint16_is_refused(tmp_path, monkeypatch):
    big = tiktoken.Encoding(
        name="big", pat_str=r"\S+|\s+", mergeable_ranks={bytes([b]): b for b in range(256)},
        special_tokens={"<|endoftext|>": 100_000},
    )  # fmt: skip
    monkeypatch.setattr(write_tokens, "get_encoding", lambda name: big)
    with pytest.raises(ValueError, match="100,001 tokens.*uint16"):
        list(TokenizeDocuments(str(tmp_path), tokenizer="big").run(iter(make_docs(["x"]))))
    with pytest.raises(ValueError, match="does not fit uint16"):
        encode_documents(big, ["x"])  # EOT 100,000: the batch check before the cast


def test_cli_tokenizes_parquet(tmp_path):
    from pipelines.tokenize import main

    texts = make_texts(40)
    (tmp_path / "pq").mkdir()
    for k in range(2):
        chunk = list(range(k, 40, 2))
        table = pa.table({"text": [texts[i] for i in chunk], "id": [f"doc-{i:03d}" for i in chunk]})
        pq.write_table(table, tmp_path / "pq" / f"part-{k}.parquet")
    args = ["--parquet", str(tmp_path / "pq"), "--out", str(tmp_path / "out"), "--name", "tiny"]
    args += ["--shard-tokens", "3000", "--val-tokens", "1000", "--min-shard-tokens", "100", "--tasks", "2"]
    assert main([*args, "--workers", "1"]) == 0
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["documents"] == 40 and manifest["shards"][0]["file"] == "tiny_val_000000.bin"
    assert os.path.exists(tmp_path / "out" / "tiny_train_000001.bin")


def test_cli_refuses_bad_input_before_running(tmp_path):
    from pipelines.tokenize import main

    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "pq" / "a.parquet")
    base = ["--parquet", str(tmp_path / "pq"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="no column 'text'.*--text-column"):
        main(base)
    with pytest.raises(
        SystemExit, match="--tokenizer cl100k_base: .*(never download|uint16)"
    ):  # cached or not
        main([*base, "--tokenizer", "cl100k_base"])
    with pytest.raises(SystemExit, match="no file matches"):
        main([*base, "--glob", "*.nothing"])
