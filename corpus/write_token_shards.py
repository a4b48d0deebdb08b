"""Stage 9b: the tasks' token files (stage 9a, corpus/write_tokens.py) → llm.c `.bin` shards + manifest.json.

`MergeTokenShards` runs once (tasks=1) after every TokenizeDocuments task has finished. It k-way merges the tasks'
sorted indexes, so documents come out sorted by (Document.id, sha1 of text) however they were spread over tasks;
validation takes whole documents from the start of that order, then train shards of `shard_tokens` follow (a
document may cross a train shard boundary, as in llm.c). Shards are written atomically, manifest.json last; a
rerun on unchanged inputs and settings returns at once. Format and split: docs/formats.md, "Token shards".
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpus.token_shards import (
    LLMC_WORLD_B_T,
    MANIFEST,
    MODDED_VAL_TOKENS,
    SHARD_RE,
    TOKEN_DTYPE,
    fill_shards,
    loader_warnings,
    shard_plans,
    split_sizes,
    write_json,
)


def _load_summaries(folder: Path) -> list[dict]:
    summaries = [json.loads(p.read_text()) for p in sorted(folder.glob("[0-9]*.json"))]
    if not summaries:
        raise FileNotFoundError(f"no tokenized task in {folder}: run TokenizeDocuments (the pipeline) first")
    world = {s["world_size"] for s in summaries}
    ranks = sorted(s["rank"] for s in summaries)
    if len(world) != 1 or ranks != list(range(world.pop())):
        raise ValueError(
            f"{folder} holds ranks {ranks[:8]}... of runs with {sorted({s['world_size'] for s in summaries})} "
            f"tasks: some tasks have not finished (rerun the pipeline) or two runs were mixed (empty the folder)"
        )
    if len({(s["tokenizer"], s["n_vocab"]) for s in summaries}) != 1:
        raise ValueError(f"{folder}: tasks used different tokenizers; empty the folder and rerun")
    return summaries


def _doc_stream(folder: Path, world: int) -> Iterator[tuple[int, int, int]]:
    """(rank, offset, tokens) of every document, in global (id, sha1) order."""

    def entries(rank: int) -> Iterator[tuple]:
        with open(folder / f"{rank:05d}.index.jsonl", "rb") as f:
            for line in f:
                doc_id, sha1, offset, n = orjson.loads(line)
                yield doc_id, sha1, rank, offset, n

    for _, _, rank, offset, n in heapq.merge(*(entries(r) for r in range(world))):
        yield rank, offset, n


def _up_to_date(out: Path, config: dict, summaries: list[dict]) -> dict | None:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("config") != config or manifest.get("inputs") != summaries:
        return None
    for shard in manifest["shards"]:
        path = out / shard["file"]
        if not path.is_file() or path.stat().st_size != 1024 + 2 * shard["tokens"]:
            return None
    return manifest


def _forget_previous(out: Path, name: str) -> None:
    """Remove the old manifest first (a crash mid-merge must not look finished), then every `{name}_*` shard,
    also those of a merge that crashed before its manifest: trainers glob `{name}_train_*.bin`."""
    (out / MANIFEST).unlink(missing_ok=True)
    for path in out.glob(f"{name}_*.bin*"):
        match = SHARD_RE.match(re.sub(r"\.\d+\.tmp$", "", path.name))  # also a killed write's NAME.<pid>.tmp
        if match and match["name"] == name:
            path.unlink()


def _take_val(spans: Iterator, total: int, val_tokens: int | None) -> tuple[list, int]:
    """Validation = whole documents from the start of the order until `val_tokens` is reached, so no document is
    split between val and train; capped at 10% of a small corpus so that train keeps most of it."""
    from loguru import logger

    target = min(val_tokens or 0, total // 10)
    if val_tokens and target < val_tokens:
        logger.warning(f"corpus of {total:,} tokens: val capped at 10% ({target:,} < {val_tokens:,} asked)")
    docs, taken = [], 0
    while taken < target:
        docs.append(next(spans))
        taken += docs[-1][2]
    return docs, taken


def _manifest(summaries: list[dict], config: dict, shards: list[dict], val_docs: int) -> dict:
    first = summaries[0]
    val_tokens = sum(s["tokens"] for s in shards if s["split"] == "val")
    return {
        "format": {"magic": 20240520, "version": 1, "header_bytes": 1024, "dtype": "uint16 little-endian",
                   "eot_before_each_document": True, "reference": "llm.c dev/data/data_common.py"},
        "tokenizer": {"name": first["tokenizer"], "n_vocab": first["n_vocab"], "eot": first["eot"]},
        "order": "documents sorted by (Document.id, sha1 of text); val = whole documents from the start",
        "config": config, "documents": sum(s["documents"] for s in summaries),
        "tokens": sum(s["tokens"] for s in summaries), "val_documents": val_docs, "val_tokens": val_tokens,
        "shards": shards, "loader_warnings": loader_warnings({s["file"]: s["tokens"] for s in shards}),
        "inputs": summaries,
    }  # fmt: skip


def merge_token_shards(
    input_dir: str,
    output_dir: str,
    name: str = "fineweb",
    shard_tokens: int = 10**8,  # llm.c dev/data/fineweb.py --shard_size default
    val_tokens: int | None = MODDED_VAL_TOKENS + 1,  # modded-nanogpt's val loop: 10,485,760 + 1 target
    min_shard_tokens: int = LLMC_WORLD_B_T + 1,  # llm.c: every shard >= world*B*T + 1 (8 x 64 x 1024)
    tokenizer: str | None = None,  # when given, the tasks must have used this encoding
) -> dict:
    """Write llm.c shards from TokenizeDocuments' files; returns the manifest. A rerun on unchanged inputs and
    config returns at once; otherwise the shards are rewritten (each atomically, manifest last)."""
    from loguru import logger

    src, out = Path(input_dir), Path(output_dir)
    summaries = _load_summaries(src)
    if tokenizer not in (None, summaries[0]["tokenizer"]):
        raise ValueError(
            f"{src} was tokenized with {summaries[0]['tokenizer']!r}, not {tokenizer!r}: empty it and rerun"
        )
    config = {"name": name, "shard_tokens": shard_tokens, "val_tokens": val_tokens,
              "min_shard_tokens": min_shard_tokens}  # fmt: skip
    if (manifest := _up_to_date(out, config, summaries)) is not None:
        logger.info(f"{out / MANIFEST} is up to date with {src}; nothing to do")
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    _forget_previous(out, name)
    tokens = [  # np.memmap refuses empty files
        np.memmap(src / f"{r:05d}.tokens", dtype=TOKEN_DTYPE, mode="r") if s["tokens"] else None
        for r, s in enumerate(summaries)
    ]
    total = sum(s["tokens"] for s in summaries)
    spans = _doc_stream(src, len(summaries))
    val_docs, val_total = _take_val(spans, total, val_tokens)
    plans = shard_plans(split_sizes(val_total, shard_tokens, min_shard_tokens),
                        split_sizes(total - val_total, shard_tokens, min_shard_tokens))  # fmt: skip
    shards = list(fill_shards(itertools.chain(val_docs, spans), plans, tokens, out, name))
    manifest = _manifest(summaries, config, shards, len(val_docs))
    for warning in manifest["loader_warnings"]:
        logger.warning(warning)
    write_json(out / MANIFEST, manifest)
    return manifest


class MergeTokenShards(PipelineStep):
    """The single-task step after TokenizeDocuments: llm.c shards + manifest.json in `output_dir`
    (keyword arguments as for `merge_token_shards`)."""

    name = "9b token shards (llm.c)"
    type = "✍️ - WRITER"

    def __init__(self, input_dir: str, output_dir: str, **merge_kwargs):
        super().__init__()
        self.input_dir, self.output_dir, self.merge_kwargs = str(input_dir), str(output_dir), merge_kwargs

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ValueError(
                f"MergeTokenShards writes one ordered stream: run it with tasks=1, not {world_size}"
            )
        with self.track_time():
            manifest = merge_token_shards(self.input_dir, self.output_dir, **self.merge_kwargs)
        self.stat_update("shards", value=len(manifest["shards"]), unit="merge")
        self.stat_update("tokens", value=manifest["tokens"], unit="merge")
        if data:
            yield from data
