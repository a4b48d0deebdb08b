"""Reads llm.c token shards and serves (x, y) batches to each DDP rank, knowing its exact position.

Shard format (llm.c dev/data/data_common.py, docs/formats.md): a 1024-byte header of 256 little-endian int32
[20240520 magic, 1 version, ntok, 0...], then exactly ntok uint16 GPT-2 token ids; file size 1024 + 2*ntok.
Files are `{name}_{split}_{index:06d}.bin`; index order is stream order.

Striding (llm.c train_gpt2.py DistributedDataLoader, extended to gradient accumulation): one optimizer
step of the whole job reads S = accum*world*B*T consecutive tokens (+1 for the shifted targets); micro-step m
of rank r takes the window [pos + (m*world + r)*B*T, ... + B*T + 1). After the step pos advances by S. When
the next step would run past the shard end, the tail is dropped and reading moves to the next shard (cycling
back to the first after the last). So 1 process x accum 2 and 2 processes x accum 1 read the same tokens and
drop the same tails. The position (shard, pos) is the same on every rank and depends only on S, so it goes
into checkpoints as is and a resumed run reads exactly the tokens the stopped one would have read.
"""

import glob
import os

import numpy as np
import torch

MAGIC, VERSION, HEADER_INTS = 20240520, 1, 256
HEADER_BYTES = HEADER_INTS * 4


class ShardError(ValueError):
    """A token shard is missing or malformed; the message ends with a `---> HINT:` line."""


def read_header(path: str) -> int:
    """Validate one shard's header and size; return its token count."""
    size = os.path.getsize(path)
    if size < HEADER_BYTES:
        raise ShardError(
            f"{path}: {size} bytes, shorter than the 1024-byte header.\n"
            "---> HINT: the file is truncated or not a token shard; re-run the write_tokens stage."
        )
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if header[0] != MAGIC:
        raise ShardError(
            f"{path}: magic number {header[0]}, expected {MAGIC} (llm.c GPT-2 uint16 shard).\n"
            "---> HINT: are you passing a directory of llm.c .bin shards to --data? Llama-3 "
            "shards (magic 20240801) and .npy/.ds files are other formats."
        )
    if header[1] != VERSION:
        raise ShardError(
            f"{path}: version {header[1]}, expected {VERSION} (uint16 tokens).\n"
            "---> HINT: re-write the shards with corpus/write_tokens.py (GPT-2, uint16)."
        )
    ntok = int(header[2])
    if size != HEADER_BYTES + 2 * ntok:
        raise ShardError(
            f"{path}: header says {ntok} tokens ({HEADER_BYTES + 2 * ntok} bytes) but the file has "
            f"{size} bytes.\n---> HINT: the shard is truncated or was written by another tool; "
            "delete it and re-run the write_tokens stage."
        )
    return ntok


def read_tokens(path: str) -> np.ndarray:
    """Memory-map a validated shard's tokens (uint16, read-only)."""
    ntok = read_header(path)
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(ntok,))


def find_shards(data_dir: str, split: str, name: str | None = None) -> list[str]:
    """Sorted `{name}_{split}_*.bin` in data_dir (any name if None). Empty list if there are none."""
    paths = sorted(glob.glob(os.path.join(data_dir, f"{name or '*'}_{split}_*.bin")))
    if name is None and len({os.path.basename(p).rsplit(f"_{split}_", 1)[0] for p in paths}) > 1:
        raise ShardError(
            f"{data_dir} holds {split} shards of several datasets.\n"
            "---> HINT: pick one with --name (the part before _train_/_val_ in the file names)."
        )
    return paths


class ShardLoader:
    """Micro-batches (x, y) of shape (B, T) int64 for `rank` of `world`, `accum` per optimizer step."""

    def __init__(self, paths: list[str], B: int, T: int, rank: int = 0, world: int = 1, accum: int = 1):
        if not paths:
            raise ShardError(
                "no token shards found.\n---> HINT: point --data at the directory written by the "
                "write_tokens stage (files like fineweb_train_000001.bin)."
            )
        self.B, self.T, self.rank, self.world, self.accum = B, T, rank, world, accum
        self.tokens_per_step = accum * world * B * T  # one optimizer step of the whole job
        need = self.tokens_per_step + 1
        sizes = {p: read_header(p) for p in paths}  # validates every shard up front, before any step runs
        self.paths = [p for p in paths if sizes[p] >= need]
        self.skipped = [p for p in paths if sizes[p] < need]  # too small for one step (pretrain.md pitfall 4)
        if not self.paths:
            raise ShardError(
                f"every shard has fewer than accum*world*B*T+1 = {need} tokens.\n---> HINT: lower "
                "--batch-size, --seq-len or --total-batch-tokens, or write larger shards."
            )
        self.reset()

    def reset(self, shard: int = 0, pos: int = 0) -> None:
        self.shard, self.pos, self.micro = shard, pos, 0
        self._tokens = read_tokens(self.paths[shard])

    def state_dict(self) -> dict:
        if self.micro:
            raise RuntimeError("loader position saved in the middle of an optimizer step")
        path = os.path.basename(self.paths[self.shard])
        return {"shard": self.shard, "pos": self.pos, "path": path, "tokens_per_step": self.tokens_per_step}

    def load_state_dict(self, state: dict) -> None:
        if state["shard"] >= len(self.paths) or os.path.basename(self.paths[state["shard"]]) != state["path"]:
            raise ShardError(
                f"the checkpoint was reading {state['path']} (usable shard #{state['shard']}), which "
                "is not where it was.\n---> HINT: resume with the same --data shards and batch size."
            )
        self.reset(state["shard"], state["pos"])

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        BT = self.B * self.T
        start = self.pos + (self.micro * self.world + self.rank) * BT
        # int64 before torch: uint16 -> long is not supported by older torch (pretrain.md pitfall 9)
        buf = torch.from_numpy(self._tokens[start : start + BT + 1].astype(np.int64))
        self.micro += 1
        if self.micro == self.accum:
            self.micro, self.pos = 0, self.pos + self.tokens_per_step
            if self.pos + self.tokens_per_step + 1 > len(self._tokens):  # the next step would not fit
                self.reset((self.shard + 1) % len(self.paths), 0)
        return buf[:-1].view(self.B, self.T), buf[1:].view(self.B, self.T)
