"""Ray execution on a real local Ray cluster (ray.init on this machine, 2 CPUs).

Checks: the sample FineWeb pipeline run with `--executor ray` writes the same Parquet rows as the local run; a
two-stage chain whose task fails raises with the stage and the rank instead of waiting for it forever (what
datatrove's Ray executor does with a failed dependency), does not start the next stage, and a rerun of the same
command runs only the failed task, then the next stage.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is in `make install` (the [ray] extra); pip install 'fineweb-corpus[ray]'")

from pipelines import executors  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,  # a Ray cluster starts in ~10 s on 2 cores
    pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning"),  # datatrove 0.10.1 calls Ray so
]


def parquet_rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = [r for f in glob.glob(f"{out}/data/**/*.parquet", recursive=True) for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["id"])


def test_fineweb_on_ray_equals_local(tmp_path):
    env = {**os.environ, "RAY_DASHBOARD_ENABLED": "0"}
    for kind in ("local", "ray"):
        run = subprocess.run([sys.executable, "-m", "pipelines.fineweb", "--executor", kind, "--tasks", "2",
                              "--output", str(tmp_path / kind)], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=600, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Parquet:" in run.stdout  # a Ray run blocks, so the funnel is printed as after a local run
    local = parquet_rows(tmp_path / "local")
    assert len(local) > 10 and parquet_rows(tmp_path / "ray") == local


def make_docs(data, rank: int = 0, world_size: int = 1):
    from datatrove.data import Document

    for i in range(3):
        yield Document(text=f"doc {rank}-{i} " * 5, id=f"{rank}-{i}")


def fail_if_flagged(data, rank: int = 0, world_size: int = 1):
    """Fails rank 1 while the flag file (path in $FAIL_FLAG) exists."""
    if rank == 1 and os.path.exists(os.environ["FAIL_FLAG"]):
        raise RuntimeError("rank 1 fails on purpose")
    yield from data


@pytest.fixture
def local_ray(tmp_path, monkeypatch):
    """A Ray cluster whose workers import this module (its functions are pickled by reference)."""
    monkeypatch.setenv("FAIL_FLAG", str(tmp_path / "fail-rank-1"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(Path(__file__).parent)]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_failed_task_raises_and_rerun_runs_only_it(local_ray, tmp_path):
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    opts = executors.ExecutorOptions(kind="ray", mem_per_cpu_gb=0.5, time="00:05:00")

    def chain():
        a = executors.make_executor(opts, [make_docs, fail_if_flagged, JsonlWriter(str(tmp_path / "a"))],
                                    name="A", tasks=2, logging_dir=str(tmp_path / "logs" / "A"))
        return executors.make_executor(opts, [JsonlReader(str(tmp_path / "a")), JsonlWriter(str(tmp_path / "b"))],
                                       name="B", tasks=1, logging_dir=str(tmp_path / "logs" / "B"), depends=a)

    flag = Path(os.environ["FAIL_FLAG"])
    flag.touch()
    with pytest.raises(RuntimeError, match=r"A: 1 of 2 tasks did not complete \(ranks \[1\]"):
        executors.run_and_wait(opts, chain())
    assert executors.incomplete_ranks(str(tmp_path / "logs" / "B"), 1) == [0]  # never started
    assert not (tmp_path / "logs" / "B" / "executor.json").exists()
    flag.unlink()
    executors.run_and_wait(opts, chain())
    import gzip
    import json

    ids = sorted(json.loads(line)["id"] for f in (tmp_path / "b").glob("*.jsonl.gz") for line in gzip.open(f, "rt"))
    assert ids == sorted(f"{r}-{i}" for r in range(2) for i in range(3))
    assert executors.incomplete_ranks(str(tmp_path / "logs" / "A"), 2) == []
