"""Start and stop a real one-node Slurm cluster on localhost (munge + slurmctld + slurmd), for tests and CI.

Recipe and pitfalls: ../shared/notes/slurm.md (Debian 12's Slurm 22.05, root, no systemd, no accounting).
The config lives in a directory of its own (default /tmp/slurm-local) and every client finds it through
`SLURM_CONF`; nothing under /etc/slurm is written, so systemd units (if any) stay off.

    python tests/slurm_cluster.py up      # start (or reuse) the cluster; prints `export SLURM_CONF=...`
    python tests/slurm_cluster.py down    # scancel everything, SIGTERM the three daemons
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("SLURM_LOCAL_DIR", "/tmp/slurm-local"))
PARTITION = "debug"
DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
MUNGE_PID = Path("/run/munge/munged.pid")


def missing_requirements() -> str | None:
    """Why a cluster cannot be started here (None if it can)."""
    missing = [d for d in DAEMONS if not os.access(d, os.X_OK)]
    missing += [c for c in ("sbatch", "squeue", "sinfo", "scontrol", "srun") if not shutil.which(c)]
    if missing:
        return (f"Slurm is not installed ({', '.join(missing)} missing): run "
                "`apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge`")
    if os.geteuid() != 0:
        return "starting a local Slurm cluster needs root (munged runs as munge, the daemons as root)"
    return None


def slurm_conf_text(d: Path) -> str:
    """slurm.conf from slurm.md: CPUs = nproc, RealMemory = 80 % of MemAvailable (pitfall 3, 10)."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = next(int(ln.split()[1]) for ln in meminfo if ln.startswith("MemAvailable:"))
    real_mem = int(mem_kib / 1024 * 0.8)
    port = int(os.environ.get("SLURM_LOCAL_PORT", "6817"))  # pitfall 14: one cluster per port pair
    return f"""ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort={port}
SlurmdPort={port + 1}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
DependencyParameters=kill_invalid_depend
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={real_mem} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def client_env(d: Path = DEFAULT_DIR) -> dict:
    """The environment for sbatch/squeue/srun: SLURM_CONF set, no SLURM_* of an enclosing job (datatrove
    would otherwise run a rank instead of submitting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = str(d / "slurm.conf")
    return env


def node_state(d: Path = DEFAULT_DIR) -> str:
    out = subprocess.run(["sinfo", "-h", "-n", "localhost", "-o", "%t"], check=False, env=client_env(d),
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def is_up(d: Path = DEFAULT_DIR) -> bool:
    if not (d / "slurm.conf").exists() or not _pid_alive(d / "slurmctld.pid"):
        return False
    try:
        return node_state(d) in ("idle", "mix", "alloc")
    except subprocess.TimeoutExpired:
        return False


def _start_munge() -> None:
    if _pid_alive(MUNGE_PID):  # reuse a running munged (e.g. started by systemd)
        return
    subprocess.run(["install", "-d", "-o", "munge", "-g", "munge", "-m", "0755", "/run/munge"], check=True)
    key = Path("/etc/munge/munge.key")
    if not key.exists() or key.stat().st_size == 0:
        subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create", f"--keyfile={key}"], check=True)
    subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)


def start(d: Path = DEFAULT_DIR, timeout_s: float = 30.0) -> dict:
    """Start munged, slurmctld and slurmd (or reuse a running cluster); return the client environment."""
    if why := missing_requirements():
        raise RuntimeError(why)
    if is_up(d):
        return client_env(d)
    for sub in ("state", "spool", "log"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "slurm.conf").write_text(slurm_conf_text(d))
    _start_munge()
    conf = str(d / "slurm.conf")
    # Both daemons fork and return rc 0 even when they die right after (pitfall 4): poll for readiness.
    subprocess.run(["/usr/sbin/slurmctld", "-f", conf], check=True, env=client_env(d))
    subprocess.run(["/usr/sbin/slurmd", "-f", conf, "-N", "localhost"], check=True, env=client_env(d))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_up(d):
            return client_env(d)
        time.sleep(0.25)
    logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((d / "log").glob("*.log")))
    raise RuntimeError(f"local Slurm node not idle after {timeout_s:.0f} s; daemon logs:\n{logs}")


def stop(d: Path = DEFAULT_DIR, stop_munge: bool = True) -> None:
    """scancel first (no slurmstepd left behind), then SIGTERM all daemons at once and wait (pitfall 13)."""
    if (d / "slurm.conf").exists() and _pid_alive(d / "slurmctld.pid"):
        subprocess.run(["scancel", "-p", PARTITION], check=False, env=client_env(d), capture_output=True,
                       timeout=10)
    pidfiles = [d / "slurmd.pid", d / "slurmctld.pid"] + ([MUNGE_PID] if stop_munge else [])
    pids = [pid for pf in pidfiles if (pid := _pid_alive(pf))]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:  # a zombie (no reaping init, pitfall 12) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "up"
    if cmd == "up":
        start()
        print(f"export SLURM_CONF={DEFAULT_DIR / 'slurm.conf'}")
    elif cmd == "down":
        stop()
    elif cmd == "status":
        print("up" if is_up() else "down")
    else:
        sys.exit(f"usage: {sys.argv[0]} up|down|status")
