"""Stage 10 end to end on CPU (pipelines/pretrain.py): two-process gloo DDP (torchrun) gives the same losses
as one process with the matching gradient accumulation; resuming from a mid-run checkpoint reproduces the
uninterrupted losses bit for bit; the loss falls on repetitive text, in fp32 and under bf16 autocast; --zero
(ZeRO-1) gives the same losses and whole checkpoints; the log has the config and git commit; the prepared GPU
check script (benchmarks/gpu_check.py) passes its CPU dry run."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import SMALL, repeated_phrase_shards
from pipelines.pretrain import main

pytestmark = pytest.mark.slow  # two trainer runs in-process + one torchrun of 2 processes: ~30 s of CPU
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Repetitive 'text': a 37-token phrase repeated, split over two train shards and a val shard (the same data
    as the GPU check script's)."""
    return repeated_phrase_shards(tmp_path_factory.mktemp("shards"))


def losses(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [r["loss"] for r in map(json.loads, f) if "loss" in r]


def torchrun_2(args: list[str], out: str) -> None:
    """pipelines.pretrain in two gloo processes, through torchrun as a user runs it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "pipelines.pretrain", *args, "--out", out]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, check=False, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]


def test_ddp_equals_accumulation_and_resume_is_exact(data, tmp_path):
    common = ["--data", data, "--steps", "4", "--total-batch-tokens", "256", "--eval-every", "2", *SMALL]
    one = str(tmp_path / "one")
    main([*common, "--out", one, "--ckpt-every", "2", "--keep-last", "5"])  # 1 process, accumulation 2
    ref = losses(one)
    assert len(ref) == 4 and sorted(os.listdir(one))[:2] == ["ckpt_0000002.pt", "ckpt_0000004.pt"]
    log = Path(one, "log.txt").read_text()
    assert "git " in log and '"total_batch_tokens": 256' in log and "mfu n/a" in log

    two = str(tmp_path / "two")
    torchrun_2(common, two)
    assert "grad accum 1" in Path(two, "log.txt").read_text()
    assert losses(two) == pytest.approx(ref, rel=1e-5)

    resumed = str(tmp_path / "resumed")
    os.makedirs(resumed)
    shutil.copy(os.path.join(one, "ckpt_0000002.pt"), resumed)
    main([*common, "--out", resumed, "--resume", "auto"])
    assert losses(resumed) == ref[2:]  # exact: same floats, not approximately


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])  # bfloat16: the GPU's autocast path, run on a CPU
def test_loss_falls(data, tmp_path, dtype):
    out = str(tmp_path / "run")
    steps = ["--steps", "25", "--eval-every", "25", "--warmup-steps", "5", "--dtype", dtype]
    main(["--data", data, "--out", out, *steps, *SMALL])
    curve = losses(out)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        val = [r["val_loss"] for r in map(json.loads, f) if "val_loss" in r]
    assert curve[0] > 5.5  # ~ln(500) = 6.2 at init
    # below ln(37) = 3.61, the loss of knowing only which 37 tokens occur: it has learned the order
    assert curve[-1] < curve[0] - 3 and val[-1] < math.log(37)


def test_gpu_check_dry_run(tmp_path):
    """The one script a session with a GPU runs must not rot while no GPU is lent: its checks pass on a CPU."""
    from benchmarks import gpu_check

    report = tmp_path / "gpu_check.json"
    only = "environment,train,resume,ddp,sample"  # throughput is `make bench`'s bench_train
    assert gpu_check.main(["--device", "cpu", "--only", only, "--report", str(report)]) == 0
    results = json.loads(report.read_text())
    assert [r["status"] for r in results.values()] == ["PASS"] * 5
    assert results["train"]["last_loss"] < math.log(37) and results["resume"]["exact"]


def test_zero1_same_losses_and_whole_checkpoints(data, tmp_path):
    """--zero shards the AdamW state over 2 processes: the losses are those of 1 process x accumulation 2, and the
    checkpoint holds the whole optimizer state, so a single process resumes from it."""
    common = ["--data", data, "--steps", "4", "--total-batch-tokens", "256", "--eval-every", "100", *SMALL]
    one, zero, resumed = (str(tmp_path / n) for n in ("one", "zero", "resumed"))
    main([*common, "--out", one])
    torchrun_2([*common, "--zero", "--ckpt-every", "2", "--keep-last", "5"], zero)
    assert losses(zero) == pytest.approx(losses(one), rel=1e-5)
    os.makedirs(resumed)
    shutil.copy(os.path.join(zero, "ckpt_0000002.pt"), resumed)
    main([*common, "--out", resumed, "--resume", "auto"])  # one process, plain AdamW
    assert losses(resumed) == pytest.approx(losses(one)[2:], rel=1e-5)
