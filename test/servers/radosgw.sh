#!/usr/bin/env bash
# Throw-away single-node Ceph (1 mon, 1 BlueStore OSD on a sparse file, no mgr)
# with radosgw serving S3 on 127.0.0.1:PORT. All state lives in DIR.
#
#   radosgw.sh start DIR PORT ACCESS_KEY SECRET_KEY
#   radosgw.sh stop DIR
#
# Every ceph command gets `-c DIR/ceph.conf`; /etc/ceph is never read or written.
# Daemons are stopped by their PID files only (never by name).
set -euo pipefail

usage() {
  echo "usage: $0 start DIR PORT ACCESS_KEY SECRET_KEY | $0 stop DIR" >&2
  exit 2
}

# --- helpers -----------------------------------------------------------------

# True when something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Picks a base port B such that B..B+15 look free (below the usual ephemeral
# range, so outgoing connections do not grab them). B is the mon port,
# B+1..B+15 is the messenger bind range for the OSD.
pick_ports() {
  local tries base p ok
  for tries in $(seq 1 100); do
    base=$((20000 + (RANDOM * 32768 + RANDOM) % 11000))
    ok=1
    for p in $(seq "$base" $((base + 15))); do
      if port_busy "$p"; then ok=0; break; fi
    done
    if [[ $ok == 1 ]]; then echo "$base"; return 0; fi
  done
  echo "radosgw.sh: could not find free ports for mon/osd" >&2
  return 1
}

# Alive = exists and is not a zombie (a daemonized ceph process is reparented
# to init, which may reap it late; a zombie has exited and holds nothing).
pid_alive() {
  local stat
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != "Z" && "${stat:0:1}" != "X" ]]
}

read_pid() {
  [[ -s "$1" ]] && tr -dc '0-9' <"$1" || true
}

# signal_pids SIG DIR NAME...: signals the daemons named (rgw, osd, mon) via
# their PID files.
signal_pids() {
  local sig=$1 dir=$2 d pid
  shift 2
  for d in "$@"; do
    pid=$(read_pid "$dir/run/$d.pid")
    if pid_alive "$pid"; then kill "-$sig" "$pid" 2>/dev/null || true; fi
  done
}

any_alive() {
  local dir=$1 d
  shift
  for d in "$@"; do
    pid_alive "$(read_pid "$dir/run/$d.pid")" && return 0
  done
  return 1
}

# stop_group DIR NAME...: TERM, wait up to 10 s, then KILL and wait.
stop_group() {
  local dir=$1 i
  shift
  signal_pids TERM "$dir" "$@"
  for i in $(seq 1 200); do
    any_alive "$dir" "$@" || return 0
    sleep 0.05
  done
  signal_pids KILL "$dir" "$@"
  for i in $(seq 1 100); do
    any_alive "$dir" "$@" || return 0
    sleep 0.05
  done
  echo "radosgw.sh: $* in $dir did not exit" >&2
  return 1
}

# One at a time, clients before servers: radosgw's shutdown talks to the OSD
# (it hangs if the OSD is already gone), and the OSD tells the mon it is going
# down. Each takes well under a second.
do_stop() {
  local dir=$1 d rc=0
  [[ -d "$dir/run" ]] || return 0
  stop_group "$dir" rgw || rc=1
  stop_group "$dir" osd || rc=1
  stop_group "$dir" mon || rc=1
  for d in rgw osd mon; do
    pid_alive "$(read_pid "$dir/run/$d.pid")" || rm -f "$dir/run/$d.pid"
  done
  return $rc
}

# Stops whatever was started, then prints the tails of the logs and exits 1.
# Stopping comes first so that a closed stderr (SIGPIPE) cannot leak daemons.
fail() {
  local dir=$1 f
  shift
  trap '' PIPE INT TERM HUP
  if pid_alive "$MKFS_PID"; then
    kill -KILL "$MKFS_PID" 2>/dev/null || true
    wait "$MKFS_PID" 2>/dev/null || true
  fi
  do_stop "$dir" 2>/dev/null || true
  {
    echo "radosgw.sh: $*"
    for f in "$dir"/log/*.out "$dir"/log/rgw.log "$dir"/log/osd.0.log "$dir"/log/mon.a.log "$dir"/log/client.log; do
      [[ -s "$f" ]] || continue
      echo "----- tail $f -----"
      tail -n 20 "$f" || true
    done
  } >&2 2>/dev/null || true
  exit 1
}

# --- start -------------------------------------------------------------------

do_start() {
  local dir=$1 port=$2 access=$3 secret=$4
  local conf rgw_data
  local bin missing=()
  for bin in ceph ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool curl; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  if ((${#missing[@]})); then
    echo "radosgw.sh: missing ${missing[*]} (apt-get install -y radosgw ceph-mon ceph-osd ceph-common curl)" >&2
    exit 1
  fi

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  conf="$dir/ceph.conf"
  rgw_data="$dir/rgw"

  if [[ -e "$dir/run/mon.pid" ]] && pid_alive "$(read_pid "$dir/run/mon.pid")"; then
    echo "radosgw.sh: a cluster is already running in $dir (stop it first)" >&2
    exit 1
  fi
  if port_busy "$port"; then
    echo "radosgw.sh: port $port is already in use" >&2
    exit 1
  fi

  trap 'fail "$dir" "interrupted"' INT TERM HUP
  rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/rgw" "$dir/crash"
  mkdir -p "$dir/mon/a" "$dir/osd/0" "$dir/run" "$dir/log" "$rgw_data" "$dir/crash"

  local base fsid osd_uuid
  base=$(pick_ports)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)

  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$base]
public addr = 127.0.0.1
public network = 127.0.0.1/32
cluster network = 127.0.0.1/32
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
ms bind port min = $((base + 1))
ms bind port max = $((base + 15))
ms bind retry delay = 1

auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring.\$name
run dir = $dir/run
crash dir = $dir/crash
admin socket = $dir/run/\$name.\$pid.asok
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
mon cluster log file = $dir/log/cluster.log

osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000

paxos propose interval = 0.05
mon osd report timeout = 86400
mon osd down out interval = 86400
mon osd full ratio = 0.995
mon osd backfillfull ratio = 0.99
mon osd nearfull ratio = 0.99
osd failsafe full ratio = 0.999
mon data avail crit = 0
mon data avail warn = 0

[mon]
mon data = $dir/mon/\$id
pid file = $dir/run/mon.pid

[osd]
osd data = $dir/osd/\$id
pid file = $dir/run/osd.pid
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 10737418240
bluestore fsck on mkfs = false
# Every block-device close waits one aio poll period (250 ms by default), and
# mkfs + mount close it about ten times.
bdev aio poll ms = 10
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096
osd op num shards = 2
osd op num threads per shard = 2

[client]
log file = $dir/log/client.log

[client.rgw.a]
pid file = $dir/run/rgw.pid
log file = $dir/log/rgw.log
rgw data = $rgw_data
rgw frontends = beast endpoint=127.0.0.1:$port
rgw thread pool size = 64
rgw crypt require ssl = false
rgw dynamic resharding = false
rgw enable usage log = false
EOF

  # cephx keys: the mon keyring carries every entity so `ceph-mon --mkfs` puts
  # them all in the auth database (no `ceph auth` round trips later).
  # (`&&` chains: errexit does not apply inside a `... || fail` list.)
  local k
  (
    ceph-authtool "$dir/keyring.mon.a" --create-keyring --gen-key -n mon. --cap mon 'allow *' &&
      ceph-authtool "$dir/keyring.client.admin" --create-keyring --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' &&
      ceph-authtool "$dir/keyring.osd.0" --create-keyring --gen-key -n osd.0 \
        --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' &&
      ceph-authtool "$dir/keyring.client.rgw.a" --create-keyring --gen-key -n client.rgw.a \
        --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' &&
      for k in client.admin osd.0 client.rgw.a; do
        ceph-authtool "$dir/keyring.mon.a" --import-keyring "$dir/keyring.$k" || exit 1
      done
  ) >"$dir/log/authtool.out" 2>&1 || fail "$dir" "ceph-authtool failed"
  # radosgw-admin and the ceph CLI run as client.admin.

  monmaptool -c "$conf" --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$base]" \
    "$dir/monmap" >"$dir/log/monmaptool.out" 2>&1 || fail "$dir" "monmaptool failed"

  # OSD mkfs is offline (fsid comes from the conf): run it alongside the mon.
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/osd-mkfs.out" 2>&1 &
  MKFS_PID=$!

  ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/keyring.mon.a" \
    >"$dir/log/mon-mkfs.out" 2>&1 || fail "$dir" "ceph-mon --mkfs failed"
  ceph-mon -c "$conf" -i a >"$dir/log/mon.out" 2>&1 || fail "$dir" "ceph-mon failed to start"

  # One CLI session (one python start, one mon connection): register the OSD
  # and create the rgw pools up front.
  local pools=(.rgw.root default.rgw.log default.rgw.control default.rgw.meta
    default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec)
  local p
  {
    echo "osd new $osd_uuid 0"
    for p in "${pools[@]}"; do
      echo "osd pool create $p 8 8 replicated"
      echo "osd pool application enable $p rgw"
    done
  } | timeout 60 ceph -c "$conf" -n client.admin --connect-timeout 30 >"$dir/log/ceph-cli.out" 2>&1 ||
    fail "$dir" "ceph CLI setup failed"

  wait "$MKFS_PID" || { MKFS_PID=; fail "$dir" "ceph-osd --mkfs failed"; }
  MKFS_PID=
  ceph-osd -c "$conf" -i 0 >"$dir/log/osd.out" 2>&1 || fail "$dir" "ceph-osd failed to start"

  # radosgw blocks in init until the pools are writable; start it now.
  radosgw -c "$conf" -n client.rgw.a >"$dir/log/rgw.out" 2>&1 || fail "$dir" "radosgw failed to start"

  # Wait until rgw answers HTTP at all (init done), then create the user.
  local deadline=$((SECONDS + 90)) pid_deadline=$((SECONDS + 15)) code rgw_pid
  while :; do
    code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" || true)
    [[ "$code" != "000" ]] && break
    rgw_pid=$(read_pid "$dir/run/rgw.pid")
    if [[ -n "$rgw_pid" ]]; then
      pid_alive "$rgw_pid" || fail "$dir" "radosgw exited"
    elif ((SECONDS >= pid_deadline)); then
      fail "$dir" "radosgw wrote no pid file"
    fi
    ((SECONDS < deadline)) || fail "$dir" "radosgw did not answer on 127.0.0.1:$port"
    sleep 0.1
  done

  timeout 60 radosgw-admin -c "$conf" -n client.admin user create --uid=lifeboat-test \
    --display-name="Lifeboat test" --access-key="$access" --secret-key="$secret" \
    >"$dir/log/user-create.out" 2>&1 || fail "$dir" "radosgw-admin user create failed"

  # Wait for a SigV4-signed ListBuckets to succeed.
  while :; do
    code=$(curl -s --noproxy '*' -o "$dir/log/signed-check.out" -w '%{http_code}' --max-time 2 \
      --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" \
      -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
      "http://127.0.0.1:$port/" || true)
    [[ "$code" == "200" ]] && break
    ((SECONDS < deadline)) || fail "$dir" "signed ListBuckets did not succeed (last HTTP $code)"
    sleep 0.1
  done
  trap - INT TERM HUP
}

MKFS_PID=

# --- main --------------------------------------------------------------------

[[ $# -ge 1 ]] || usage
case "$1" in
  start)
    [[ $# -eq 5 ]] || usage
    [[ "$3" =~ ^[0-9]+$ ]] || usage
    do_start "$2" "$3" "$4" "$5"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    do_stop "$2"
    ;;
  *) usage ;;
esac
