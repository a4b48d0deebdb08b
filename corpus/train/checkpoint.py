"""Checkpoints: model, optimizer, step, data position, RNG states and configs in one file, written atomically
(temp name in the same directory, fsync, os.replace), so a crash never leaves a half-written ckpt_*.pt."""

import glob
import os
import random

import numpy as np
import torch

from corpus.atomic import atomic_open

PATTERN = "ckpt_{step:07d}.pt"


def rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [torch.from_numpy(np.random.get_state()[1].astype(np.int64)), *np.random.get_state()[2:]],
    }
    if torch.cuda.is_initialized():
        # this process's own GPU only: get_rng_state_all() would open a CUDA context on every GPU of the
        # node from each rank (~500 MB each, and an error on GPUs in exclusive-process mode)
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_initialized():
        torch.cuda.set_rng_state(state["cuda"])


def save(path: str, state: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, fsync=True) as f:
        torch.save(state, f)


def load(path: str, map_location="cpu") -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no checkpoint at {path}.\n---> HINT: checkpoints are written to "
            "--out as ckpt_<step>.pt every --ckpt-every steps and at the end."
        )
    # weights_only: our checkpoints hold only tensors, numbers, strings and containers
    return torch.load(path, map_location=map_location, weights_only=True)


def latest(out_dir: str) -> str | None:
    paths = sorted(glob.glob(os.path.join(out_dir, "ckpt_*.pt")))
    return paths[-1] if paths else None


def prune(out_dir: str, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (a 124M checkpoint with AdamW state is ~1.5 GB)."""
    for p in sorted(glob.glob(os.path.join(out_dir, "ckpt_*.pt")))[: -keep or None]:
        os.remove(p)
