"""Where a pipeline runs: local processes, a Slurm array job per stage, or Ray — one set of flags for all.

    add_executor_args(parser)            # --executor local|slurm|ray, --tasks, --workers, --partition, ...
    opts = executor_options_from_args(args)
    a = make_executor(opts, steps_a, name="A_filter", tasks=n, logging_dir="out/logs/A_filter")
    b = make_executor(opts, steps_b, name="B_dedup", tasks=m, logging_dir="out/logs/B_dedup", depends=a)
    run_and_wait(opts, b)                # runs/submits the chain; with --wait also waits for Slurm

Every stage keeps datatrove's `completions/` markers in its logging_dir, so a rerun with the same output runs
(or submits) only the unfinished tasks. Slurm notes (../shared/notes/slurm.md): jobs activate the venv this
process runs in (or --env-command), each stage's jobs carry `--kill-on-invalid-dep=yes` so a stage whose
dependency failed is cancelled instead of pending forever, and everything in a pipeline must be
dill-picklable (datatrove pickles the executor to `executor.pik`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass

KINDS = ("local", "slurm", "ray")


@dataclass(frozen=True)
class ExecutorOptions:
    kind: str = "local"
    tasks: int | None = None  # None: the pipeline decides (one task per WARC file)
    workers: int = -1  # local: -1 = one per CPU; slurm/ray: -1 = no limit on tasks running at once
    partition: str | None = None
    time: str = "10:00:00"  # FineWeb-2's first pass used 10 h per task (peers.md §2.1)
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0  # datatrove's default; FineWeb-2 ran with 2 GB/CPU
    slurm_logs: str | None = None
    qos: str | None = None
    venv: str | None = None
    env_command: str | None = None
    job_prefix: str = "fineweb"
    max_array_size: int = 1001  # Slurm's default MaxArraySize is 1001
    sbatch_args: tuple[str, ...] = ()  # extra "key=value" sbatch options
    randomize_start_s: int = 0
    wait: bool = False
    ray_address: str | None = None


def add_executor_args(parser: argparse.ArgumentParser, tasks_default: str = "one per WARC file") -> None:
    g = parser.add_argument_group("execution (local processes, Slurm array jobs or Ray)")
    g.add_argument("--executor", choices=KINDS, default="local", help="where tasks run (default local)")
    g.add_argument("--tasks", type=int, help=f"tasks of the per-file stages (default: {tasks_default})")
    g.add_argument("--workers", type=int, default=-1,
                   help="tasks running at once (local default: CPU count; slurm/ray default: no limit)")
    g.add_argument("--partition", help="Slurm partition (`sinfo -s` lists them); required with --executor slurm")
    g.add_argument("--time", default="10:00:00", help="Slurm/Ray time limit per task, HH:MM:SS")
    g.add_argument("--cpus-per-task", type=int, default=1, help="CPUs per Slurm/Ray task")
    g.add_argument("--mem-per-cpu", type=float, default=2.0, help="memory per CPU in GB (Slurm/Ray)")
    g.add_argument("--slurm-logs", help="local directory for Slurm's stdout/stderr files "
                   "(default LOGGING_DIR/slurm_logs of each stage)")
    g.add_argument("--qos", help="Slurm QOS (default: none, the cluster's default)")
    g.add_argument("--venv", help="virtualenv that Slurm jobs activate (default: the one running this)")
    g.add_argument("--env-command", help="shell line run first in every Slurm job instead of --venv "
                   "(e.g. 'module load python; source ~/env/bin/activate')")
    g.add_argument("--job-prefix", default="fineweb", help="Slurm job names are PREFIX_STAGE")
    g.add_argument("--max-array-size", type=int, default=1001,
                   help="largest Slurm array (`scontrol show config | grep MaxArraySize`)")
    g.add_argument("--sbatch-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra sbatch option, repeatable (e.g. account=myproj)")
    g.add_argument("--randomize-start", type=int, default=0,
                   help="each task first sleeps up to this many seconds (spreads the first downloads)")
    g.add_argument("--wait", action="store_true", help="with --executor slurm: wait for the jobs and check them")
    g.add_argument("--ray-address", help="Ray cluster address for --executor ray (default: start a local one)")


def executor_options_from_args(args: argparse.Namespace) -> ExecutorOptions:
    opts = ExecutorOptions(
        kind=args.executor, tasks=args.tasks, workers=args.workers, partition=args.partition, time=args.time,
        cpus_per_task=args.cpus_per_task, mem_per_cpu_gb=args.mem_per_cpu, slurm_logs=args.slurm_logs,
        qos=args.qos, venv=args.venv, env_command=args.env_command, job_prefix=args.job_prefix,
        max_array_size=args.max_array_size, sbatch_args=tuple(args.sbatch_arg),
        randomize_start_s=args.randomize_start, wait=args.wait, ray_address=args.ray_address)
    check_options(opts)
    return opts


def check_options(opts: ExecutorOptions) -> None:
    if opts.kind not in KINDS:
        raise ValueError(f"executor {opts.kind!r}: use one of {', '.join(KINDS)}")
    if opts.tasks is not None and opts.tasks < 1:
        raise ValueError("--tasks must be at least 1")
    if opts.kind == "slurm" and not opts.partition:
        raise ValueError("--executor slurm needs --partition (run `sinfo -s` to list the partitions)")
    if any("=" not in a for a in opts.sbatch_args):
        raise ValueError("--sbatch-arg takes KEY=VALUE, e.g. --sbatch-arg account=myproj")


def make_executor(opts: ExecutorOptions, pipeline: list, *, name: str, tasks: int, logging_dir: str,
                  depends=None):
    """A datatrove PipelineExecutor of kind opts.kind for one stage; `depends` is the stage before it."""
    check_options(opts)
    if opts.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        workers = opts.workers if opts.workers > 0 else min(tasks, os.cpu_count() or 1)
        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers, tasks), logging_dir=logging_dir,
                                     depends=depends, randomize_start_duration=opts.randomize_start_s)
    if opts.kind == "slurm":
        return _slurm_executor(opts, pipeline, name, tasks, logging_dir, depends)
    return _ray_executor(opts, pipeline, tasks, logging_dir, depends)


def _slurm_executor(opts, pipeline, name, tasks, logging_dir, depends):
    from datatrove.executor import SlurmPipelineExecutor

    sbatch = dict(a.split("=", 1) for a in opts.sbatch_args)
    sbatch.setdefault("kill-on-invalid-dep", "yes")  # slurm.md pitfall 1: no job pending forever
    mem = opts.mem_per_cpu_gb
    if mem != int(mem):  # datatrove writes f"{mem}G"; Slurm wants an integer, so give MiB
        sbatch["mem-per-cpu"] = f"{int(mem * 1024)}M"
    venv = opts.venv or (sys.prefix if sys.prefix != sys.base_prefix else None)
    return SlurmPipelineExecutor(
        pipeline, tasks=tasks, time=opts.time, partition=opts.partition, cpus_per_task=opts.cpus_per_task,
        mem_per_cpu_gb=max(1, int(mem)), workers=opts.workers, job_name=f"{opts.job_prefix}_{name}",
        qos=opts.qos, env_command=opts.env_command,
        venv_path=os.path.join(venv, "bin", "activate") if venv and not opts.env_command else None,
        sbatch_args=sbatch, max_array_size=opts.max_array_size, depends=depends, logging_dir=logging_dir,
        slurm_logs_folder=os.path.join(opts.slurm_logs, name) if opts.slurm_logs else None,
        randomize_start_duration=opts.randomize_start_s, mail_type="NONE")


def _ray_executor(opts, pipeline, tasks, logging_dir, depends):
    try:
        import ray
        from datatrove.executor.ray import RayPipelineExecutor
    except ImportError as e:
        raise ImportError("--executor ray needs Ray: pip install 'fineweb-corpus[ray]'") from e
    if not ray.is_initialized():
        ray.init(address=opts.ray_address)
    h, m, s = (int(x) for x in opts.time.split(":"))
    return RayPipelineExecutor(pipeline, tasks=tasks, workers=opts.workers, depends=depends,
                               logging_dir=logging_dir, cpus_per_task=opts.cpus_per_task,
                               mem_per_cpu_gb=opts.mem_per_cpu_gb, time=h * 3600 + m * 60 + s,
                               randomize_start_duration=opts.randomize_start_s)


def chain(executor) -> list:
    """The executor and everything it depends on, first stage first."""
    out = []
    while executor is not None:
        out.append(executor)
        executor = getattr(executor, "depends", None)
    return out[::-1]


def blocks(opts: ExecutorOptions) -> bool:
    """Whether run_and_wait returns only after every task has finished: local and Ray runs do, Slurm runs only
    with --wait (otherwise it returns once the array jobs are submitted)."""
    return opts.kind != "slurm" or opts.wait


def run_and_wait(opts: ExecutorOptions, executor, timeout_s: float | None = None, poll_s: float = 2.0):
    """Run the chain ending in `executor`; for Slurm with opts.wait, block until its jobs leave the queue.
    Slurm with --wait and Ray raise if a task of any stage did not complete (datatrove's Ray executor only
    logs a task that failed after its retries)."""
    stages = chain(executor)
    if opts.kind == "ray":
        # one stage at a time: datatrove's Ray executor would wait for a dependency with a failed task forever,
        # polling every 2 minutes, instead of failing
        for ex in stages:
            ex.run()
            check_complete([ex])
        return None
    result = executor.run()
    if opts.kind == "slurm" and opts.wait:
        wait_for_jobs([s.job_name for s in stages], timeout_s=timeout_s, poll_s=poll_s)
        check_complete(stages)
    return result


def wait_for_jobs(job_names: list[str], timeout_s: float | None = None, poll_s: float = 2.0) -> None:
    """Poll `squeue` until no job with these names is queued or running (no sacct: slurm.md pitfall 9)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        out = subprocess.run(["squeue", "-h", "-o", "%j", "-n", ",".join(job_names)], capture_output=True,
                             text=True, check=True).stdout.split()
        if not out:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Slurm jobs {sorted(set(out))} still queued after {timeout_s:.0f} s; "
                               f"cancel them with `scancel -n {','.join(job_names)}` or wait longer")
        time.sleep(poll_s)


def check_complete(stages: list) -> None:
    for ex in stages:
        missing = ex.get_incomplete_ranks(skip_completed=True)
        if missing:
            logs = ex.logging_dir.resolve_paths("logs")
            name = getattr(ex, "job_name", None) or os.path.basename(ex.logging_dir.path.rstrip("/"))
            raise RuntimeError(f"{name}: {len(missing)} of {ex.world_size} tasks did "
                               f"not complete (ranks {missing[:10]}...); read {logs}/task_<rank>.log, fix the "
                               "cause, then rerun the same command: only those tasks run again")


def run_array_rank(pipeline: list, *, rank: int, world: int, logging_dir: str) -> bool:
    """Run one rank of a `world`-task stage in this process (a task of a user-written sbatch array).

    The result is what an executor with tasks=world writes for that rank (same files, same completions/
    marker), so array tasks, reruns and executor runs mix freely. Returns False if it was already done.
    """
    from datatrove.executor import LocalPipelineExecutor

    if not 0 <= rank < world:
        raise ValueError(f"--rank {rank} is outside 0..{world - 1} (--world {world})")
    ex = LocalPipelineExecutor(pipeline, tasks=world, workers=1, logging_dir=logging_dir)
    if ex.is_rank_completed(rank):
        return False
    ex._run_for_rank(rank)  # what LocalPipelineExecutor.run does per rank, without its shared stats.json
    return True


def incomplete_ranks(logging_dir: str, tasks: int) -> list[int]:
    """Ranks of a stage without a completions/ marker (what a rerun would run)."""
    done = set(os.listdir(os.path.join(logging_dir, "completions"))) if os.path.isdir(
        os.path.join(logging_dir, "completions")) else set()
    return [r for r in range(tasks) if f"{r:05d}" not in done]


def run_recipe(opts: ExecutorOptions, stages: list[tuple[str, list, int]], logs_root: str, *,
               stage: str = "all", rank: int | None = None, world: int | None = None):
    """Run a recipe given as (name, steps, tasks) stages, chained in order (what fineweb.py runs).

    stage="filter" with rank/world: only the first stage's task `rank` of `world`, in this process (one task
    of fineweb_array.sbatch; the first stage must have tasks == world). stage="finish": every stage after the
    first, once all first-stage tasks are complete (raises with the sbatch line that reruns the missing ones).
    stage="all": the whole chain. Returns what the last executor's run() returns.
    """
    first, first_logs = stages[0], os.path.join(logs_root, stages[0][0])
    if stage == "filter":
        if rank is None or world is None or world != first[2]:
            raise ValueError(f"--stage filter needs --rank and --world, with --world = the {first[0]} task count "
                             f"({first[2]}; pass --tasks {world} too if the count comes from --tasks)")
        return run_array_rank(first[1], rank=rank, world=world, logging_dir=first_logs)
    if stage == "finish" and (missing := incomplete_ranks(first_logs, first[2])):
        raise RuntimeError(f"{len(missing)} of {first[2]} {first[0]} tasks are not complete; rerun them first: "
                           f"sbatch --array={','.join(map(str, missing[:50]))}{',...' if len(missing) > 50 else ''} "
                           f"pipelines/fineweb_array.sbatch {first[2]} ... (logs: {first_logs}/logs/)")
    if stage not in ("all", "finish"):
        raise ValueError(f"--stage {stage!r}: use all, filter (with --rank/--world) or finish")
    previous = None
    for name, steps, tasks in stages:
        previous = make_executor(opts, steps, name=name, tasks=tasks, logging_dir=os.path.join(logs_root, name),
                                 depends=previous)
    return run_and_wait(opts, previous)
