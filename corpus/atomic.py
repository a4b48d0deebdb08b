"""Write a whole file or nothing: the bytes go to a temporary name in the same directory (the same filesystem,
so the rename is atomic), which then replaces the target. A reader never sees a half-written file, a killed
process leaves only a `NAME.<pid>.tmp` behind (never matched by globs for `*.npy`, `*.bin` or `*.json`), and
two processes writing the same file at once (Slurm array tasks) do not share a temporary file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = False, **open_kw) -> Iterator:
    """`with atomic_open(path, "w") as f: ...`: the file appears at `path` only when the block ends without an
    error. fsync: flush to disk before the rename (checkpoints: a power cut must not leave an empty file)."""
    tmp = temp_path(path)
    try:
        with open(tmp, mode, **open_kw) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
