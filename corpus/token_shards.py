"""llm.c's `.bin` token shard: write one atomically, read one the way the loaders do, and check a directory.

Layout (llm.c dev/data/data_common.py:write_datafile; read by llm.c train_gpt2.py:_load_data_shard,
llmc/dataloader.h and modded-nanogpt train_gpt.py:_load_data_shard):

    offset 0     256 x int32 little-endian: [20240520 (magic), 1 (version), ntok, 0, ..., 0]   = 1024 bytes
    offset 1024  ntok x uint16 little-endian token ids
    file size    exactly 1024 + 2*ntok (the C loader compares it; the Python loaders assert len == ntok)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from corpus import atomic

MAGIC = 20240520  # llm.c "gpt-2" (uint16) flavour; 20240801 = uint32 Llama-3 flavour, refused
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
TOKEN_DTYPE = np.dtype("<u2")
MAX_TOKENS = 2**31 - 1  # header[2] is an int32 (data_common.py: assert len(toks) < 2**31)
MANIFEST = "manifest.json"
SHARD_RE = re.compile(r"^(?P<name>.+)_(?P<split>val|train)_(?P<index>\d{6})\.bin$")

# Loader limits (docs/formats.md): llm.c asserts every shard holds >= world*B*T + 1 tokens; its GPT-2 124M
# recipe is 8 GPUs x B=64 x T=1024 (llm.c README, train_gpt2.cu -b 64 -t 1024). modded-nanogpt preloads the
# next train shard and never cycles, so it needs >= 2 train shards; its val loop reads 10,485,760 tokens
# (+1 target) from the val shard (modded-nanogpt train_gpt.py val_tokens).
LLMC_WORLD_B_T = 8 * 64 * 1024
MODDED_VAL_TOKENS = 10_485_760


def shard_name(name: str, split: str, index: int) -> str:
    """llm.c's file name: `{name}_{val|train}_{index:06d}.bin` (the index runs across both splits)."""
    return f"{name}_{split}_{index:06d}.bin"


def shard_header(ntok: int) -> bytes:
    if not 0 <= ntok <= MAX_TOKENS:
        raise ValueError(
            f"a shard holds 0..{MAX_TOKENS:,} tokens (int32 header); got {ntok:,}: lower --shard-tokens"
        )
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (MAGIC, VERSION, ntok)
    return header.tobytes()


def write_shard(path: str | os.PathLike, tokens: np.ndarray) -> str:
    """Write header + tokens to `path` via a temporary name; return the file's sha256."""
    if tokens.dtype != TOKEN_DTYPE:
        raise TypeError(f"shard tokens must be {TOKEN_DTYPE} (little-endian uint16), got {tokens.dtype}")
    path = Path(path)
    header = shard_header(len(tokens))
    digest = hashlib.sha256(header)
    digest.update(memoryview(tokens))
    with atomic.atomic_open(path) as f:
        f.write(header)
        f.write(memoryview(tokens))  # one write, no copy (ndarray.tobytes() would copy 2*ntok bytes)
    return digest.hexdigest()


def read_header(path: str | os.PathLike) -> np.ndarray:
    with open(path, "rb") as f:
        raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise ValueError(f"{path}: {len(raw)} bytes, shorter than the {HEADER_BYTES}-byte llm.c header")
    return np.frombuffer(raw, dtype="<i4")


def read_shard(path: str | os.PathLike) -> np.ndarray:
    """Tokens of one shard, with the checks llm.c's and modded-nanogpt's loaders make (ValueError in words)."""
    header = read_header(path)
    if header[0] != MAGIC:
        raise ValueError(f"{path}: magic {header[0]} is not {MAGIC}; not an llm.c GPT-2 (uint16) shard")
    if header[1] != VERSION:
        raise ValueError(
            f"{path}: version {header[1]} is not {VERSION}; the GPT-2 loaders accept version 1 only"
        )
    ntok = int(header[2])
    size = os.path.getsize(path)
    if ntok < 0 or size != HEADER_BYTES + 2 * ntok:
        raise ValueError(
            f"{path}: header says {ntok:,} tokens = {HEADER_BYTES + 2 * ntok:,} bytes, the file has {size:,}: "
            f"truncated or padded; rerun the merge (python -m pipelines.tokenize ...)"
        )
    return np.fromfile(path, dtype=TOKEN_DTYPE, offset=HEADER_BYTES)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, obj) -> None:
    atomic.write_text(path, json.dumps(obj, indent=1) + "\n")


@dataclass(frozen=True)
class ShardPlan:
    split: str
    index: int
    tokens: int


def split_sizes(total: int, shard_tokens: int, min_shard_tokens: int) -> list[int]:
    """Shards of `shard_tokens`; a last remainder below `min_shard_tokens` is folded into the shard before it
    (llm.c's loaders assert every shard holds >= world*B*T+1 tokens; a few-K-token tail shard would crash them)."""
    sizes = [shard_tokens] * (total // shard_tokens)
    rest = total - sum(sizes)
    if rest and sizes and rest < min_shard_tokens:
        sizes[-1] += rest
    elif rest:
        sizes.append(rest)
    return sizes


def fill_shards(spans: Iterator, plans: list[ShardPlan], tokens: list[np.ndarray], out: Path, name: str):
    """Copy document spans into shard buffers of the planned sizes (a document may cross a train shard
    boundary, as in llm.c); write each shard with one call. Yields the manifest entry of each shard."""
    carry = None
    for plan in plans:
        buf, pos, starts = np.empty(plan.tokens, dtype=TOKEN_DTYPE), 0, 0
        while pos < plan.tokens:
            rank, off, n = carry or next(spans)
            starts += carry is None  # a carried remainder does not start with EOT
            k = min(n, plan.tokens - pos)
            buf[pos : pos + k] = tokens[rank][off : off + k]
            pos += k
            carry = (rank, off + k, n - k) if k < n else None
        file = shard_name(name, plan.split, plan.index)
        yield asdict(plan) | {
            "file": file,
            "documents_starting": starts,
            "sha256": write_shard(out / file, buf),
        }


def shard_plans(val_sizes: list[int], train_sizes: list[int]) -> list[ShardPlan]:
    plans = [ShardPlan("val", i, n) for i, n in enumerate(val_sizes)]
    return plans + [ShardPlan("train", len(plans) + i, n) for i, n in enumerate(train_sizes)]


def _check_manifest(folder: Path, manifest: dict, seen: dict[str, tuple[int, int]]) -> list[str]:
    problems = []
    listed = {s["file"]: s for s in manifest.get("shards", [])}
    for missing in sorted(set(listed) - set(seen)):
        problems.append(f"{missing}: listed in {MANIFEST} but missing or unreadable")
    for extra in sorted(set(seen) - set(listed)):
        problems.append(f"{extra}: a shard that {MANIFEST} does not list (left over from another run?)")
    for file in sorted(set(listed) & set(seen)):
        entry, (ntok, ndocs) = listed[file], seen[file]
        if entry["tokens"] != ntok:
            problems.append(f"{file}: {ntok:,} tokens, {MANIFEST} says {entry['tokens']:,}")
        if entry.get("documents_starting") not in (None, ndocs):
            problems.append(
                f"{file}: {ndocs:,} documents start here, {MANIFEST} says {entry['documents_starting']:,}"
            )
        if entry["sha256"] != sha256_file(folder / file):
            problems.append(f"{file}: sha256 differs from {MANIFEST}: the file changed after it was written")
    total = sum(ntok for ntok, _ in seen.values())
    if manifest.get("tokens") not in (None, total):
        problems.append(f"the shards hold {total:,} tokens, {MANIFEST} says {manifest['tokens']:,}")
    return problems


def check_dir(folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(problems, warnings) for every shard in `folder` and its manifest; problems make the folder unusable."""
    folder = Path(folder)
    problems, seen = [], {}
    manifest = None
    if (folder / MANIFEST).exists():
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except ValueError as e:
            problems.append(f"{MANIFEST}: not valid JSON ({e}); rerun the merge")
    else:
        problems.append(f"{MANIFEST} is missing: the merge did not finish; rerun it")
    n_vocab = (manifest or {}).get("tokenizer", {}).get("n_vocab", 2**16)
    eot = (manifest or {}).get("tokenizer", {}).get("eot")
    files = sorted(p.name for p in folder.glob("*.bin"))
    if not files:
        problems.append(f"no *.bin shard in {folder}")
    for file in files:
        if not SHARD_RE.match(file):
            problems.append(f"{file}: name is not {{name}}_{{val|train}}_{{index:06d}}.bin")
        try:
            tokens = read_shard(folder / file)
        except ValueError as e:
            problems.append(str(e).replace(str(folder / file), file))
            continue
        if len(tokens) and int(tokens.max()) >= n_vocab:
            problems.append(
                f"{file}: token id {int(tokens.max())} >= vocabulary size {n_vocab}: corrupt data"
            )
        seen[file] = (len(tokens), int(np.count_nonzero(tokens == eot)) if eot is not None else None)
    if manifest is not None:
        problems += _check_manifest(folder, manifest, seen)
    return problems, loader_warnings({f: n for f, (n, _) in seen.items()})


def loader_warnings(shard_tokens: dict[str, int], world_b_t: int = LLMC_WORLD_B_T) -> list[str]:
    """Where llm.c's or modded-nanogpt's loaders would stop on these shards (file name -> token count)."""
    warnings = []
    small = sorted((n, f) for f, n in shard_tokens.items() if n < world_b_t + 1)
    if small:
        warnings.append(
            f"{len(small)} shard(s) hold fewer than world*B*T+1 = {world_b_t + 1:,} tokens (smallest: "
            f"{small[0][1]}, {small[0][0]:,}): llm.c's loaders assert on them at 8 GPUs x B=64 x T=1024; "
            f"train with world*B*T < {small[0][0]:,} or write a bigger corpus"
        )
    n_train = sum("_train_" in f for f in shard_tokens)
    if n_train < 2:
        warnings.append(f"{n_train} train shard(s): modded-nanogpt needs >= 2 (it preloads the next one)")
    val = sum(n for f, n in shard_tokens.items() if "_val_" in f)
    if val < MODDED_VAL_TOKENS + 1:
        warnings.append(
            f"val holds {val:,} tokens < {MODDED_VAL_TOKENS + 1:,} that modded-nanogpt's val loop reads"
        )
    return warnings
