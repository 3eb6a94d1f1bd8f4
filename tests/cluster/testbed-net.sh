# shellcheck shell=bash
# testbed-net.sh — the hosts' namespaces, part of the cluster testbed. Source
# tests/cluster/testbed.sh, not this file: it sets the globals (TB_DIR,
# TB_BR, TB_NOBOOT...) and the helpers (tb__host, tb__err...) used here.
#
# Owns: each host's network namespace rais-hI, its veth port(s) hIpL to the
# bridge(s) br0/br1 in rais-br, its MACs and addresses (tb__host_net_create,
# tb_ip, tb_ip6), the ports the faults switch (tb__port_set); each host's
# anchor (its private mount and UTS namespaces); entering a host (tb_exec,
# tb_spawn, tb_client). The bridge and client namespaces themselves are
# built by tb_create (testbed.sh), removed by tb_destroy.
#
# Each host has an "anchor" process (sleep) that holds a private mount and
# UTS namespace: a tmpfs on /run (corosync hard-codes /var/run/corosync.pid)
# and on /dev/shm (libqb's ring buffers), and bind mounts of per-host
# directories $TB_DIR/hI/fs/<path> over /etc/corosync, /var/lib/corosync,
# /var/log/corosync (and /var/lib/pacemaker, /var/log/pacemaker,
# /var/lib/pcsd, /etc/pacemaker when they exist on the machine, plus
# $TB_EXTRA_PRIVATE_DIRS), and the install overlay (testbed-install.sh).
# tb_exec enters the anchor's mount, UTS and net namespaces, so
# `tb_exec 2 corosync-quorumtool -s` talks to host 2's corosync (libqb IPC
# uses abstract sockets, which are per network namespace) and sees host 2's
# files.

# ---------------------------------------------------------------- network

# Host I's address on link L (default 0); its IPv6 address (link 0).
tb_ip() { local l=${2:-0}; echo "198.$((18 + l)).0.$1"; }
tb_ip6() { echo "2001:2::$1"; }

tb__mac() { printf '02:52:00:00:%02x:%02x' "$2" "$1"; }

# Create namespace rais-hI with its veth pair(s) to the bridge(s), addresses.
tb__host_net_create() {
    local i=$1 l ns="rais-h$1"
    ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up || return 1
    for ((l = 0; l < $(tb__nlinks); l++)); do
        ip -n "$TB_BR" link add "h${i}p$l" type veth peer name "eth$l" netns "$ns" || return 1
        ip -n "$ns" link set "eth$l" address "$(tb__mac "$i" "$l")" || return 1
        ip -n "$TB_BR" link set "h${i}p$l" master "br$l" up || return 1
        ip -n "$ns" addr add "$(tb_ip "$i" "$l")/24" dev "eth$l" || return 1
        ip -n "$ns" link set "eth$l" up || return 1
    done
    ip -n "$ns" addr add "$(tb_ip6 "$i")/64" dev eth0 nodad || return 1
}

# The kernel dismantles a deleted network namespace asynchronously: the
# bridge ends of its veth pairs linger for a moment after `ip netns del`
# (a restart right after a crash got "RTNETLINK answers: File exists").
# Delete them and wait until they are gone.
tb__ports_gone() { # I
    local i=$1 l n
    for ((l = 0; l < $(tb__nlinks); l++)); do
        ip -n "$TB_BR" link del "h${i}p$l" 2>/dev/null
    done
    for ((n = 0; n < 100; n++)); do
        for ((l = 0; l < $(tb__nlinks); l++)); do
            ip -n "$TB_BR" link show "h${i}p$l" >/dev/null 2>&1 && break
        done
        [ "$l" = "$(tb__nlinks)" ] && return 0
        sleep 0.05
    done
    tb__err "host $i: bridge ports still there 5 s after its namespace was deleted"
    return 1
}

tb__port_set() { # I L up|down
    ip -n "$TB_BR" link set "h${1}p$2" "$3"
}

# The inode string ("net:[1234]") of a named network namespace.
tb__netns_id() {
    local ino
    ino=$(stat -L -c %i "/run/netns/$1" 2>/dev/null) || return 1
    echo "net:[$ino]"
}

# ---------------------------------------------------------------- anchor

# The pid of host I's anchor (fails when it is not running).
tb__anchor_pid() {
    local f="$TB_DIR/h$1/anchor.pid" p
    p=$(cat "$f" 2>/dev/null) || return 1
    [ -n "$p" ] && [ -e "/proc/$p/ns/mnt" ] || return 1
    # Still our anchor (a pid may be reused): it must live in rais-hI.
    [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$(tb__netns_id "rais-h$1")" ] || return 1
    echo "$p"
}

tb__private_dirs() {
    local d
    printf "%s\n" /etc/corosync /var/lib/corosync /var/log/corosync
    for d in /var/lib/pacemaker /var/log/pacemaker /var/lib/pcsd /etc/pacemaker; do
        [ -d "$d" ] && echo "$d"
    done
    for d in ${TB_EXTRA_PRIVATE_DIRS:-}; do
        echo "$d"
    done
}

# Prepare host I's persistent directories (once per testbed).
tb__host_dirs() {
    local i=$1 hd="$TB_DIR/h$1" d
    mkdir -p "$hd/fs" || return 1
    for d in $(tb__private_dirs); do
        [ -d "$hd/fs$d" ] && continue
        # A mount point needs a directory; the testbed never creates one
        # outside its work dir.
        [ -d "$d" ] || { tb__err "$d does not exist on this machine"; return 1; }
        mkdir -p "$hd/fs$d" || return 1
        case $d in
            /var/log/*) ;;             # start with an empty log dir
            *) cp -a "$d/." "$hd/fs$d/" || return 1 ;;
        esac
        chown --reference="$d" "$hd/fs$d" || return 1
        chmod --reference="$d" "$hd/fs$d" || return 1
    done
}

# Start host I's anchor: a sleep holding private mount + UTS namespaces.
tb__anchor_start() {
    local i=$1 hd="$TB_DIR/h$1" n
    rm -f "$hd/anchor.pid" "$hd/anchor.ready"
    # shellcheck disable=SC2016
    local script='
        set -e
        i=$1 hd=$2 ovl=$3; shift 3
        mount -t tmpfs -o mode=0755,size=64m tb-run /run
        mkdir -p -m 1777 /run/lock
        mount -t tmpfs -o mode=1777,size=512m tb-shm /dev/shm
        for d in "$@"; do
            mount --bind "$hd/fs$d" "$d"
        done
        # The install overlay: "MOUNTPOINT LOWER:LOWER:MOUNTPOINT" lines.
        if [ -s "$ovl" ]; then
            while read -r mp lower; do
                mount -t overlay tb-install -o "ro,lowerdir=$lower" "$mp"
            done <"$ovl"
        fi
        # No sysrq from inside a host (Pacemaker panics with it).
        if [ -e /proc/sysrq-trigger ]; then
            mount --bind /dev/null /proc/sysrq-trigger
        fi
        hostname "h$i"
        echo $$ >"$hd/anchor.pid"
        : >"$hd/anchor.ready"
        exec sleep infinity'
    local dirs
    mapfile -t dirs < <(tb__private_dirs)
    # ip netns exec and unshare (without --fork) exec: the pid stays the same.
    ip netns exec "rais-h$i" unshare --mount --uts --propagation private \
        /bin/bash -c "$script" anchor "$i" "$hd" "$TB_DIR/overlays" "${dirs[@]}" \
        </dev/null >"$hd/anchor.out" 2>&1 &
    local pid=$!
    disown "$pid" 2>/dev/null
    for ((n = 0; n < 100; n++)); do
        [ -e "$hd/anchor.ready" ] && tb__anchor_pid "$i" >/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    tb__err "host $i: anchor did not start: $(cat "$hd/anchor.out" 2>/dev/null)"
    return 1
}

# ---------------------------------------------------------------- exec

# The command prefix that enters HOST's namespaces (one word a line).
tb__enter() {
    local h=$1 i p wd=/
    case $h in
        cl|client|rais-cl) printf '%s\n' ip netns exec "$TB_CL"; return ;;
        br|bridge|rais-br) printf '%s\n' ip netns exec "$TB_BR"; return ;;
    esac
    i=$(tb__host "$h") || return 2
    p=$(tb__anchor_pid "$i") || { tb__err "host $i is down (no anchor)"; return 2; }
    case $PWD in
        /run|/run/*|/dev/shm|/dev/shm/*) ;;
        *) wd=$PWD ;;
    esac
    printf '%s\n' nsenter --target "$p" --mount --uts --net --wd="$wd" -- "${TB_NOBOOT[@]}"
}

tb_exec() {
    local h=$1 pre
    shift
    [ $# -gt 0 ] || { tb__err "tb_exec: no command"; return 2; }
    pre=$(tb__enter "$h") || return 2
    local IFS=$'\n'
    # shellcheck disable=SC2086
    set -- $pre "$@"
    unset IFS
    "$@"
}

# tb_spawn HOST OUTFILE CMD...: start CMD in the background in HOST's
# namespaces, stdin from /dev/null, stdout and stderr appended to OUTFILE.
# Sets TB_PID to the pid of CMD itself (nsenter and ip netns exec exec it),
# so `kill $TB_PID` reaches it. The process is disowned: bash does not
# report its death. Call it from the main shell (the parent reaps it).
tb_spawn() {
    local h=$1 out=$2 pre
    shift 2
    [ $# -gt 0 ] || { tb__err "tb_spawn: no command"; return 2; }
    pre=$(tb__enter "$h") || return 2
    local IFS=$'\n'
    # shellcheck disable=SC2086
    set -- $pre "$@"
    unset IFS
    "$@" </dev/null >>"$out" 2>&1 &
    TB_PID=$!
    disown "$TB_PID" 2>/dev/null
    return 0
}

tb_client() { ip netns exec "$TB_CL" "$@"; }
