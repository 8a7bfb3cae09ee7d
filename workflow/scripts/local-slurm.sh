#!/usr/bin/env bash
# A real single-node SLURM on this machine, for trying the SLURM profile and for its test.
#
#   workflow/scripts/local-slurm.sh install   # apt-get install slurm-wlm munge (root)
#   workflow/scripts/local-slurm.sh start     # munged + slurmctld + slurmd, then wait for the node
#   eval "$(workflow/scripts/local-slurm.sh env)"   # SLURM_CONF for sbatch/squeue/snakemake
#   workflow/scripts/local-slurm.sh status
#   workflow/scripts/local-slurm.sh stop      # stops the three daemons it started (by pid)
#
# Everything lives under $MEPR_SLURM_DIR (default /tmp/mepr-slurm): slurm.conf, its own munge
# key and socket, state, spool, logs, and a job-completion log (jobcomp.log, one line per
# finished job) that stands in for accounting (no slurmdbd). The one thing outside it is a
# symlink /etc/slurm/slurm.conf -> $MEPR_SLURM_DIR/slurm.conf, made only where no slurm.conf
# exists and removed again by `stop`: commands inside a job must find the config at the
# default path, because the slurm-jobstep plugin drops SLURM_CONF from the environment of the
# srun it starts. A system munged, if any, is left alone (set MEPR_SLURM_PORTS=7817-7818 if
# SLURM's default ports are taken). Root is needed: slurmd runs jobs as their users.
#
# Settings (environment): MEPR_SLURM_DIR, MEPR_SLURM_CPUS (default: nproc),
# MEPR_SLURM_MEM_MB (default: 90% of slurmd -C's RealMemory), MEPR_SLURM_PARTITION (default:
# local), MEPR_SLURM_PORTS (slurmctld-slurmd, default 6817-6818).
set -euo pipefail

DIR=${MEPR_SLURM_DIR:-/tmp/mepr-slurm}
PARTITION=${MEPR_SLURM_PARTITION:-local}
PORTS=${MEPR_SLURM_PORTS:-6817-6818}
CONF=$DIR/slurm.conf
SYSTEM_CONF=/etc/slurm/slurm.conf
MARK="written by workflow/scripts/local-slurm.sh"
export SLURM_CONF=$CONF

say() { echo "local-slurm: $*" >&2; }
die() {
  say "$*"
  exit 1
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "slurm-wlm and munge are not installed and this is not root"
  command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and there is no apt-get"
  say "installing slurm-wlm munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm munge >/dev/null
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=${MEPR_SLURM_CPUS:-$(nproc)}
  mem=${MEPR_SLURM_MEM_MB:-$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)}
  [ -n "$mem" ] || die "could not read RealMemory from 'slurmd -C'"
  [ -z "${MEPR_SLURM_MEM_MB:-}" ] && mem=$((mem * 9 / 10))
  cat >"$CONF" <<EOF
# $MARK: a single-node cluster on $host
ClusterName=mepr-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${PORTS%-*}
SlurmdPort=${PORTS#*-}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# no cgroups (they do not work in every container): track processes through /proc
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# no slurmdbd: squeue must keep finished jobs long enough for snakemake's status checks
MinJobAge=900
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
SlurmctldTimeout=30
SlurmdTimeout=60
# the node as declared here, even where that is more than the machine has (MEPR_SLURM_CPUS
# above nproc: tiny test jobs side by side on a small machine)
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  install
  if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; then
    say "already running ($CONF)"
    return 0
  fi
  stop 2>/dev/null || true
  mkdir -p "$DIR"/{munge,state,spool,log}
  chmod 755 "$DIR/munge" # the socket must be reachable by users submitting jobs
  : >"$DIR/jobcomp.log"
  write_conf
  if [ -L "$SYSTEM_CONF" ] && { [ ! -e "$SYSTEM_CONF" ] || head -1 "$SYSTEM_CONF" | grep -q "$MARK"; }; then
    rm -f "$SYSTEM_CONF" # ours, from an earlier run (possibly of another MEPR_SLURM_DIR)
  fi
  if [ -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
    die "$SYSTEM_CONF exists and is not ours: this machine has its own SLURM, use that"
  fi
  mkdir -p "$(dirname "$SYSTEM_CONF")"
  ln -s "$CONF" "$SYSTEM_CONF"

  # munge: a private key and socket, so a system munged (if any) is not touched
  if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
  fi
  munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
  wait_for "munged" 20 test -S "$DIR/munge/munge.socket"

  slurmctld -c -f "$CONF"
  wait_for "slurmctld" 30 scontrol ping
  slurmd -f "$CONF"
  if ! wait_for "the node to be idle" 60 node_idle; then
    scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
    wait_for "the node to be idle" 30 node_idle || {
      sinfo -N -l >&2 || true
      tail -20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
      die "node did not come up"
    }
  fi
  say "up: partition '$PARTITION' on $(hostname -s); export SLURM_CONF=$CONF"
}

node_idle() { sinfo -h -N -o %T 2>/dev/null | grep -qx idle; }

wait_for() {
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq $((seconds * 4))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  say "timed out waiting for $what"
  return 1
}

stop_pidfile() {
  local name=$1 pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    say "stopped $name ($pid)"
  fi
  rm -f "$pidfile"
}

stop() {
  stop_pidfile slurmd "$DIR/slurmd.pid"
  stop_pidfile slurmctld "$DIR/slurmctld.pid"
  stop_pidfile munged "$DIR/munge/munged.pid"
  if [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" = "$CONF" ]; then
    rm -f "$SYSTEM_CONF"
  fi
}

status() {
  for d in munged:munge/munged.pid slurmctld:slurmctld.pid slurmd:slurmd.pid; do
    if pid_alive "$DIR/${d#*:}"; then echo "${d%%:*}: running ($(cat "$DIR/${d#*:}"))"; else echo "${d%%:*}: stopped"; fi
  done
  pid_alive "$DIR/slurmctld.pid" && sinfo
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *)
    echo "usage: $0 install|start|stop|status|env" >&2
    exit 2
    ;;
esac
