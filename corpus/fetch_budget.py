"""A request budget shared by every process on a node: requests per second and concurrent connections.

Common Crawl serves "a few thousand requests per second combined for everyone" and asks clients to slow
down on any 4xx/5xx (https://status.commoncrawl.org, 2024-2025). One Slurm node runs many array tasks, each
with its own fetcher, so a per-process limit multiplies by the task count. The budget therefore lives in
files under `state_dir` (node-local, default `/tmp/fineweb-fetch-budget`), guarded with `fcntl.flock`:

- rate: one small file holds the next free start time; each request reserves the next slot 1/rate seconds
  after the previous one (strict spacing, no burst), then sleeps outside the lock until its slot;
- connections: `max_connections` lock files; a connection holds one (flock, released when the fd closes,
  also when the process dies) for as long as its response body is being read.

Many nodes: give each node `global_budget / nodes` (docs/scale.md). The object holds only paths and numbers,
so it pickles (datatrove ships pipelines to Slurm jobs with dill).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


def default_state_dir() -> str:
    # /tmp, not $TMPDIR: some Slurm sites give every job its own TMPDIR, which would split the node's budget
    return "/tmp/fineweb-fetch-budget"


class ConnectionSlot:
    """One held connection slot; `release()` is idempotent."""

    def __init__(self, fd: int):
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the fd drops the flock
            self._fd = None


class RateBudget:
    """Requests/s and concurrent connections shared through files in `state_dir`."""

    def __init__(self, state_dir: str | None = None, requests_per_s: float = 1.0, max_connections: int = 16):
        if requests_per_s <= 0 or max_connections < 1:
            raise ValueError("RateBudget needs requests_per_s > 0 and max_connections >= 1")
        self.state_dir = str(state_dir or default_state_dir())
        self.requests_per_s = requests_per_s
        self.max_connections = max_connections

    def _path(self, name: str) -> str:
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        return os.path.join(self.state_dir, name)

    def wait_turn(self) -> float:
        """Block until this process may start one request; return the seconds waited."""
        fd = os.open(self._path("rate"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0)
            now = time.time()  # wall clock: the same for every process on the node
            slot = max(now, float(raw or 0.0))
            data = repr(slot + 1.0 / self.requests_per_s).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)  # also releases the lock
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(wait, 0.0)

    def acquire_connection(self, poll_s: float = 0.05) -> ConnectionSlot:
        """Block until one of the `max_connections` slots is free and hold it."""
        while True:
            for i in range(self.max_connections):
                fd = os.open(self._path(f"conn-{i:04d}"), os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return ConnectionSlot(fd)
                except BlockingIOError:
                    os.close(fd)
            time.sleep(poll_s)
