#!/bin/bash
# testbed.sh — a corosync cluster made of Linux network namespaces on one
# machine, for rais's cluster tests (doc/design.md §6, item 3).
#
# Source it from a bash test script (as root):
#
#     . "$srcdir/tests/cluster/testbed.sh"
#     tb_create 3 --token 1000       # exits 99 if the testbed cannot be built
#     tb_exec 2 corosync-quorumtool -s
#     tb_crash 2; tb_wait_members 1 2; tb_membership_time 1
#     tb_restart 2
#
# or clean up leftovers from the command line:
#
#     tests/cluster/testbed.sh destroy
#
# Layout (fixed names; only one testbed runs on a machine at a time):
#
#   rais-br   bridge namespace: br0 (link 0) and, with --links 2, br1 (link 1);
#             ports hIp0 / hIp1 (hosts) and clp0 (client). No addresses.
#   rais-hI   host I (1..N): eth0 198.18.0.I/24 2001:2::I/64,
#             eth1 198.19.0.I/24 (--links 2). Node id I, node name hI,
#             hostname hI (own UTS namespace), MAC 02:52:00:00:0L:II.
#   rais-cl   client: eth0 198.18.0.250/24 2001:2::250/64 (link 0 only).
#
# No namespace has a default route: only 198.18.0.0/15 and 2001:2::/48 are
# reachable, and only inside the testbed.
#
# Each host has an "anchor" process (sleep) that holds a private mount and
# UTS namespace: a tmpfs on /run (corosync hard-codes /var/run/corosync.pid)
# and on /dev/shm (libqb's ring buffers), and bind mounts of per-host
# directories $TB_DIR/hI/fs/<path> over /etc/corosync, /var/lib/corosync,
# /var/log/corosync (and /var/lib/pacemaker, /var/log/pacemaker,
# /var/lib/pcsd, /etc/pacemaker when they exist on the machine, plus
# $TB_EXTRA_PRIVATE_DIRS). tb_exec enters the anchor's mount, UTS and net
# namespaces, so `tb_exec 2 corosync-quorumtool -s` talks to host 2's
# corosync (libqb IPC uses abstract sockets, which are per network
# namespace) and sees host 2's files.
#
# `ip netns exec rais-hI CMD` does NOT reach host I's corosync or Pacemaker:
# libqb's IPC sockets are abstract (per network namespace) but its ring
# buffers are files in /dev/shm, which is private per host here (so that a
# crashed host leaves nothing behind): "Cannot initialize CMAP service".
# Always use tb_exec / tb_spawn. Likewise pcs and corosync read the host's
# /etc/corosync/corosync.conf under tb_exec (no /etc/netns needed).
#
# Timing (corosync 3.1.7, 2 cores, token 1000): 3 hosts form in ~3-4 s; a
# crash is detected and a new membership formed in ~3.5 s (token 1000 +
# token_coefficient 650 = 1650 ms, consensus 1980 ms); 5 hosts: ~6 s. A knet
# link needs ~8 s after it came up before its loss is detected faster than
# the token (tb_wait_links_settled); until then losing it forms a new ring
# (same members).
#
# Processes started here are children of the calling shell (disowned, so bash
# neither waits for them nor reports their death); call tb_create, tb_restart
# and tb_start from the test's main shell, not from $(...) or a pipeline.
#
# Functions (HOST is I, hI or rais-hI; tb_exec also takes cl and br):
#   tb_create N [--links 1|2] [--token MS] [--totem 'key: value']...
#             [--no-corosync] [--timeout S]
#                        build the testbed, start corosync on every host and
#                        wait until every host sees N members. Registers
#                        tb_destroy on EXIT (an EXIT trap set before is kept
#                        and runs after it; one set after replaces it, so it
#                        must call tb_destroy). Any failure exits 99
#                        (automake's "hard error"): a cluster test that
#                        cannot run fails, it never skips.
#   tb_exec HOST CMD...  run CMD in HOST's namespaces (cwd kept)
#   tb_spawn HOST OUT CMD...  same in the background, output to OUT; sets
#                        TB_PID to CMD's own pid
#   tb_client CMD...     run CMD in the client namespace
#   tb_start I           start corosync on host I (no wait)
#   tb_crash I           ports down, then SIGKILL every process of host I
#   tb_cut I             all of host I's bridge ports down
#   tb_uncut I [--no-wait]  ports up, wait for the full membership
#   tb_cut_link I L / tb_uncut_link I L   one link's port down / up
#   tb_restart I [--keep-net]  after a crash: a rebooted host (a new network
#                        namespace with the base addresses, unless
#                        --keep-net; new mount namespace and /run; same
#                        /etc/corosync, /var/lib, /var/log), corosync started;
#                        otherwise ports up and corosync started if needed.
#                        Waits until every running host sees every other.
#   tb_nhosts            number of hosts
#   tb_state I           up, cut or crashed (as the testbed left it)
#   tb_members I         number of members host I sees (0: no answer)
#   tb_member_ids I      their node ids, one line
#   tb_ring_id I         the ring id of host I's membership ("1.9")
#   tb_quorate I         status 0 when host I is quorate
#   tb_wait_members I COUNT [TIMEOUT_S]
#   tb_wait_quorate I yes|no [TIMEOUT_S]
#   tb_wait_all [TIMEOUT_S] [--after EPOCH]  every running host sees all
#                        running hosts, with one ring id
#   tb_links_up I        all of host I's links to running hosts connected
#   tb_wait_links_settled [S]  all links connected, and knet's link-down
#                        detection at its steady speed (see the function)
#   tb_membership_time I     epoch.ms of the last "A new membership (...) was
#                            formed" in host I's corosync log
#   tb_fault_time I      epoch.ms of the last tb_crash/tb_cut of host I
#   tb_now               epoch.ms now
#   tb_log I             path of host I's corosync log (outside view)
#   tb_hostdir I         $TB_DIR/hI
#   tb_ip I [LINK] / tb_ip6 I   host addresses
#   tb_destroy           kill every process in every rais-* namespace, delete
#                        the namespaces and the work dir. Idempotent.
#
# Environment: TB_DIR (work dir, default /tmp/rais-testbed), TB_WAIT (default
# timeout of the waits, s, default 30), TB_EXTRA_PRIVATE_DIRS (more
# directories to make per-host), TB_QUIET=1 (less chatter).

TB_DIR=${TB_DIR:-/tmp/rais-testbed}
TB_WAIT=${TB_WAIT:-30}
TB_BR=rais-br
TB_CL=rais-cl
TB_CLIENT_IP=198.18.0.250
TB_CLIENT_IP6=2001:2::250
TB_CLUSTER_NAME=rais-test

tb__say() { [ "${TB_QUIET:-0}" = 1 ] || echo "testbed: $*" >&2; }
tb__err() { echo "testbed: ERROR: $*" >&2; }

# Hard failure of the testbed itself: automake's "ERROR" status (99).
tb__fatal() {
    tb__err "$*"
    exit 99
}

tb_now() { date +%s.%3N; }

# tb__host ARG -> host number (1..N) or fails
tb__host() {
    local h=$1
    h=${h#rais-}
    h=${h#h}
    case $h in
        ''|*[!0-9]*) tb__err "not a host: '$1'"; return 1 ;;
    esac
    if [ ! -d "$TB_DIR/h$h" ]; then
        tb__err "no host $h in the testbed ($TB_DIR)"
        return 1
    fi
    echo "$((10#$h))"
}

tb_hostdir() { local i; i=$(tb__host "$1") || return 1; echo "$TB_DIR/h$i"; }
tb_log() { local d; d=$(tb_hostdir "$1") || return 1; echo "$d/fs/var/log/corosync/corosync.log"; }
tb_ip() { local l=${2:-0}; echo "198.$((18 + l)).0.$1"; }
tb_ip6() { echo "2001:2::$1"; }

tb__nhosts() { cat "$TB_DIR/nhosts" 2>/dev/null || echo 0; }
tb__nlinks() { cat "$TB_DIR/nlinks" 2>/dev/null || echo 1; }
tb__state() { cat "$TB_DIR/h$1/state" 2>/dev/null || echo none; }
tb__set_state() { echo "$2" >"$TB_DIR/h$1/state"; }
# Public: number of hosts; state of host I (up, cut, crashed).
tb_nhosts() { tb__nhosts; }
tb_state() { local i; i=$(tb__host "$1") || return 1; tb__state "$i"; }

tb__anchor_pid() {
    local f="$TB_DIR/h$1/anchor.pid" p
    p=$(cat "$f" 2>/dev/null) || return 1
    [ -n "$p" ] && [ -e "/proc/$p/ns/mnt" ] || return 1
    # Still our anchor (a pid may be reused): it must live in rais-hI.
    [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$(tb__netns_id "rais-h$1")" ] || return 1
    echo "$p"
}

# The inode string ("net:[1234]") of a named network namespace.
tb__netns_id() {
    local ino
    ino=$(stat -L -c %i "/run/netns/$1" 2>/dev/null) || return 1
    echo "net:[$ino]"
}

tb_require() {
    local missing="" c
    [ "$(id -u)" = 0 ] || tb__fatal "the cluster testbed needs root"
    for c in ip nsenter unshare mount corosync corosync-quorumtool corosync-cfgtool \
             date stat awk sed grep; do
        command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
    done
    [ -z "$missing" ] || tb__fatal "missing:$missing (install iproute2 util-linux corosync)"
    ip link help 2>&1 | grep -qw veth || tb__fatal "ip: no veth support"
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
    printf '%s\n' nsenter --target "$p" --mount --uts --net --wd="$wd" --
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

# ---------------------------------------------------------------- network

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

tb__port_set() { # I L up|down
    ip -n "$TB_BR" link set "h${1}p$2" "$3"
}

# ---------------------------------------------------------------- anchor

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
        i=$1 hd=$2; shift 2
        mount -t tmpfs -o mode=0755,size=64m tb-run /run
        mkdir -p -m 1777 /run/lock
        mount -t tmpfs -o mode=1777,size=512m tb-shm /dev/shm
        for d in "$@"; do
            mount --bind "$hd/fs$d" "$d"
        done
        hostname "h$i"
        echo $$ >"$hd/anchor.pid"
        : >"$hd/anchor.ready"
        exec sleep infinity'
    local dirs
    mapfile -t dirs < <(tb__private_dirs)
    # ip netns exec and unshare (without --fork) exec: the pid stays the same.
    ip netns exec "rais-h$i" unshare --mount --uts --propagation private \
        /bin/bash -c "$script" anchor "$i" "$hd" "${dirs[@]}" \
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

# ---------------------------------------------------------------- corosync

tb__write_conf() {
    local i=$1 hd="$TB_DIR/h$1" j l conf o
    conf="$hd/fs/etc/corosync/corosync.conf"
    {
        echo "# written by tests/cluster/testbed.sh for host h$i"
        echo "totem {"
        echo "    version: 2"
        echo "    cluster_name: $TB_CLUSTER_NAME"
        echo "    transport: knet"
        echo "    token: $(cat "$TB_DIR/token")"
        echo "    crypto_cipher: none"
        echo "    crypto_hash: none"
        while IFS= read -r o; do
            [ -n "$o" ] && echo "    $o"
        done <"$TB_DIR/totem-extra"
        for ((l = 0; l < $(tb__nlinks); l++)); do
            echo "    interface {"
            echo "        linknumber: $l"
            echo "    }"
        done
        echo "}"
        echo "nodelist {"
        for ((j = 1; j <= $(tb__nhosts); j++)); do
            echo "    node {"
            echo "        name: h$j"
            echo "        nodeid: $j"
            for ((l = 0; l < $(tb__nlinks); l++)); do
                echo "        ring${l}_addr: $(tb_ip "$j" "$l")"
            done
            echo "    }"
        done
        echo "}"
        echo "quorum {"
        echo "    provider: corosync_votequorum"
        echo "}"
        echo "logging {"
        echo "    to_logfile: yes"
        echo "    logfile: /var/log/corosync/corosync.log"
        echo "    to_syslog: no"
        echo "    to_stderr: no"
        echo "    timestamp: hires"
        echo "    fileline: off"
        echo "}"
    } >"$conf"
}

tb__corosync_pid() {
    local p
    p=$(cat "$TB_DIR/h$1/corosync.pid" 2>/dev/null) || return 1
    [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = corosync ] || return 1
    [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$(tb__netns_id "rais-h$1")" ] || return 1
    echo "$p"
}

tb_start() {
    local i hd
    i=$(tb__host "$1") || return 1
    hd="$TB_DIR/h$i"
    tb__corosync_pid "$i" >/dev/null && return 0
    tb__anchor_pid "$i" >/dev/null || { tb__err "host $i is down"; return 1; }
    echo "--- $(tb_now) start" >>"$hd/corosync.out"
    tb_spawn "$i" "$hd/corosync.out" corosync -f || return 1
    echo "$TB_PID" >"$hd/corosync.pid"
    : >"$TB_DIR/corosync"     # corosync in use: tb_restart starts it again
}

# Failure detection time in ms (effective token + consensus, from cmap),
# cached; 5000 until a running corosync answers.
tb__detect_ms() {
    local i t c
    if [ -s "$TB_DIR/detect_ms" ]; then cat "$TB_DIR/detect_ms"; return; fi
    for ((i = 1; i <= $(tb__nhosts); i++)); do
        [ "$(tb__state "$i")" = up ] || continue
        t=$(tb_exec "$i" corosync-cmapctl -g runtime.config.totem.token 2>/dev/null | awk '{ print $NF }')
        c=$(tb_exec "$i" corosync-cmapctl -g runtime.config.totem.consensus 2>/dev/null | awk '{ print $NF }')
        case $t$c in ''|*[!0-9]*) continue ;; esac
        echo $((t + c)) | tee "$TB_DIR/detect_ms"
        return
    done
    echo 5000
}

# corosync-quorumtool -s of host I (empty when it does not answer)
tb__qstatus() {
    tb__anchor_pid "$1" >/dev/null || return 1
    tb_exec "$1" corosync-quorumtool -s 2>/dev/null
    return 0
}

# "RING QUORATE ID..." as host I sees it (empty when corosync does not answer)
tb__view() {
    tb__qstatus "$1" | awk '
        /^Ring ID:/ { ring = $3 }
        /^Quorate:/ { q = $2 }
        /^Membership information/ { m = 1; next }
        m && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { ids = ids " " $1 }
        END { if (ring != "") print ring, q ids }'
}

# Ring id ("1.9") of the membership host I is in (empty: no answer).
tb_ring_id() {
    local i v
    i=$(tb__host "$1") || return 1
    v=$(tb__view "$i")
    echo "${v%% *}"
}

tb_member_ids() {
    local i v
    i=$(tb__host "$1") || return 1
    v=$(tb__view "$i")
    # shellcheck disable=SC2086
    set -- $v
    shift 2 2>/dev/null
    echo "$*"
}

tb_members() {
    local ids
    ids=$(tb_member_ids "$1") || { echo 0; return 1; }
    # shellcheck disable=SC2086
    set -- $ids
    echo $#
}

tb_quorate() {
    local i v
    i=$(tb__host "$1") || return 1
    v=$(tb__view "$i")
    # shellcheck disable=SC2086
    set -- $v
    [ "${2:-}" = Yes ]
}

tb__diag() { # I: what host I looks like, for error messages
    local i=$1 hd="$TB_DIR/h$1"
    {
        echo "----- host $i (state $(tb__state "$i"), corosync pid $(tb__corosync_pid "$i" || echo none))"
        tb__qstatus "$i" | sed 's/^/  | /'
        echo "  corosync.log (tail):"
        tail -n 15 "$hd/fs/var/log/corosync/corosync.log" 2>/dev/null | sed 's/^/  | /'
        if [ -s "$hd/corosync.out" ]; then
            echo "  corosync stdout/stderr (tail):"
            tail -n 5 "$hd/corosync.out" | sed 's/^/  | /'
        fi
    } >&2
}

tb_wait_members() {
    local i want=$2 t=${3:-$TB_WAIT} end n
    i=$(tb__host "$1") || return 1
    end=$(($(date +%s%N) + ${t%.*} * 1000000000))
    while :; do
        n=$(tb_members "$i")
        [ "$n" = "$want" ] && return 0
        [ "$(date +%s%N)" -ge "$end" ] && break
        sleep 0.1
    done
    tb__err "host $i: $n members, wanted $want (after ${t}s)"
    tb__diag "$i"
    return 1
}

tb_wait_quorate() {
    local i want=$2 t=${3:-$TB_WAIT} end q
    i=$(tb__host "$1") || return 1
    end=$(($(date +%s%N) + ${t%.*} * 1000000000))
    while :; do
        if tb_quorate "$i"; then q=yes; else q=no; fi
        [ "$q" = "$want" ] && return 0
        [ "$(date +%s%N)" -ge "$end" ] && break
        sleep 0.1
    done
    tb__err "host $i: quorate=$q, wanted $want (after ${t}s)"
    tb__diag "$i"
    return 1
}

# tb_wait_all [TIMEOUT_S] [--after EPOCH]: every host in state "up" sees
# exactly the hosts in state "up", all with the same ring id. With --after
# (a fault's time), also wait until every such host formed a membership
# after it, or until a fault that short can no longer cause one (2 x
# (token + consensus) + 1 s): otherwise a host cut for less than the
# failure detection time would look settled before totem noticed the cut.
tb_wait_all() {
    local t=$TB_WAIT after="" end i up="" want ok v ring lastm bound
    while [ $# -gt 0 ]; do
        case $1 in
            --after) after=$2; shift 2 ;;
            *) t=$1; shift ;;
        esac
    done
    for ((i = 1; i <= $(tb__nhosts); i++)); do
        [ "$(tb__state "$i")" = up ] && up="$up $i"
    done
    want=$up
    bound=$((2 * $(tb__detect_ms) + 1000))
    end=$(($(date +%s%N) + ${t%.*} * 1000000000))
    while :; do
        ok=1 ring=""
        for i in $up; do
            v=$(tb__view "$i")
            # shellcheck disable=SC2086
            set -- $v
            [ -n "${1:-}" ] || { ok=0; break; }
            [ -z "$ring" ] && ring=$1
            [ "$1" = "$ring" ] || { ok=0; break; }
            shift 2
            [ " $*" = "$want" ] || { ok=0; break; }
        done
        if [ $ok = 1 ] && [ -n "$after" ] &&
            [ "$(tb__ms_since "$after")" -lt "$bound" ]; then
            for i in $up; do
                lastm=$(tb_membership_time "$i" 2>/dev/null) || lastm=0
                awk -v a="$lastm" -v b="$after" 'BEGIN { exit !(a > b) }' || { ok=0; break; }
            done
        fi
        [ $ok = 1 ] && return 0
        [ "$(date +%s%N)" -ge "$end" ] && break
        sleep 0.1
    done
    tb__err "membership did not settle to [$want ] with one ring id within ${t}s"
    for i in $up; do tb__diag "$i"; done
    return 1
}

# Milliseconds since EPOCH.ms
tb__ms_since() {
    awk -v a="$1" -v b="$(tb_now)" 'BEGIN { printf "%d", (b - a) * 1000 }'
}

# tb_links_up I: every link from host I to every other running host is
# connected, as corosync-cfgtool -s on host I reports it.
tb_links_up() {
    local i j up=""
    i=$(tb__host "$1") || return 1
    for ((j = 1; j <= $(tb__nhosts); j++)); do
        [ "$j" != "$i" ] && [ "$(tb__state "$j")" = up ] && up="$up $j"
    done
    tb_exec "$i" corosync-cfgtool -s 2>/dev/null | awk -v up="$up" -v nl="$(tb__nlinks)" '
        BEGIN { n = split(up, peers, " ") }
        /^LINK ID/ { link = $3; links++ }
        $1 == "nodeid:" { p = $2; sub(":", "", p); st[link, p] = $3 }
        END {
            if (links != nl) exit 1
            for (l = 0; l < nl; l++)
                for (k = 1; k <= n; k++)
                    if (st[l, peers[k]] != "connected") exit 1
        }'
}

# tb_wait_links_settled [S]: wait until every link between running hosts is
# connected, and then until the last link came up S (default 8) seconds ago.
# knet declares a link down only after knet_ping_timeout x 10 right after it
# came up, shrinking to knet_ping_timeout over the next pings: a link lost
# before that outlasts the token and costs a new ring (same members).
tb_wait_links_settled() {
    local s=${1:-8} i line stamp t age wait=0 end
    end=$(($(date +%s) + ${TB_WAIT%.*}))
    for ((i = 1; i <= $(tb__nhosts); i++)); do
        [ "$(tb__state "$i")" = up ] || continue
        until tb_links_up "$i"; do
            if [ "$(date +%s)" -ge "$end" ]; then
                tb__err "host $i: links not all connected after ${TB_WAIT}s"
                tb_exec "$i" corosync-cfgtool -s >&2
                return 1
            fi
            sleep 0.1
        done
    done
    for ((i = 1; i <= $(tb__nhosts); i++)); do
        [ "$(tb__state "$i")" = up ] || continue
        line=$(grep -a 'link: [0-9]* is up' "$(tb_log "$i")" 2>/dev/null | tail -n 1)
        [ -n "$line" ] || continue
        stamp=$(echo "$line" | awk '{ print $1, $2, $3 }')
        t=$(date -d "$stamp" +%s.%3N 2>/dev/null) || continue
        age=$(tb__ms_since "$t")
        [ $((s * 1000 - age)) -gt "$wait" ] && wait=$((s * 1000 - age))
    done
    [ "$wait" -gt 0 ] && sleep "$(awk -v w="$wait" 'BEGIN { printf "%.3f", w / 1000 }')"
    return 0
}

# Epoch seconds (ms) of the last "A new membership (...) was formed" line.
# corosync 3.1 (timestamp: hires) writes e.g.
#   Nov 26 14:20:01.123 [1234] h1 corosync notice  [TOTEM ] A new membership (1.1a) was formed. Members joined: 2
# The log has no year: take this year, or last year if that is in the future.
tb_membership_time() {
    local log line stamp t now
    log=$(tb_log "$1") || return 1
    line=$(grep -a 'A new membership (.*) was formed' "$log" 2>/dev/null | tail -n 1)
    [ -n "$line" ] || { tb__err "host $1: no membership line in $log"; return 1; }
    stamp=$(echo "$line" | awk '{ print $1, $2, $3 }')
    t=$(date -d "$stamp" +%s.%3N 2>/dev/null) || { tb__err "cannot parse '$stamp'"; return 1; }
    now=$(date +%s)
    if [ "${t%.*}" -gt $((now + 86400)) ]; then
        t=$(date -d "$stamp $(($(date +%Y) - 1))" +%s.%3N) || return 1
    fi
    echo "$t"
}

tb_fault_time() {
    local i
    i=$(tb__host "$1") || return 1
    cat "$TB_DIR/h$i/fault_time"
}

# ---------------------------------------------------------------- faults

# SIGKILL every process of network namespace NS until none is left.
tb__kill_ns() {
    local ns=$1 n pids
    for ((n = 0; n < 100; n++)); do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -z "$pids" ] && return 0
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        sleep 0.05
    done
    tb__err "processes left in $ns: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
    return 1
}

tb_cut() {
    local i l
    i=$(tb__host "$1") || return 1
    tb_now >"$TB_DIR/h$i/fault_time"
    for ((l = 0; l < $(tb__nlinks); l++)); do tb__port_set "$i" "$l" down || return 1; done
    [ "$(tb__state "$i")" = crashed ] || tb__set_state "$i" cut
}

tb_crash() {
    local i
    i=$(tb__host "$1") || return 1
    tb_cut "$i" || return 1
    tb__set_state "$i" crashed
    tb__kill_ns "rais-h$i"
    rm -f "$TB_DIR/h$i/anchor.pid" "$TB_DIR/h$i/corosync.pid"
}

tb_uncut() {
    local i l
    i=$(tb__host "$1") || return 1
    if [ "$(tb__state "$i")" = crashed ]; then
        tb__err "host $i crashed: use tb_restart"
        return 1
    fi
    for ((l = 0; l < $(tb__nlinks); l++)); do tb__port_set "$i" "$l" up || return 1; done
    tb__set_state "$i" up
    [ "${2:-}" = --no-wait ] && return 0
    tb_wait_all --after "$(cat "$TB_DIR/h$i/fault_time" 2>/dev/null || echo 0)"
}

tb_cut_link() {
    local i
    i=$(tb__host "$1") || return 1
    [ "$2" -lt "$(tb__nlinks)" ] 2>/dev/null || { tb__err "no link '$2'"; return 1; }
    tb__port_set "$i" "$2" down
}

tb_uncut_link() {
    local i
    i=$(tb__host "$1") || return 1
    [ "$2" -lt "$(tb__nlinks)" ] 2>/dev/null || { tb__err "no link '$2'"; return 1; }
    tb__port_set "$i" "$2" up
}

tb_restart() {
    local i l after keep=0
    i=$(tb__host "$1") || return 1
    [ "${2:-}" = --keep-net ] && keep=1
    after=$(cat "$TB_DIR/h$i/fault_time" 2>/dev/null || echo 0)
    if [ "$(tb__state "$i")" = crashed ] || ! tb__anchor_pid "$i" >/dev/null; then
        tb__kill_ns "rais-h$i" || return 1
        if [ $keep = 0 ]; then
            # A reboot: a fresh network namespace (same MACs and addresses:
            # whatever a test added, addresses, routes, sysctls, is gone),
            # a fresh /run, the same /etc/corosync, /var/lib and /var/log.
            ip netns del "rais-h$i" 2>/dev/null
            tb__host_net_create "$i" || { tb__err "host $i: network"; return 1; }
        else
            for ((l = 0; l < $(tb__nlinks); l++)); do tb__port_set "$i" "$l" up || return 1; done
        fi
        tb__anchor_start "$i" || return 1
    else
        for ((l = 0; l < $(tb__nlinks); l++)); do tb__port_set "$i" "$l" up || return 1; done
    fi
    tb__set_state "$i" up
    [ -e "$TB_DIR/corosync" ] || return 0
    tb_start "$i" || return 1
    tb_wait_all --after "$after"
}

# ---------------------------------------------------------------- create

tb_create() {
    local n="" links=1 token=1000 start=1 i l t0 extra=()
    local timeout=$TB_WAIT
    while [ $# -gt 0 ]; do
        case $1 in
            --links) links=$2; shift 2 ;;
            --links=*) links=${1#*=}; shift ;;
            --token) token=$2; shift 2 ;;
            --token=*) token=${1#*=}; shift ;;
            --totem) extra+=("$2"); shift 2 ;;
            --no-corosync) start=0; shift ;;
            --timeout) timeout=$2; shift 2 ;;
            [0-9]*) n=$1; shift ;;
            *) tb__fatal "tb_create: unknown argument '$1'" ;;
        esac
    done
    case $n in ''|*[!0-9]*) tb__fatal "tb_create: number of hosts missing" ;; esac
    if [ "$n" -lt 1 ] || [ "$n" -gt 64 ]; then tb__fatal "tb_create: 1..64 hosts, not $n"; fi
    case $links in 1|2) ;; *) tb__fatal "tb_create: --links 1 or 2, not '$links'" ;; esac
    case $token in ''|*[!0-9]*) tb__fatal "tb_create: bad --token '$token'" ;; esac

    tb_require
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -Eq '^rais-(br|cl|h[0-9]+)$'; then
        tb__fatal "a testbed is already running (rais-* namespaces exist);" \
            "only one may run at a time. Leftovers? run: $(tb__self) destroy"
    fi
    if [ -e "$TB_DIR" ]; then
        [ -e "$TB_DIR/.rais-testbed" ] || tb__fatal "$TB_DIR exists and is not a testbed dir"
        rm -rf --one-file-system "$TB_DIR" || tb__fatal "cannot remove old $TB_DIR"
    fi
    # Keep an EXIT trap the test set before (it runs after tb_destroy).
    local prev
    prev=$(trap -p EXIT)
    if [ -n "$prev" ] && [[ $prev != *tb__on_exit* ]]; then
        eval "set -- $prev"
        TB__PREV_EXIT=$3
    fi
    trap 'tb__on_exit' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    t0=$(tb_now)
    if ! mkdir -p "$TB_DIR" || ! : >"$TB_DIR/.rais-testbed"; then
        tb__fatal "cannot create $TB_DIR"
    fi
    echo "$n" >"$TB_DIR/nhosts"
    echo "$links" >"$TB_DIR/nlinks"
    echo "$token" >"$TB_DIR/token"
    printf '%s\n' "${extra[@]}" >"$TB_DIR/totem-extra"

    # The bridge namespace: no addresses, no IPv6, bridges without STP.
    ip netns add "$TB_BR" || tb__fatal "ip netns add $TB_BR failed"
    ip netns exec "$TB_BR" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6;
                                  echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6' ||
        tb__fatal "cannot disable IPv6 in $TB_BR"
    ip -n "$TB_BR" link set lo up
    for ((l = 0; l < links; l++)); do
        ip -n "$TB_BR" link add "br$l" type bridge stp_state 0 forward_delay 0 \
            mcast_snooping 0 || tb__fatal "cannot create bridge br$l"
        ip -n "$TB_BR" link set "br$l" up || tb__fatal "br$l up"
    done

    # The client.
    ip netns add "$TB_CL" || tb__fatal "ip netns add $TB_CL failed"
    ip -n "$TB_CL" link set lo up
    if ! { ip -n "$TB_BR" link add clp0 type veth peer name eth0 netns "$TB_CL" &&
        ip -n "$TB_CL" link set eth0 address 02:52:00:00:00:fa &&
        ip -n "$TB_BR" link set clp0 master br0 up &&
        ip -n "$TB_CL" addr add "$TB_CLIENT_IP/24" dev eth0 &&
        ip -n "$TB_CL" addr add "$TB_CLIENT_IP6/64" dev eth0 nodad &&
        ip -n "$TB_CL" link set eth0 up; }; then
        tb__fatal "client network"
    fi

    for ((i = 1; i <= n; i++)); do
        tb__host_dirs "$i" || tb__fatal "host $i: directories"
        tb__host_net_create "$i" || tb__fatal "host $i: network"
        tb__anchor_start "$i" || tb__fatal "host $i: anchor"
        tb__write_conf "$i" || tb__fatal "host $i: corosync.conf"
        tb__set_state "$i" up
    done
    if [ "$start" = 1 ]; then
        tb_exec 1 corosync -t >"$TB_DIR/corosync-t.out" 2>&1 ||
            tb__fatal "corosync -t rejects the configuration: $(cat "$TB_DIR/corosync-t.out")"
        rm -f "$TB_DIR/h1/fs/var/log/corosync/corosync.log"   # -t logs there too
        for ((i = 1; i <= n; i++)); do
            tb_start "$i" || tb__fatal "host $i: corosync did not start"
        done
        tb_wait_all "$timeout" || tb__fatal "the cluster did not form"
        tb__detect_ms >/dev/null
    fi
    tb__say "$n hosts, $links link(s), token $token ms: up in $(awk "BEGIN { printf \"%.2f\", $(tb_now) - $t0 }") s ($TB_DIR)"
}

# ---------------------------------------------------------------- destroy

tb__on_exit() {
    local rc=$?
    tb_destroy
    if [ -n "${TB__PREV_EXIT:-}" ]; then
        eval "$TB__PREV_EXIT"
    fi
    exit "$rc"
}

tb_destroy() {
    local ns all="" rc=0
    all=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^rais-(br|cl|h[0-9]+)$')
    for ns in $all; do
        tb__kill_ns "$ns" || rc=1
    done
    for ns in $all; do
        ip netns del "$ns" 2>/dev/null || { tb__err "cannot delete $ns"; rc=1; }
    done
    if [ -e "$TB_DIR/.rais-testbed" ]; then
        rm -rf --one-file-system "$TB_DIR" || rc=1
    fi
    return $rc
}

tb__self() {
    echo "${BASH_SOURCE[0]:-tests/cluster/testbed.sh}"
}

# Command line use: testbed.sh destroy
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case ${1:-} in
        destroy)
            [ "$(id -u)" = 0 ] || { tb__err "needs root"; exit 1; }
            tb_destroy
            exit
            ;;
        *)
            echo "usage: $0 destroy    (or source it from a test script)" >&2
            exit 2
            ;;
    esac
fi
