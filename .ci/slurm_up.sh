#!/bin/bash
# Install (if missing) and start a one-node Slurm cluster on localhost for the test suite (tests/test_slurm.py).
# Needs root and Debian/Ubuntu; no systemd, no network besides the apt mirror. Recipe: ../shared/notes/slurm.md.
#   .ci/slurm_up.sh            # then: export SLURM_CONF=/tmp/slurm-local/slurm.conf (the tests find it themselves)
#   .venv/bin/python tests/slurm_cluster.py down
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/sbin/slurmctld ] || ! [ -x /usr/sbin/slurmd ] || ! command -v sbatch >/dev/null || ! [ -x /usr/sbin/munged ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge
fi
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" tests/slurm_cluster.py up
