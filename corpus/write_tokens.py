"""Stage 9: documents -> GPT-2 token ids in llm.c's uint16 `.bin` shards (format in corpus/token_shards.py).

Two datatrove steps, because shards must come out the same whatever the number of tasks:

1. `TokenizeDocuments` runs in every task of the pipeline's last stage. It encodes documents in batches and
   appends `[EOT, doc tokens...]` (EOT before every document, as llm.c dev/data/fineweb.py does) to
   `{rank:05d}.tokens`, with a per-document index sorted by (document id, sha1 of the text).
2. `MergeTokenShards` (corpus/write_token_shards.py, imported here too) runs once (tasks=1) after them. It
   k-way merges the ranks' indexes, so the global order is "sorted by document id" however documents were spread
   over tasks, then cuts the stream into `{name}_val_*.bin` (whole documents from the start of that order) and
   `{name}_train_*.bin` shards of `shard_tokens`, and writes manifest.json last.

`count_tokens_step` is what the FineWeb recipe places before the Parquet writer: `token_count` only, or 9a too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.token_shards import TOKEN_DTYPE, write_json
from corpus.tokenizer import check_uint16, get_encoding


def _encode(enc, text: str) -> np.ndarray:
    """encode_ordinary's ids straight into a numpy buffer, without a Python list of ints (tiktoken >= 0.8)."""
    try:
        return enc.encode_to_numpy(text, disallowed_special=())
    except (
        AttributeError,
        UnicodeEncodeError,
    ):  # old tiktoken; lone surrogates, which encode_ordinary repairs
        return np.asarray(enc.encode_ordinary(text), dtype=np.uint32)


def encode_documents(enc, texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """`[EOT, tokens of text 0, EOT, tokens of text 1, ...]` as uint16, and each document's length (EOT included).

    Special-token strings inside a text stay ordinary text (llm.c uses encode_ordinary). Raises when an id does not
    fit uint16 (checked on the whole batch before the cast, as llm.c checks each document).
    """
    eot = np.array([enc.eot_token], dtype=np.uint32)
    parts = []
    for text in texts:
        parts += (eot, _encode(enc, text))
    ids = np.concatenate(parts) if parts else np.empty(0, np.uint32)
    if len(ids) and int(ids.max()) >= 2**16:
        raise ValueError(
            f"token id {int(ids.max())} does not fit uint16; use a tokenizer with <= 65,536 tokens"
        )
    return ids.astype(TOKEN_DTYPE), [len(p) + 1 for p in parts[1::2]]


class CountTokens(PipelineStep):
    """Stage 8's `token_count` metadata (FineWeb's column: tokens of the text, no EOT), without writing tokens."""

    name = "9a count tokens"
    type = "🔢 - TOKENIZER"

    def __init__(self, tokenizer: str = "gpt2"):
        super().__init__()
        self.tokenizer = tokenizer

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        enc = get_encoding(self.tokenizer)
        for doc in data or ():
            doc.metadata["token_count"] = len(_encode(enc, doc.text)) if doc.text else 0
            self.stat_update("tokens", value=doc.metadata["token_count"])
            yield doc


class TokenizeDocuments(PipelineStep):
    """Per task: encode documents, append `[EOT, ids...]` to `{output_dir}/{rank:05d}.tokens`, keep a sorted index.

    Files appear atomically when the task ends: `.tokens`, then `.index.jsonl`, then `{rank:05d}.json` (the
    summary MergeTokenShards waits for). Documents pass on with `metadata["token_count"]` set, so placed before
    the Parquet writer this step also fills FineWeb's token_count column (one encoding per document).
    """

    name = "9a tokenize (GPT-2)"
    type = "🔢 - TOKENIZER"

    def __init__(self, output_dir: str, tokenizer: str = "gpt2", batch_docs: int = 1024):
        super().__init__()
        self.output_dir, self.tokenizer, self.batch_docs = str(output_dir), tokenizer, batch_docs

    def _flush(self, enc, batch: list[Document], out, index: list, offset: int) -> int:
        docs = [doc for doc in batch if doc.text]
        with self.track_time("batch"):
            ids, lengths = encode_documents(enc, [doc.text for doc in docs])
            out.write(memoryview(ids))  # one write per batch
            self._digest.update(memoryview(ids))
        for doc in batch:
            doc.metadata["token_count"] = 0
        start = offset
        for doc, n in zip(docs, lengths):
            # 64 bits of the text's sha1 break ties between equal ids (28 bytes a document in memory, not 89)
            sha1 = int.from_bytes(hashlib.sha1(doc.text.encode("utf-8", "surrogatepass")).digest()[:8], "big")
            index.append((str(doc.id), sha1, offset, n))
            offset += n
            doc.metadata["token_count"] = n - 1  # FineWeb's token_count does not count our EOT
        # per batch, not per document: datatrove's stats cost ~5% of the stage when updated 2x per document
        self.stat_update("tokens", value=offset - start, unit="batch")
        self.stat_update("documents", value=len(docs), unit="batch")
        self.stat_update("empty_text", value=len(batch) - len(docs))  # nothing to train on: no EOT written
        return offset

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        enc = check_uint16(get_encoding(self.tokenizer))
        stem = Path(self.output_dir) / f"{rank:05d}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        index, batch, offset = [], [], 0
        self._digest = hashlib.sha256()  # the summary's digest: a rerun of the merge sees changed content
        with open(f"{stem}.tokens.tmp", "wb") as out:
            for doc in data or ():
                batch.append(doc)
                if len(batch) >= self.batch_docs:
                    offset = self._flush(enc, batch, out, index, offset)
                    yield from batch
                    batch = []
            offset = self._flush(enc, batch, out, index, offset)
            yield from batch
        index.sort()  # the deterministic order: (document id, sha1 of text) breaks id ties
        os.replace(f"{stem}.tokens.tmp", f"{stem}.tokens")
        lines = b"".join(orjson.dumps(entry) + b"\n" for entry in index)
        with open(f"{stem}.index.jsonl.tmp", "wb") as f:
            f.write(lines)
        os.replace(f"{stem}.index.jsonl.tmp", f"{stem}.index.jsonl")
        self._digest.update(lines)
        summary = {"rank": rank, "world_size": world_size, "documents": len(index), "tokens": offset}
        summary["sha256"] = self._digest.hexdigest()
        summary |= {"tokenizer": enc.name, "n_vocab": enc.n_vocab, "eot": enc.eot_token}
        write_json(Path(f"{stem}.json"), summary)


def count_tokens_step(tokenizer: str = "gpt2", tokens_dir: str | None = None) -> PipelineStep:
    """The step before the Parquet writer: sets `token_count`; with `tokens_dir` it also writes this task's
    tokens for MergeTokenShards (stage 9a), so each document is encoded once."""
    return TokenizeDocuments(tokens_dir, tokenizer) if tokens_dir else CountTokens(tokenizer)
