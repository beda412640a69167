#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine for the tests (as root; idempotent).
#
# Installs Debian's slurm-wlm and munge when missing, writes a minimal slurm.conf for one node
# named after `hostname` (its CPUs and memory as slurmd sees them, loopback addresses, no
# cgroups, no accounting database), starts munged, slurmctld and slurmd, and waits until
# `sinfo` shows the node idle. Running it again with everything up does nothing.
set -euo pipefail

log() { echo "slurm.sh: $*" >&2; }
fail() { log "$*"; for f in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
  [ -f "$f" ] && { log "--- tail of $f"; tail -n 20 "$f" >&2; }; done; exit 1; }

if [ "$(id -u)" != 0 ]; then
  fail "must run as root (it installs packages and starts daemons)"
fi

node="$(hostname)"
node_state() { sinfo -h -n "$node" -o '%t' 2>/dev/null | head -n 1; }

if command -v sinfo >/dev/null && [ "$(node_state)" = idle ]; then
  log "node $node is idle already"
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
  || ! command -v sbatch >/dev/null; then
  log "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurm-wlm slurm-client munge >/dev/null
fi

# -- munge -----------------------------------------------------------------------------------
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null; then mungekey --create --force >/dev/null 2>&1 || true; fi
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  rm -f /run/munge/munge.socket.2.lock
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || fail "munged does not answer"
fi

# -- slurm.conf ------------------------------------------------------------------------------
conf_dir=/etc/slurm
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
# The node line as slurmd detects it (CPUs, sockets, cores, threads, memory); memory a little
# lower, so that the daemons' own use never drains the node.
hardware="$(slurmd -C 2>/dev/null | head -n 1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ UpTime=.*//')"
memory="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hardware")"
if [ -z "$hardware" ] || [ -z "$memory" ]; then
  hardware="CPUs=$(nproc) RealMemory=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) ))"
  memory="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hardware")"
fi
hardware="$(sed "s/RealMemory=[0-9]*/RealMemory=$(( memory * 9 / 10 ))/" <<<"$hardware")"
cat > "$conf_dir/slurm.conf.new" <<CONF
# Written by retain's scripts/services/slurm.sh: a single-node cluster for tests.
ClusterName=retain
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=600
MaxArraySize=1001
# Every task of an array counts toward MaxJobCount (default 10,000), and ended jobs count
# until MinJobAge: benchmarks/bench_grid.py submits 10,000 cells at once.
MaxJobCount=100000
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$node NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
changed=1
if [ -f "$conf_dir/slurm.conf" ] && cmp -s "$conf_dir/slurm.conf.new" "$conf_dir/slurm.conf"; then
  changed=0
fi
mv "$conf_dir/slurm.conf.new" "$conf_dir/slurm.conf"
chmod 0644 "$conf_dir/slurm.conf"

# -- daemons ---------------------------------------------------------------------------------
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$changed" = 1 ]; then
  for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if running "$pidfile"; then kill "$(cat "$pidfile")"; sleep 1; fi
  done
fi
if ! running /run/slurmctld.pid; then
  log "starting slurmctld"
  /usr/sbin/slurmctld || fail "slurmctld did not start"
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || fail "slurmctld does not answer (scontrol ping)"
if ! running /run/slurmd.pid; then
  log "starting slurmd"
  /usr/sbin/slurmd || fail "slurmd did not start"
fi

for _ in $(seq 150); do
  state="$(node_state)"
  case "$state" in
    idle) log "node $node is idle"; exit 0 ;;
    down*|drain*|fail*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2
done
fail "node $node did not become idle (state: '$(node_state)'; sinfo: $(sinfo 2>&1 | tr '\n' ' '))"
