"""Stage 10 on a GPU in one command: the checks the CPU tests cannot make, then the throughput figures.

    python3 -m benchmarks.gpu_check --report out/gpu_check.json     # one H100/H200: about 5 minutes
    python -m benchmarks.gpu_check --device cpu                      # dry run of this script on a CPU

Needs only torch and numpy (no project install), so it runs on a bare GPU image from the repository root.

1. environment: torch, CUDA, the device, how many, the dense bf16 peak that MFU divides by;
2. the trainer end to end with every GPU path on: bf16 autocast, flash SDPA, fused AdamW, TF32, pinned
   copies and torch.compile. A small GPT on a repeated 37-token phrase must get below ln(37) = 3.61, as in
   tests/test_train_pretrain.py, and report a finite val loss and an MFU figure;
3. resume: from the step-10 checkpoint, steps 11..20 give the uninterrupted run's losses (rel 1e-3: flash
   backward and compile autotuning need not be bit-exact; the report says whether they were);
4. DDP over NCCL (2+ GPUs; the CPU dry run uses gloo): 2 processes x accumulation 1 give 1 process x
   accumulation 2's losses, with and without --zero (ZeRO-1);
5. sampling on the GPU: the same seed gives the same tokens;
6. throughput: benchmarks.bench_train (GPT-2 124M, T=1024, baseline vs ours; sampling with and without the KV
   cache), then the real trainer through torchrun for 1..N GPUs at 524,288 tokens/step.

Each check prints PASS or FAIL and goes on; the exit status is 1 if any failed. --report writes them as JSON.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from benchmarks import bench_train
from corpus.token_shards import write_shard
from corpus.train import device
from pipelines.pretrain import main as pretrain
from pipelines.sample import load_model

REPO = Path(__file__).resolve().parents[1]
# the model of the CPU tests too (tests/test_train_pretrain.py): the tiny preset with 2 layers, T=32, B=4 and a
# 500-token vocabulary (padded to 512) instead of GPT-2's 50,257, whose 50304 x 64 lm_head would dominate a CPU step
SMALL = ["--preset", "tiny", "--vocab-size", "500", "--n-layer", "2", "--seq-len", "32", "--batch-size", "4"]


def repeated_phrase_shards(d: Path) -> str:
    phrase = np.random.default_rng(0).integers(0, 500, 37)
    stream = np.tile(phrase, 200).astype("<u2")  # 7,400 tokens
    write_shard(d / "demo_val_000000.bin", stream[:1000])
    write_shard(d / "demo_train_000001.bin", stream[1000:4000])
    write_shard(d / "demo_train_000002.bin", stream[4000:])
    return str(d)


def records(out: str, key: str) -> list[float]:
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [r[key] for r in map(json.loads, f) if key in r]


def check_environment(args, _tmp) -> dict:
    dev = torch.device(args.device)
    info = {"torch": torch.__version__, "device": device.device_name(dev), "peak_flops": device.peak_flops(dev)}
    if dev.type == "cuda":
        flash = torch.backends.cuda.flash_sdp_enabled()
        info |= {"cuda": torch.version.cuda, "gpus": torch.cuda.device_count(), "flash_sdp": flash}
    return info


def gpu_path_flags(args) -> list[str]:
    """The 25-step run of checks 2 and 3, with the GPU's defaults: bf16 autocast and torch.compile."""
    run = ["--data", args.data, "--device", args.device, "--dtype", "bfloat16", "--warmup-steps", "5"]
    return [*run, *(["--compile"] if args.compile else []), *SMALL, "--steps", "25", "--eval-every", "25"]


def check_train(args, tmp) -> dict:
    out = str(tmp / "train")
    pretrain([*gpu_path_flags(args), "--out", out, "--ckpt-every", "10", "--keep-last", "5"])
    loss, val = records(out, "loss"), records(out, "val_loss")
    log = Path(out, "log.txt").read_text()
    mfu_shown = "mfu n/a" not in log if args.device == "cuda" else True
    if not (loss[-1] < math.log(37) and math.isfinite(val[-1]) and mfu_shown):
        raise AssertionError(f"loss {loss[0]:.3f} -> {loss[-1]:.3f}, val {val[-1]}, MFU in the log: {mfu_shown}")
    return {"first_loss": loss[0], "last_loss": loss[-1], "val_loss": val[-1]}


def check_resume(args, tmp) -> dict:
    ref_out, out = str(tmp / "train"), str(tmp / "resumed")
    os.makedirs(out)
    shutil.copy(os.path.join(ref_out, "ckpt_0000010.pt"), out)
    pretrain([*gpu_path_flags(args), "--out", out, "--resume", "auto"])
    ref, got = records(ref_out, "loss")[10:20], records(out, "loss")[:10]
    worst = max(abs(a - b) / abs(a) for a, b in zip(ref, got))
    if worst > 1e-3:
        raise AssertionError(f"resumed losses {got} differ from {ref} (worst rel {worst:.2e})")
    return {"exact": ref == got, "worst_rel_diff": worst}


def check_ddp(args, tmp) -> dict:
    if args.device == "cuda" and torch.cuda.device_count() < 2:
        return {"skipped": "needs 2+ GPUs"}  # the CPU dry run uses 2 gloo processes instead
    # fp32 (TF32) on both sides: the same weights give the same forward, so only the gradient reduction differs
    common = ["--data", args.data, "--device", args.device, "--dtype", "float32", "--steps", "6", *SMALL]
    common += ["--total-batch-tokens", "256"]  # 2 micro-batches of B*T = 128: accumulation 2, or 2 GPUs
    pretrain([*common, "--out", str(tmp / "ddp1")])
    ref, worst = records(str(tmp / "ddp1"), "loss"), {}
    for name, extra in (("ddp", []), ("zero1", ["--zero"])):
        out = str(tmp / name)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        cmd += ["-m", "pipelines.pretrain", *common, *extra, "--out", out]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
        if run.returncode:
            raise AssertionError(f"torchrun ({name}) failed:\n{run.stderr[-3000:]}")
        got = records(out, "loss")
        worst[name] = max(abs(a - b) / abs(a) for a, b in zip(ref, got))
        if worst[name] > 1e-3:
            raise AssertionError(f"2-process {name} losses {got} differ from accumulation's {ref}")
    return {"worst_rel_diff": worst}


def check_sample(args, tmp) -> dict:
    model = load_model(str(tmp / "train"), args.device)
    prompt = torch.tensor([[1, 2, 3]], device=args.device)  # ids of the 500-token test vocabulary

    def draw(seed: int) -> list[int]:
        gen = torch.Generator(device=args.device).manual_seed(seed)
        return model.generate(prompt, 32, temperature=0.8, top_k=40, generator=gen)[0, 3:].tolist()

    a, b = draw(7), draw(7)
    if a != b or max(a) >= 500:
        raise AssertionError(f"seeded samples differ or leave the vocabulary: {a} vs {b}")
    return {"tokens": a}


def check_throughput(args, _tmp) -> dict:
    dev = torch.device(args.device)
    dry_run = ["--steps", "3", "--scaling-steps", "6", "--skip", "2"]
    opts = ["--steps", str(args.steps)] if dev.type == "cuda" else dry_run
    bench = bench_train.parse_args(opts + ([] if args.compile else ["--no-compile"]))
    gpus = torch.cuda.device_count() if dev.type == "cuda" else 1
    single, sampling = bench_train.single(bench, dev), bench_train.sampling(bench, dev)
    scaling = bench_train.scaling(bench, dev, list(range(1, gpus + 1)))
    return {"single": single, "sampling": sampling, "scaling": scaling}


CHECKS = {
    "environment": check_environment,
    "train": check_train,
    "resume": check_resume,
    "ddp": check_ddp,
    "sample": check_sample,
    "throughput": check_throughput,
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cuda, or cpu for a dry run")
    p.add_argument(
        "--only", default=None, help=f"comma list of checks, from: {', '.join(CHECKS)} (resume, sample need train)"
    )
    p.add_argument("--steps", type=int, default=10, help="timed steps of each throughput run")
    p.add_argument("--report", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch sees no GPU.\n---> HINT: run this on a GPU machine, or pass --device cpu.")
    args.compile = args.device == "cuda"  # inductor on a CPU takes minutes: the dry run leaves it out
    names = args.only.split(",") if args.only else list(CHECKS)
    results, failed = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        args.data = repeated_phrase_shards(Path(tmp))
        for name in names:
            t0 = time.perf_counter()
            try:
                results[name] = {"status": "PASS", **CHECKS[name](args, Path(tmp))}
            except Exception as e:  # a failed check is reported and the next one still runs
                results[name] = {"status": "FAIL", "error": f"{type(e).__name__}: {e}"}
                traceback.print_exc()
                failed.append(name)
            results[name]["seconds"] = round(time.perf_counter() - t0, 1)
            shown = {k: v for k, v in results[name].items() if k not in ("single", "sampling", "scaling", "tokens")}
            print(f"[gpu_check] {name}: {json.dumps(shown, default=str)}", flush=True)
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        Path(args.report).write_text(json.dumps(results, indent=1, default=str))
    print(f"[gpu_check] {'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
