"""Slurm execution on a real one-node Slurm cluster on localhost (tests/slurm_cluster.py, slurm.md).

Checks: a small two-stage datatrove pipeline built by `make_executor(kind="slurm")` runs as chained array
jobs; a task made to fail cancels the dependent stage, is resubmitted alone by a rerun and completes; and the
sample FineWeb pipeline run with `--executor slurm` writes the same Parquet rows as the local run.
Also, without a cluster: the executor flags, and `run_array_rank` (the sbatch template's building block).
Skipped, with the reason, where Slurm is not installed or we are not root.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import slurm_cluster

from pipelines import executors

REPO = Path(__file__).resolve().parents[1]
JOB_TIMEOUT_S = 120


@pytest.fixture(scope="module")  # module, not session: the environment is restored for the other test files
def slurm():
    """A running local cluster: reused if `.ci/slurm_up.sh` started one, else started and stopped here."""
    if why := slurm_cluster.missing_requirements():
        pytest.skip(why)
    was_up = slurm_cluster.is_up()
    env = slurm_cluster.start()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # SLURM_CONF for sbatch/squeue, no SLURM_* of an enclosing job
    # jobs unpickle this module's functions by reference: they must import it (slurm.md, "Pickling")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(Path(__file__).parent),
                                                os.environ.get("PYTHONPATH", "")])
    yield env
    os.environ.clear()
    os.environ.update(saved)
    if not was_up:
        slurm_cluster.stop()


def slurm_opts(tmp_path, **kw) -> executors.ExecutorOptions:
    return executors.ExecutorOptions(kind="slurm", partition=slurm_cluster.PARTITION, time="00:05:00",
                                     mem_per_cpu_gb=0.5, slurm_logs=str(tmp_path / "slurm_logs"), wait=True,
                                     job_prefix=f"t{os.getpid()}_{tmp_path.name[-12:]}", **kw)


def make_docs(data, rank: int = 0, world_size: int = 1):
    """Stage 1: each rank writes its own documents (no input files needed)."""
    from datatrove.data import Document

    for i in range(3):
        yield Document(text=f"doc {rank}-{i} " * 5, id=f"{rank}-{i}", metadata={"source_rank": rank})


def fail_if_flagged(data, rank: int = 0, world_size: int = 1):
    """Fails rank 1 while the flag file (path in $FAIL_FLAG) exists: a task made to fail."""
    flag = os.environ.get("FAIL_FLAG")
    if rank == 1 and flag and os.path.exists(flag):
        raise RuntimeError("rank 1 fails on purpose")
    yield from data


def two_stages(opts, tmp_path):
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    a = executors.make_executor(opts, [make_docs, fail_if_flagged, JsonlWriter(str(tmp_path / "a"))],
                                name="A", tasks=2, logging_dir=str(tmp_path / "logs" / "A"))
    b = executors.make_executor(opts, [JsonlReader(str(tmp_path / "a")), JsonlWriter(str(tmp_path / "b"))],
                                name="B", tasks=1, logging_dir=str(tmp_path / "logs" / "B"), depends=a)
    return b


def read_ids(folder: Path) -> list[str]:
    import gzip

    return sorted(json.loads(line)["id"] for f in folder.glob("*.jsonl.gz") for line in gzip.open(f, "rt"))


@pytest.mark.slurm
def test_array_chain_failed_task_is_resubmitted_alone(slurm, tmp_path, monkeypatch):
    """Two chained array stages; rank 1 of A fails, B is cancelled (not left pending); the rerun submits
    only rank 1, then B and the merge_stats jobs run."""
    flag = tmp_path / "fail-rank-1"
    flag.touch()
    monkeypatch.setenv("FAIL_FLAG", str(flag))  # exported to the jobs by sbatch --export=ALL
    opts = slurm_opts(tmp_path)
    with pytest.raises(RuntimeError, match="1 of 2 tasks did not complete"):
        executors.run_and_wait(opts, two_stages(opts, tmp_path), timeout_s=JOB_TIMEOUT_S, poll_s=0.3)
    assert executors.incomplete_ranks(str(tmp_path / "logs" / "A"), 2) == [1]
    assert executors.incomplete_ranks(str(tmp_path / "logs" / "B"), 1) == [0]  # cancelled, not pending
    flag.unlink()
    executors.run_and_wait(opts, two_stages(opts, tmp_path), timeout_s=JOB_TIMEOUT_S, poll_s=0.3)
    assert json.loads((tmp_path / "logs" / "A" / "ranks_to_run.json").read_text()) == [1]
    assert read_ids(tmp_path / "b") == sorted(f"{r}-{i}" for r in range(2) for i in range(3))
    assert executors.incomplete_ranks(str(tmp_path / "logs" / "B"), 1) == []
    assert (tmp_path / "logs" / "B" / "stats.json").exists()  # merge_stats ran after B's array
    assert "#SBATCH --kill-on-invalid-dep=yes" in (tmp_path / "logs" / "A" / "launch_script.slurm").read_text()


def test_run_array_rank_matches_executor(tmp_path):
    """Ranks run one by one (as sbatch array tasks would) write the files and markers an executor writes."""
    from datatrove.pipeline.writers import JsonlWriter

    steps = [make_docs, JsonlWriter(str(tmp_path / "out"))]
    assert executors.run_array_rank(steps, rank=1, world=2, logging_dir=str(tmp_path / "logs"))
    assert executors.incomplete_ranks(str(tmp_path / "logs"), 2) == [0]
    assert not executors.run_array_rank(steps, rank=1, world=2, logging_dir=str(tmp_path / "logs"))
    executors.run_array_rank(steps, rank=0, world=2, logging_dir=str(tmp_path / "logs"))
    assert read_ids(tmp_path / "out") == sorted(f"{r}-{i}" for r in range(2) for i in range(3))
    with pytest.raises(ValueError, match="outside"):
        executors.run_array_rank(steps, rank=2, world=2, logging_dir=str(tmp_path / "logs"))


def test_executor_flags():
    import argparse

    p = argparse.ArgumentParser()
    executors.add_executor_args(p)
    opts = executors.executor_options_from_args(p.parse_args(
        ["--executor", "slurm", "--partition", "cpu", "--mem-per-cpu", "1.5", "--sbatch-arg", "account=x"]))
    assert opts.kind == "slurm" and opts.mem_per_cpu_gb == 1.5 and opts.sbatch_args == ("account=x",)
    with pytest.raises(ValueError, match="--partition"):
        executors.executor_options_from_args(p.parse_args(["--executor", "slurm"]))
    ex = executors.make_executor(opts, [make_docs], name="A", tasks=2, logging_dir="/tmp/unused-logs")
    args = ex.get_sbatch_args(2)
    assert args["mem-per-cpu"] == "1536M" and args["account"] == "x" and args["job-name"] == "fineweb_A"


def test_run_recipe_filter_ranks_then_finish(tmp_path):
    """fineweb_array.sbatch's flow: stage A rank by rank (--stage filter), then --stage finish."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    stages = [("A", [make_docs, JsonlWriter(str(tmp_path / "a"))], 2),
              ("B", [JsonlReader(str(tmp_path / "a")), JsonlWriter(str(tmp_path / "b"))], 1)]
    opts, logs = executors.ExecutorOptions(workers=1), str(tmp_path / "logs")
    executors.run_recipe(opts, stages, logs, stage="filter", rank=1, world=2)
    with pytest.raises(RuntimeError, match=r"sbatch --array=0 "):
        executors.run_recipe(opts, stages, logs, stage="finish")
    with pytest.raises(ValueError, match="--world"):
        executors.run_recipe(opts, stages, logs, stage="filter", rank=0, world=3)
    executors.run_recipe(opts, stages, logs, stage="filter", rank=0, world=2)
    executors.run_recipe(opts, stages, logs, stage="finish")
    assert read_ids(tmp_path / "b") == sorted(f"{r}-{i}" for r in range(2) for i in range(3))


def _parquet_rows(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = [r for f in sorted(folder.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    for r in rows:
        r.pop("file_path", None)  # a local path on one side, a URL on the other
    return sorted(rows, key=lambda r: r["id"])


def _fineweb(*args: str, env: dict) -> None:
    import subprocess

    cmd = [sys.executable, "-m", "pipelines.fineweb", *args]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    if out.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


SMALL = ("--minhash-bands", "2")  # 3 bucket tasks instead of 15: the same code path, a third of the jobs
SAMPLES = sorted((REPO / "tests" / "data").glob("sample-0*.warc.gz"))


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory) -> list[dict]:
    """The reference: Parquet rows of the sample pipeline run locally (one run shared by the Slurm tests)."""
    out = tmp_path_factory.mktemp("local")
    _fineweb("--warcs", *map(str, SAMPLES), "--output", str(out), *SMALL, env=dict(os.environ))
    rows = _parquet_rows(out / "data")
    assert rows
    return rows


def _wait_prefix(prefix: str, timeout_s: float = 240) -> None:
    """Wait until no job whose name starts with `prefix` is queued; scancel them and fail on timeout."""
    import subprocess
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        names = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True, check=True).stdout
        if not any(n.startswith(prefix) for n in names.split()):
            return
        time.sleep(0.5)
    subprocess.run(["scancel", "-p", slurm_cluster.PARTITION], check=False)
    pytest.fail(f"Slurm jobs {prefix}* did not finish in {timeout_s:.0f} s")


@pytest.mark.slurm
@pytest.mark.slow
def test_sample_pipeline_on_slurm_over_faulty_http_equals_local(slurm, local_rows, tmp_path):
    """The sample WARCs, fetched over HTTP with faults by Slurm array tasks, give the local run's Parquet. File 1
    is refused (403) until its task fails; the same command again resubmits that task alone, and the run ends
    with the local run's rows."""
    from cc_server import CCServer, build_crawl

    rels = build_crawl(tmp_path / "cc", "CC-MAIN-2024-10", {p.name: p.read_bytes() for p in SAMPLES})
    faults = {rels[0]: ["503:0", "reset:20000"], rels[1]: ["403"] * 4 + ["xml200"]}
    prefix = f"fw{os.getpid()}"

    def run_on_slurm(urls: list[str]) -> None:
        _fineweb("--warcs", *urls, "--output", str(tmp_path / "slurm"), "--executor", "slurm", "--partition",
                 slurm_cluster.PARTITION, "--time", "00:10:00", "--mem-per-cpu", "1", "--job-prefix", prefix,
                 "--slurm-logs", str(tmp_path / "slurm_logs"), *SMALL, env=dict(os.environ))
        _wait_prefix(prefix)

    with CCServer(tmp_path / "cc", faults, lifetime_s=300) as srv:
        run_on_slurm([srv.url + r for r in rels])
        done = tmp_path / "slurm" / "logs" / "A_filter" / "completions"
        assert sorted(p.name for p in done.iterdir()) == ["00000"]  # rank 1 failed: HTTP 403 four times
        assert not (tmp_path / "slurm" / "data").exists()  # its dependants were cancelled, nothing looks done
        run_on_slurm([srv.url + r for r in rels])  # the same command again
    assert _parquet_rows(tmp_path / "slurm" / "data") == local_rows
    # file 0 (once: its task completed in the first run): 503, a 200 reset mid-body, a 206 for the rest (its
    # Content-Range total ends the file); file 1: four 403s, then in the rerun the XML error page, the whole file
    # in a 200, and the one Range probe that confirms its end (416)
    assert len(srv.requests_for(rels[0])) == 3 and len(srv.requests_for(rels[1])) == 4 + 3


@pytest.mark.slurm
@pytest.mark.slow
def test_sbatch_template_equals_local(slurm, local_rows, tmp_path):
    """pipelines/fineweb_array.sbatch: a 2-task array (--stage filter), then the finish job (afterok)."""
    import subprocess

    helptext = subprocess.run([sys.executable, "-m", "pipelines.fineweb", "--help"], cwd=REPO,
                              capture_output=True, text=True, check=False).stdout
    if "--stage" not in helptext:
        pytest.skip("pipelines.fineweb has no --stage/--rank/--world yet")
    out, logs, name = tmp_path / "out", tmp_path / "slurm_logs", f"tpl{os.getpid()}"
    logs.mkdir()
    args = ["pipelines/fineweb_array.sbatch", "2", str(out), "--warcs", *map(str, SAMPLES), *SMALL]
    common = ["sbatch", "--parsable", f"--job-name={name}", "--mem-per-cpu=1G", "--time=00:10:00"]
    jid = subprocess.run([*common, "--array=0-1", f"--output={logs}/%A_%a.out", *args], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([*common, f"--dependency=afterok:{jid}", "--kill-on-invalid-dep=yes",
                    "--export=ALL,STAGE=finish", f"--output={logs}/finish.out", *args], cwd=REPO,
                   capture_output=True, text=True, check=True)
    _wait_prefix(name)
    assert _parquet_rows(out / "data") == local_rows, (logs / "finish.out").read_text()[-3000:]
    funnel = json.loads((out / "stats.json").read_text())  # stage A ran as 2 array tasks: both are counted
    assert funnel["A_filter"][0]["counters"]["files"] == 2 and funnel["A_filter"][0]["in"] == 128


def test_ray_executor_needs_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"fineweb-corpus\[ray\]"):
        executors.make_executor(executors.ExecutorOptions(kind="ray"), [make_docs], name="A", tasks=1,
                                logging_dir="/tmp/unused-logs")
