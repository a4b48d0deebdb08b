"""Stage 10 shard loader (corpus/train/loader.py): bad shards fail with a `---> HINT:` error; ranks stride
the token stream exactly like one process with gradient accumulation; no window crosses a shard boundary;
the saved position reproduces the following batches. Shards are written with corpus.token_shards."""

from pathlib import Path

import numpy as np
import pytest
import torch

from corpus.token_shards import write_shard
from corpus.train.loader import ShardError, ShardLoader, find_shards, read_header


def shard(path, tokens):
    write_shard(path, np.asarray(tokens, dtype="<u2"))
    return str(path)


@pytest.fixture
def shards(tmp_path):
    # shard k holds k*10000 + 0..n-1, so y == x + 1 holds only for windows inside one shard
    return [
        shard(tmp_path / f"t_train_{k:06d}.bin", k * 10_000 + np.arange(n))
        for k, n in [(1, 300), (2, 170), (3, 20)]
    ]


def test_bad_shards_fail_with_hint(tmp_path):
    good = shard(tmp_path / "a_train_000001.bin", np.arange(100))
    raw = Path(good).read_bytes()
    cases = {
        "short": raw[:500],
        "magic": b"\x01\x02\x03\x04" + raw[4:],
        "truncated": raw[:-2],
        "version": raw[:4] + np.int32(7).tobytes() + raw[8:],
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}_train_000001.bin"
        path.write_bytes(data)
        with pytest.raises(ShardError, match="HINT"):
            read_header(str(path))
    with pytest.raises(ShardError, match="HINT"):
        ShardLoader([], 1, 8)
    with pytest.raises(ShardError, match="world\\*B\\*T\\+1"):
        ShardLoader([good], 4, 32)  # 129 tokens needed, 100 present


def test_find_shards(tmp_path):
    shard(tmp_path / "a_train_000002.bin", [1, 2])
    shard(tmp_path / "a_train_000001.bin", [1, 2])
    assert [p[-18:] for p in find_shards(str(tmp_path), "train")] == [
        "a_train_000001.bin",
        "a_train_000002.bin",
    ]
    shard(tmp_path / "b_train_000001.bin", [1, 2])
    with pytest.raises(ShardError, match="--name"):
        find_shards(str(tmp_path), "train")
    assert len(find_shards(str(tmp_path), "train", name="b")) == 1


def test_ranks_stride_like_accumulation_and_respect_boundaries(shards):
    B, T, world = 2, 8, 2
    single = ShardLoader(shards, B, T, accum=world)  # 1 process x accum 2 ...
    ranks = [ShardLoader(shards, B, T, r, world) for r in range(world)]  # ... = 2 processes x accum 1
    assert ranks[0].skipped == [shards[2]]  # 20 tokens < 2*2*8 + 1 = 33 needed for one step
    seen = set()
    for _ in range(40):  # several passes over both shards, crossing every boundary
        for r in ranks:
            x, y = r.next_batch()
            x1, y1 = single.next_batch()
            assert torch.equal(x, x1) and torch.equal(y, y1)
            assert torch.equal(y, x + 1), "a window crossed a shard boundary"
            assert x.shape == (B, T) and x.dtype == torch.int64
            seen.add(int(x[0, 0]))
        assert ranks[0].state_dict() == ranks[1].state_dict() == single.state_dict()
    # steps start where p + 33 <= len: 9 in shard 1 (300 tokens), 5 in shard 2 (170); 2 windows each
    assert len(seen) == 2 * (9 + 5)


def test_position_roundtrip(shards):
    a = ShardLoader(shards, 2, 8, 1, 2)
    for _ in range(13):
        a.next_batch()
    b = ShardLoader(shards, 2, 8, 1, 2)
    b.load_state_dict(a.state_dict())
    for _ in range(20):
        assert all(torch.equal(u, v) for u, v in zip(a.next_batch(), b.next_batch()))
