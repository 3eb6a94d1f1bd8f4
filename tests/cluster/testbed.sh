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
# With --pacemaker, each host also runs Pacemaker, and a "fence server" (a
# loop in the root namespace, child of the test's shell) carries out what
# tests/cluster/fence_raistest asks from inside a host: off/reboot = tb_crash.
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
# Pacemaker (tb_create --pacemaker; Pacemaker 2.1.5, pcs 0.11.5, no systemd
# here). Findings:
# - pacemakerd always runs in the foreground (-f is ignored). It is started as
#   `env -i PATH=... PCMK_logfile=/var/log/pacemaker/pacemaker.log
#   PCMK_logfacility=none pacemakerd` (Debian's /etc/default/pacemaker sets
#   nothing else), via tb_spawn. It creates /run/crm itself (pacemaker-execd
#   /run/resource-agents) and chowns the host's /var/lib/pacemaker to
#   hacluster; cib/ pengine/ blackbox/ cores/ must be hacluster:haclient 0750.
#   It retries for a while when corosync does not answer yet; tb_pcmk_start
#   waits for corosync's IPC first anyway.
# - DANGER: Pacemaker's panic (a child exiting CRM_EX_PANIC, fence-reaction=
#   panic, PCMK_fail_fast) writes /proc/sysrq-trigger and calls
#   reboot(RB_AUTOBOOT): with no PID namespace that reboots THIS machine.
#   Every command in a host runs under `setpriv --bounding-set=-sys_boot`
#   (reboot() gets EPERM) and /proc/sysrq-trigger is masked in the hosts.
# - Cold start: the controllers wait dc-deadtime (default 20 s) + ~1 s in
#   S_PENDING before electing a DC: 22 s for 2 to 4 hosts. The property must
#   be in the CIB before Pacemaker starts (a `pcs property set` afterwards is
#   too late), so every host starts from a seeded cib.xml (cibadmin --empty +
#   CIB_file=... crm_attribute; pacemaker-based accepts it without a .sig,
#   with a warning) with dc-deadtime=2s and stonith-enabled=false: 4 hosts
#   online with a DC in ~4.4 s (dc-deadtime=1s: ~3.1 s, 500ms: ~2.6 s, more
#   election races). election-timeout plays no part.
# - A crash, 4 hosts, token 1000: corosync forms the new membership
#   4.7-5.0 s later (with 4 nodes the token is 1000 + 2 x token_coefficient
#   650 = 2300 ms, consensus 2760 ms; with --totem 'token_coefficient: 0':
#   ~2.1 s). Pacemaker's DC then runs the scheduler after 0.1-1.2 s
#   (controld sleeps a hard-coded 1 s when peer CIB updates are still
#   pending), the fence (fence_raistest -> fence server -> tb_crash) takes
#   ~0.1 s, IPaddr2's start ~0.1 s: the address answers 5-6 s after the
#   crash (2.4-2.7 s with token_coefficient 0). The DC's crash costs about
#   the same (the election is immediate). A restarted host is online in
#   Pacemaker 2.7-3.0 s after tb_restart began.
# - pcs without pcsd: everything that edits or reads the CIB works locally
#   (status, resource create/update/describe/move/delete, property set,
#   constraint, stonith create/fence, node standby/unstandby, alert create,
#   config, quorum status). `pcs status` ends with "Daemon Status:
#   inactive/enabled" (it asks systemctl). Needing pcsd: host auth, cluster
#   setup/node add/node remove/sync, pcsd status. Never use pcs cluster
#   start/stop/enable/disable/kill: they drive the machine's service manager
#   (shared /etc), not the host; use tb_pcmk_start / tb_pcmk_stop / tb_crash.
#   `pcs stonith fence hI` returns only after the membership change (~5 s).
# - With stonith-enabled=true a crashed or cut host is fenced (crashed)
#   0.1-1.2 s after the membership change; restart it after the fence
#   (tb_wait_fenced), or the fence crashes the restarted host again.
# - The fence agent cannot be installed for real: /usr/sbin and
#   /usr/lib/ocf/resource.d of each host are read-only overlays
#   (lowerdir=$TB_DIR/install/P:INSTALL_DIR/P:P), so pacemaker-fenced finds
#   /usr/sbin/fence_raistest (a wrapper that sets TB_DIR) and heartbeat's
#   agents stay visible. Absolute symlinks in a lower dir resolve inside the
#   host (a rebuild is picked up); relative ones would resolve under /usr/sbin.
# - ping is iputils-ping (not installed with iputils-arping).
#
# Processes started here are children of the calling shell (disowned, so bash
# neither waits for them nor reports their death); call tb_create, tb_restart
# and tb_start from the test's main shell, not from $(...) or a pipeline.
#
# Functions (HOST is I, hI or rais-hI; tb_exec also takes cl and br):
#   tb_create N [--links 1|2] [--token MS] [--totem 'key: value']...
#             [--no-corosync] [--timeout S] [--pacemaker ...] [--install DIR]
#                        build the testbed, start corosync on every host and
#                        wait until every host sees N members. Registers
#                        tb_destroy on EXIT (an EXIT trap set before is kept
#                        and runs after it; one set after replaces it, so it
#                        must call tb_destroy). Any failure exits 99
#                        (automake's "hard error"): a cluster test that
#                        cannot run fails, it never skips.
#   tb_exec HOST CMD...  run CMD in HOST's namespaces (cwd kept), without CAP_SYS_BOOT
#   tb_spawn HOST OUT CMD...  same in the background, output to OUT; sets
#                        TB_PID to CMD's own pid
#   tb_client CMD...     run CMD in the client namespace
#   tb_start I           start corosync on host I (no wait), and Pacemaker
#                        where it ran (after corosync's IPC answers)
#   tb_crash I           ports down, then SIGKILL every process of host I
#   tb_cut I             all of host I's bridge ports down
#   tb_uncut I [--no-wait]  ports up, wait for the full membership
#   tb_cut_link I L / tb_uncut_link I L   one link's port down / up
#   tb_restart I [--keep-net]  after a crash: a rebooted host (a new network
#                        namespace with the base addresses, unless
#                        --keep-net; new mount namespace and /run; same
#                        /etc/corosync, /var/lib, /var/log), corosync started;
#                        otherwise ports up and corosync started if needed.
#                        Waits until every running host sees every other
#                        (and, with Pacemaker, until tb_wait_pcmk).
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
#   tb_destroy           kill the fence server and every process in every
#                        rais-* namespace, delete the namespaces and the work
#                        dir. Idempotent.
#
# Pacemaker, fencing and the install overlay:
#   tb_create ... --pacemaker [--pcmk-property NAME=VALUE]... [--pcmk-timeout S]
#             [--install DIR]
#                        --pacemaker: every host starts from a CIB with
#                        dc-deadtime=2s stonith-enabled=false (and the
#                        --pcmk-property ones); after corosync formed, start
#                        the fence server and Pacemaker on every host, wait
#                        (S, default 60) until every host sees all N online
#                        and one DC; sets TB_PCMK_UP_MS (also in
#                        $TB_DIR/pcmk-up-ms). --install DIR (or TB_INSTALL):
#                        a staging tree (DIR/usr/sbin/raisd, DIR/usr/lib/ocf/
#                        resource.d/rais/servicegroup, ...) overlaid read-only
#                        on /usr/sbin, /usr/bin, /usr/local/sbin and
#                        /usr/lib/ocf/resource.d in every host
#                        (TB_OVERLAY_POINTS). With --pacemaker,
#                        /usr/sbin/fence_raistest is always there.
#   tb_stage_install DIR SRCROOT BUILDDIR  fill DIR with absolute symlinks:
#                        raisd, raisctl (BUILDDIR[/src]), ocf/servicegroup
#                        (BUILDDIR, else SRCROOT), fence_raistest
#   tb_pcmk_start I      start pacemakerd on host I (no wait); tb_start and
#                        tb_restart do it where Pacemaker ran, and tb_restart
#                        then waits (tb_wait_pcmk)
#   tb_pcmk_stop I [S]   stop it cleanly (SIGTERM, wait) and not restart it
#   tb_wait_pcmk [S]     every up host running Pacemaker sees exactly those
#                        hosts online, and one DC (prints logs on failure);
#   tb_pcmk_online I     nodes online as host I's crm_mon sees them ("h1 h2")
#   tb_pcmk_dc I         the DC's name as host I sees it (empty: none)
#   tb_pcmk_pid I / tb_pcmk_log I   pacemakerd's pid / host I's pacemaker.log
#   tb_fence_log         path of the fence log: one line per request and per
#                        outcome: "EPOCH.ms FROM ACTION TARGET request" and
#                        "EPOCH.ms FROM ACTION TARGET done rc=N NOTE"
#   tb_fence_time I      epoch.ms of the last successful off/reboot of host I
#   tb_wait_fenced I [--after EPOCH] [S]  wait for one after EPOCH (default:
#                        host I's fault time); prints its time
#
# Environment: TB_DIR (work dir, default /tmp/rais-testbed), TB_WAIT (default
# timeout of the waits, s, default 30), TB_EXTRA_PRIVATE_DIRS (more
# directories to make per-host), TB_QUIET=1 (less chatter), TB_INSTALL
# (default --install DIR; TB_OVERLAY is read too), TB_OVERLAY_POINTS,
# TB_PCMK_ENV (more NAME=VALUE for pacemakerd, e.g. PCMK_debug=yes).

TB_DIR=${TB_DIR:-/tmp/rais-testbed}
TB_WAIT=${TB_WAIT:-30}
TB_BR=rais-br
TB_CL=rais-cl
TB_CLIENT_IP=198.18.0.250
TB_CLIENT_IP6=2001:2::250
TB_CLUSTER_NAME=rais-test
# This file, absolute: the fence server runs it, the fence wrapper names its
# neighbour fence_raistest (the test may change directory after sourcing).
TB__SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" 2>/dev/null && pwd)/$(basename "${BASH_SOURCE[0]}")
# Where the install overlay may cover the machine's tree (each must exist).
TB_OVERLAY_POINTS=${TB_OVERLAY_POINTS:-/usr/sbin /usr/bin /usr/local/sbin /usr/lib/ocf/resource.d}
# Commands in a host never get CAP_SYS_BOOT: Pacemaker's "panic" (a daemon
# that learns it was fenced with fence-reaction=panic, a child exiting with
# CRM_EX_PANIC, PCMK_fail_fast) calls reboot(RB_AUTOBOOT), which would reboot
# this whole machine (no PID namespace here). Without the capability it
# fails with EPERM and pacemakerd just exits.
TB_NOBOOT=(setpriv --inh-caps=-sys_boot --bounding-set=-sys_boot)
# The initial CIB's cluster properties (tb_create --pcmk-property overrides):
# dc-deadtime bounds how long a starting controller waits for a DC before it
# calls an election (default 20 s: the bulk of a cold start).
TB_PCMK_DEFAULTS=(dc-deadtime=2s stonith-enabled=false)

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
    for c in ip nsenter unshare mount setpriv corosync corosync-quorumtool corosync-cfgtool \
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
    if ! tb__corosync_pid "$i" >/dev/null; then
        tb__anchor_pid "$i" >/dev/null || { tb__err "host $i is down"; return 1; }
        echo "--- $(tb_now) start" >>"$hd/corosync.out"
        tb_spawn "$i" "$hd/corosync.out" corosync -f || return 1
        echo "$TB_PID" >"$hd/corosync.pid"
        : >"$TB_DIR/corosync"     # corosync in use: tb_restart starts it again
    fi
    # Pacemaker too where it ran (tb_pcmk_start; tb_pcmk_stop ends that).
    if tb__pcmk_used && [ -e "$hd/pcmk_wanted" ]; then
        tb_pcmk_start "$i" || return 1
    fi
    return 0
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

# tb__tails LOG OUT NAME: the tails of a daemon's log and of its stdout/stderr.
tb__tails() {
    echo "  $(basename "$1") (tail):"
    tail -n 15 "$1" 2>/dev/null | sed 's/^/  | /'
    if [ -s "$2" ]; then
        echo "  $3 stdout/stderr (tail):"
        tail -n 5 "$2" | sed 's/^/  | /'
    fi
}

tb__diag() { # I: what host I looks like, for error messages
    local i=$1 hd="$TB_DIR/h$1"
    {
        echo "----- host $i (state $(tb__state "$i"), corosync pid $(tb__corosync_pid "$i" || echo none))"
        tb__qstatus "$i" | sed 's/^/  | /'
        tb__tails "$hd/fs/var/log/corosync/corosync.log" "$hd/corosync.out" corosync
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
            tb__ports_gone "$i" || return 1
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
    tb_wait_all --after "$after" || return 1
    if tb__pcmk_used && [ -e "$TB_DIR/h$i/pcmk_wanted" ]; then
        tb_wait_pcmk "$(tb__pcmk_timeout)" || return 1
    fi
    return 0
}

# ---------------------------------------------------------------- install overlay

# tb_stage_install DIR SRCROOT BUILDDIR: make DIR a staging tree of rais's
# installed files, as symbolic links (absolute, so that they resolve inside
# the hosts too, and a rebuild is picked up without staging again):
#   DIR/usr/sbin/raisd, DIR/usr/sbin/raisctl     <- BUILDDIR (or BUILDDIR/src)
#   DIR/usr/lib/ocf/resource.d/rais/servicegroup <- BUILDDIR/ocf/servicegroup
#                                                   (else SRCROOT/ocf/servicegroup)
#   DIR/usr/sbin/fence_raistest                  <- SRCROOT/tests/cluster
# What is not found is reported and left out (status 0). Then pass DIR to
# tb_create --install DIR (or TB_INSTALL=DIR).
tb_stage_install() {
    local dir=$1 src=$2 build=$3 f c found sb
    if [ -z "$dir" ] || [ -z "$src" ] || [ -z "$build" ]; then
        tb__err "usage: tb_stage_install DIR SRCROOT BUILDDIR"
        return 2
    fi
    src=$(cd "$src" && pwd) || return 1
    build=$(cd "$build" && pwd) || return 1
    mkdir -p "$dir/usr/sbin" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    for f in raisd raisctl; do
        found=""
        for c in "$build/$f" "$build/src/$f" "$build/src/daemon/$f" "$build/src/$f/$f"; do
            if [ -f "$c" ] && [ -x "$c" ]; then found=$c; break; fi
        done
        if [ -n "$found" ]; then
            ln -sfn "$found" "$dir/usr/sbin/$f" || return 1
        else
            tb__say "tb_stage_install: no $f built in $build: not staged"
        fi
    done
    found=""
    for c in "$build/ocf/servicegroup" "$src/ocf/servicegroup"; do
        if [ -f "$c" ]; then found=$c; break; fi
    done
    if [ -n "$found" ]; then
        mkdir -p "$dir/usr/lib/ocf/resource.d/rais" || return 1
        ln -sfn "$found" "$dir/usr/lib/ocf/resource.d/rais/servicegroup" || return 1
        [ -x "$found" ] || tb__say "tb_stage_install: $found is not executable"
        # The generated agent runs @sbindir@/raisd: with another prefix than
        # /usr (e.g. /usr/local), stage the programs there too.
        # shellcheck disable=SC2016   # a literal ${RAISD:-...}
        sb=$(sed -n 's|^RAISD="${RAISD:-\(/.*\)/raisd}".*|\1|p' "$found" | head -n 1)
        if [ -n "$sb" ] && [ "$sb" != /usr/sbin ]; then
            mkdir -p "$dir$sb" || return 1
            for f in raisd raisctl; do
                if [ -L "$dir/usr/sbin/$f" ]; then
                    ln -sfn "$(readlink "$dir/usr/sbin/$f")" "$dir$sb/$f" || return 1
                fi
            done
            case " $TB_OVERLAY_POINTS " in
                *" $sb "*) ;;
                *) tb__say "tb_stage_install: the agent runs $sb/raisd: add $sb to TB_OVERLAY_POINTS" ;;
            esac
        fi
    else
        tb__say "tb_stage_install: no ocf/servicegroup in $build or $src: not staged"
    fi
    if [ -f "$src/tests/cluster/fence_raistest" ]; then
        ln -sfn "$src/tests/cluster/fence_raistest" "$dir/usr/sbin/fence_raistest" || return 1
    fi
    return 0
}

# tb__install_setup INSTALL_DIR: the testbed's own layer ($TB_DIR/install:
# the fence agent's wrapper) and $TB_DIR/overlays, read by each anchor.
tb__install_setup() {
    local inst=$1 p lower f
    mkdir -p "$TB_DIR/install/usr/sbin" || return 1
    # pacemaker-fenced runs agents with a clean environment: the wrapper
    # tells the agent where the testbed is.
    cat >"$TB_DIR/install/usr/sbin/fence_raistest" <<EOW || return 1
#!/bin/sh
# Written by testbed.sh: the testbed's fence agent (see fence_raistest).
TB_DIR='$TB_DIR'
export TB_DIR
exec /bin/bash '$(dirname "$TB__SELF")/fence_raistest' "\$@"
EOW
    chmod 0755 "$TB_DIR/install/usr/sbin/fence_raistest" || return 1
    if [ -n "$inst" ]; then
        case $inst in
            /*) ;;
            *) inst=$(cd "$inst" 2>/dev/null && pwd) || { tb__err "--install: no directory '$1'"; return 1; } ;;
        esac
        [ -d "$inst" ] || { tb__err "--install: no directory '$inst'"; return 1; }
        case $inst in
            *[:,[:space:]]*) tb__err "--install: the path may not contain ':', ',' or blanks: '$inst'"; return 1 ;;
        esac
        # Files outside the overlay points would silently not be visible.
        while IFS= read -r f; do
            local ok=0
            for p in $TB_OVERLAY_POINTS; do
                case ${f#"$inst"} in "$p"/*) ok=1 ;; esac
            done
            [ $ok = 1 ] || tb__say "--install: ${f#"$inst"} is outside the overlay points ($TB_OVERLAY_POINTS): not visible in the hosts"
        done < <(find "$inst" \( -type f -o -type l \) 2>/dev/null)
    fi
    : >"$TB_DIR/overlays" || return 1
    for p in $TB_OVERLAY_POINTS; do
        lower=""
        [ -d "$TB_DIR/install$p" ] && lower="$TB_DIR/install$p"
        if [ -n "$inst" ] && [ -d "$inst$p" ]; then lower="${lower:+$lower:}$inst$p"; fi
        [ -n "$lower" ] || continue
        [ -d "$p" ] || { tb__err "$p does not exist on this machine: cannot overlay it"; return 1; }
        echo "$p $lower:$p" >>"$TB_DIR/overlays"
    done
    echo "$inst" >"$TB_DIR/install-dir"
}

# ---------------------------------------------------------------- pacemaker

tb__pcmk_used() { [ -e "$TB_DIR/pacemaker" ]; }

tb__pcmk_pid() {
    local p
    p=$(cat "$TB_DIR/h$1/pacemakerd.pid" 2>/dev/null) || return 1
    [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = pacemakerd ] || return 1
    [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$(tb__netns_id "rais-h$1")" ] || return 1
    echo "$p"
}

tb_pcmk_pid() { local i; i=$(tb__host "$1") || return 1; tb__pcmk_pid "$i"; }
tb_pcmk_log() { local d; d=$(tb_hostdir "$1") || return 1; echo "$d/fs/var/log/pacemaker/pacemaker.log"; }

# The CIB every host starts with (NAME=VALUE cluster properties).
tb__pcmk_seed() {
    local f="$TB_DIR/cib-seed.xml" kv
    cibadmin --empty >"$f" 2>"$TB_DIR/cib-seed.err" || return 1
    for kv in "$@"; do
        case $kv in
            ?*=*) ;;
            *) tb__err "not a NAME=VALUE property: '$kv'"; return 1 ;;
        esac
        CIB_file=$f crm_attribute --type crm_config --name "${kv%%=*}" \
            --update "${kv#*=}" >>"$TB_DIR/cib-seed.err" 2>&1 || return 1
    done
}

# Host I's Pacemaker state: the seeded CIB, an authkey.
tb__pcmk_host_prepare() {
    local fs="$TB_DIR/h$1/fs" d
    for d in /var/lib/pacemaker/cib /var/lib/pacemaker/pengine \
             /var/lib/pacemaker/blackbox /var/lib/pacemaker/cores; do
        if [ ! -d "$fs$d" ]; then
            install -d -o hacluster -g haclient -m 0750 "$fs$d" || return 1
        fi
    done
    find "$fs/var/lib/pacemaker/cib" "$fs/var/lib/pacemaker/pengine" -mindepth 1 -delete || return 1
    install -o hacluster -g haclient -m 0600 "$TB_DIR/cib-seed.xml" \
        "$fs/var/lib/pacemaker/cib/cib.xml" || return 1
    if [ ! -s "$fs/etc/pacemaker/authkey" ]; then
        if [ ! -s "$TB_DIR/authkey" ]; then
            dd if=/dev/urandom of="$TB_DIR/authkey" bs=4096 count=1 2>/dev/null || return 1
        fi
        install -o root -g haclient -m 0640 "$TB_DIR/authkey" "$fs/etc/pacemaker/authkey" || return 1
    fi
}

# tb_pcmk_start I: start pacemakerd on host I (no wait for it to join), and
# mark it wanted there (tb_start / tb_restart start it again after a crash).
tb_pcmk_start() {
    local i hd n
    i=$(tb__host "$1") || return 1
    hd="$TB_DIR/h$i"
    tb__pcmk_used || { tb__err "this testbed runs no Pacemaker (tb_create --pacemaker)"; return 1; }
    : >"$hd/pcmk_wanted"
    tb__pcmk_pid "$i" >/dev/null && return 0
    tb__anchor_pid "$i" >/dev/null || { tb__err "host $i is down"; return 1; }
    # pacemakerd exits when corosync does not answer: wait for its IPC.
    for ((n = 0; n < 100; n++)); do
        tb_exec "$i" corosync-cmapctl -g totem.cluster_name >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "--- $(tb_now) start" >>"$hd/pacemaker.out"
    # The environment of Debian's service (/etc/default/pacemaker is all
    # comments), logging to the host's own /var/log/pacemaker, no syslog.
    # shellcheck disable=SC2086
    tb_spawn "$i" "$hd/pacemaker.out" env -i \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
        ${TB_PCMK_ENV:-} pacemakerd || return 1
    echo "$TB_PID" >"$hd/pacemakerd.pid"
}

# tb_pcmk_stop I [TIMEOUT_S]: stop Pacemaker on host I cleanly (SIGTERM to
# pacemakerd: resources stop, the node leaves) and no longer want it there.
tb_pcmk_stop() {
    local i p t=${2:-60} end
    i=$(tb__host "$1") || return 1
    rm -f "$TB_DIR/h$i/pcmk_wanted"
    p=$(tb__pcmk_pid "$i") || return 0
    kill -TERM "$p" 2>/dev/null
    end=$(($(date +%s) + t))
    while [ -e "/proc/$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = pacemakerd ]; do
        if [ "$(date +%s)" -ge "$end" ]; then
            tb__err "host $i: pacemakerd still running ${t}s after SIGTERM"
            return 1
        fi
        sleep 0.1
    done
    rm -f "$TB_DIR/h$i/pacemakerd.pid"
}

# "DC QUORATE NODE..." as host I's Pacemaker sees it: the DC's name (- when
# none), yes/no, the nodes online. Empty when crm_mon does not answer.
tb__pcmk_view() {
    tb__anchor_pid "$1" >/dev/null || return 1
    tb_exec "$1" timeout 5 crm_mon --output-as=xml 2>/dev/null | awk '
        function attr(name,   r) {
            if (match($0, " " name "=\"[^\"]*\"")) {
                r = substr($0, RSTART + length(name) + 3, RLENGTH - length(name) - 4)
                return r
            }
            return ""
        }
        /<current_dc / {
            seen = 1
            dc = (attr("present") == "true") ? attr("name") : "-"
            q = (attr("with_quorum") == "true") ? "yes" : "no"
        }
        /<nodes>/ { innodes = 1; next }
        /<\/nodes>/ { innodes = 0 }
        innodes && /<node / && attr("online") == "true" { on = on " " attr("name") }
        END { if (seen) print dc, q on }'
}

tb_pcmk_online() { # I: the nodes online as host I sees them, one line
    local i v
    i=$(tb__host "$1") || return 1
    v=$(tb__pcmk_view "$i")
    # shellcheck disable=SC2086
    set -- $v
    shift 2 2>/dev/null
    echo "$*"
}

tb_pcmk_dc() { # I: the DC's node name as host I sees it (empty: none)
    local i v
    i=$(tb__host "$1") || return 1
    v=$(tb__pcmk_view "$i")
    v=${v%% *}
    [ "$v" = - ] && v=""
    echo "$v"
}

tb__pcmk_diag() { # I
    local i=$1 hd="$TB_DIR/h$1"
    {
        echo "----- host $i: pacemakerd pid $(tb__pcmk_pid "$i" || echo none), view: $(tb__pcmk_view "$i")"
        tb__tails "$hd/fs/var/log/pacemaker/pacemaker.log" "$hd/pacemaker.out" pacemakerd
    } >&2
}

# tb_wait_pcmk [TIMEOUT_S]: every host that is up and wants Pacemaker sees
# exactly those hosts online and one DC, the same everywhere.
tb_wait_pcmk() {
    local t=${1:-$TB_WAIT} end i want="" ok v dc
    for ((i = 1; i <= $(tb__nhosts); i++)); do
        [ "$(tb__state "$i")" = up ] && [ -e "$TB_DIR/h$i/pcmk_wanted" ] && want="$want h$i"
    done
    end=$(($(date +%s%N) + ${t%.*} * 1000000000))
    while :; do
        ok=1 dc=""
        for i in $want; do
            v=$(tb__pcmk_view "${i#h}")
            # shellcheck disable=SC2086
            set -- $v
            if [ -z "${1:-}" ] || [ "$1" = - ]; then ok=0; break; fi
            [ -z "$dc" ] && dc=$1
            [ "$1" = "$dc" ] || { ok=0; break; }
            shift 2
            [ " $*" = "$want" ] || { ok=0; break; }
        done
        [ $ok = 1 ] && return 0
        [ "$(date +%s%N)" -ge "$end" ] && break
        sleep 0.2
    done
    tb__err "Pacemaker: not every host sees [$want ] online with one DC within ${t}s"
    for i in $want; do tb__pcmk_diag "${i#h}"; done
    return 1
}

# ---------------------------------------------------------------- fence server

# The fence server: a loop in the root namespace, a child of the test's
# shell (it exits when that shell is gone), that answers fence_raistest's
# requests ($TB_DIR/fence/req/ID: action=, target=, from= lines) in
# $TB_DIR/fence/res/ID (first line the exit status, then the output), and
# logs each request and its outcome to $TB_DIR/fence.log:
#   EPOCH.ms FROM ACTION TARGET request
#   EPOCH.ms FROM ACTION TARGET done rc=N NOTE
tb__fence_server_start() {
    local d="$TB_DIR/fence"
    mkdir -p "$d/req" "$d/res" "$d/tmp" || return 1
    chmod 0700 "$d" || return 1
    : >>"$TB_DIR/fence.log"
    [ -p "$d/tick" ] || mkfifo "$d/tick" || return 1
    TB_DIR=$TB_DIR TB_QUIET=1 bash "$TB__SELF" fence-server "$$" \
        </dev/null >>"$d/server.out" 2>&1 &
    echo "$!" >"$d/server.pid"
    disown "$!" 2>/dev/null
    return 0
}

tb__fence_server_pid() {
    local p
    p=$(cat "$TB_DIR/fence/server.pid" 2>/dev/null) || return 1
    [ -n "$p" ] && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q ' fence-server ' || return 1
    echo "$p"
}

tb__fence_log() { echo "$(tb_now) $*" >>"$TB_DIR/fence.log"; }

tb__fence_server() {
    local parent=$1 d="$TB_DIR/fence" fd f
    exec {fd}<>"$d/tick" || exit 1
    # Until the test's shell is gone: then this process has another parent
    # (`kill -0` is no test: a dead parent may stay a zombie for a while).
    while [ -d "$d/req" ] && tb__ppid_is "$parent"; do
        for f in "$d"/req/*; do
            [ -f "$f" ] && tb__fence_handle "$f"
        done
        # Sleep 100 ms without a fork: nobody ever writes to the FIFO.
        read -r -t 0.1 -u "$fd" _
    done
}

tb__ppid_is() { # PID: this shell's parent is PID (no fork)
    local want=$1 st
    read -r st <"/proc/$BASHPID/stat" || return 1
    st=${st##*) }
    # shellcheck disable=SC2086
    set -- $st
    [ "${2:-}" = "$want" ]
}

tb__fence_handle() {
    local f=$1 id k v action="" target="" from="" i="" j rc=1 out="" note="" st ft
    id=${f##*/}
    while IFS='=' read -r k v; do
        case $k in
            action) action=$v ;;
            target) target=$v ;;
            from) from=$v ;;
        esac
    done <"$f"
    rm -f "$f"
    tb__fence_log "${from:-?} ${action:-?} ${target:--} request"
    if [ -n "$target" ]; then
        i=$(tb__host "$target" 2>/dev/null) || i=""
    fi
    case $action in
        monitor) rc=0 note="server running" ;;
        list|list-status)
            rc=0
            for ((j = 1; j <= $(tb__nhosts); j++)); do
                if [ "$action" = list ]; then
                    out+="h$j"$'\n'
                elif [ "$(tb__state "$j")" = crashed ]; then
                    out+="h$j,,off"$'\n'
                else
                    out+="h$j,,on"$'\n'
                fi
            done ;;
        status|on|off|reboot)
            if [ -z "$i" ]; then
                rc=1 note="no such host"
            elif [ "$action" = on ]; then
                rc=0 note="nothing done"
            else
                st=$(tb__state "$i")
                if [ "$action" = status ]; then
                    if [ "$st" = crashed ]; then rc=2 note=off; else rc=0 note="on ($st)"; fi
                elif [ "$st" = crashed ]; then
                    rc=0 note="already crashed"
                else
                    # A cut host keeps the time it was cut as its fault time.
                    ft=""
                    [ "$st" = cut ] && ft=$(cat "$TB_DIR/h$i/fault_time" 2>/dev/null)
                    if tb_crash "$i"; then rc=0 note="crashed (was $st)"; else rc=1 note="crash failed"; fi
                    [ -n "$ft" ] && echo "$ft" >"$TB_DIR/h$i/fault_time"
                fi
            fi ;;
        *) rc=1 note="unsupported action" ;;
    esac
    printf '%s\n%s' "$rc" "$out" >"$TB_DIR/fence/tmp/$id.res"
    mv -f "$TB_DIR/fence/tmp/$id.res" "$TB_DIR/fence/res/$id"
    tb__fence_log "${from:-?} ${action:-?} ${target:--} done rc=$rc $note"
}

tb_fence_log() { echo "$TB_DIR/fence.log"; }

# tb_fence_time I: epoch.ms when the last off/reboot of host I was done
# (successfully); fails when there was none.
tb_fence_time() {
    local i
    i=$(tb__host "$1") || return 1
    awk -v h="h$i" '$5 == "done" && $6 == "rc=0" && ($3 == "off" || $3 == "reboot") && $4 == h { t = $1 }
        END { if (t == "") exit 1; print t }' "$TB_DIR/fence.log" 2>/dev/null
}

# tb_wait_fenced I [--after EPOCH] [TIMEOUT_S]: wait until host I was fenced
# (off/reboot done) after EPOCH (default: host I's last fault time) and print
# the time of the fence.
tb_wait_fenced() {
    local i after="" t=$TB_WAIT end ft
    i=$(tb__host "$1") || return 1
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --after) after=$2; shift 2 ;;
            *) t=$1; shift ;;
        esac
    done
    [ -n "$after" ] || after=$(cat "$TB_DIR/h$i/fault_time" 2>/dev/null || echo 0)
    end=$(($(date +%s%N) + ${t%.*} * 1000000000))
    while :; do
        ft=$(tb_fence_time "$i") &&
            awk -v a="$ft" -v b="$after" 'BEGIN { exit !(a > b) }' && { echo "$ft"; return 0; }
        [ "$(date +%s%N)" -ge "$end" ] && break
        sleep 0.1
    done
    tb__err "host $i was not fenced within ${t}s (after $after); fence log:"
    tail -n 10 "$TB_DIR/fence.log" >&2 2>/dev/null
    return 1
}

# ---------------------------------------------------------------- create

tb_create() {
    local n="" links=1 token=1000 start=1 i l t0 t1 extra=()
    local timeout=$TB_WAIT pcmk=0 install=${TB_INSTALL:-${TB_OVERLAY:-}} props=() ptimeout=60
    while [ $# -gt 0 ]; do
        case $1 in
            --pacemaker) pcmk=1; shift ;;
            --install) install=$2; shift 2 ;;
            --install=*) install=${1#*=}; shift ;;
            --pcmk-property) props+=("$2"); shift 2 ;;
            --pcmk-timeout) ptimeout=$2; shift 2 ;;
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
    case $ptimeout in ''|*[!0-9]*) tb__fatal "tb_create: bad --pcmk-timeout '$ptimeout'" ;; esac
    if [ "$pcmk" = 1 ] && [ "$start" = 0 ]; then
        tb__fatal "tb_create: --pacemaker needs corosync (not with --no-corosync)"
    fi

    tb_require
    if [ "$pcmk" = 1 ]; then
        local c missing=""
        for c in pacemakerd crm_mon cibadmin crm_attribute pcs mkfifo; do
            command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
        done
        [ -z "$missing" ] || tb__fatal "missing:$missing (install pacemaker pcs)"
        # Each host must get its own copy of these (tb__private_dirs).
        for c in /var/lib/pacemaker /var/log/pacemaker /etc/pacemaker; do
            [ -d "$c" ] || tb__fatal "$c does not exist on this machine (install pacemaker)"
        done
        id hacluster >/dev/null 2>&1 || tb__fatal "no user hacluster (install pacemaker)"
    fi
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
    echo "$ptimeout" >"$TB_DIR/pcmk-timeout"
    if [ "$pcmk" = 1 ] || [ -n "$install" ]; then
        tb__install_setup "$install" || tb__fatal "cannot set up the install overlay"
    fi
    if [ "$pcmk" = 1 ]; then
        # The defaults first: a --pcmk-property of the same name wins.
        tb__pcmk_seed "${TB_PCMK_DEFAULTS[@]}" "${props[@]}" ||
            tb__fatal "cannot write the initial CIB: $(cat "$TB_DIR/cib-seed.err" 2>/dev/null)"
    fi

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
        if [ "$pcmk" = 1 ]; then
            tb__pcmk_host_prepare "$i" || tb__fatal "host $i: Pacemaker directories"
        fi
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
    if [ "$pcmk" = 1 ]; then
        : >"$TB_DIR/pacemaker"    # Pacemaker in use: tb_start starts it too
        tb__fence_server_start || tb__fatal "cannot start the fence server"
        t1=$(tb_now)
        for ((i = 1; i <= n; i++)); do
            tb_pcmk_start "$i" || tb__fatal "host $i: pacemakerd did not start"
        done
        tb_wait_pcmk "$ptimeout" || tb__fatal "Pacemaker did not come up on $n hosts within ${ptimeout}s"
        TB_PCMK_UP_MS=$(tb__ms_since "$t1")
        echo "$TB_PCMK_UP_MS" >"$TB_DIR/pcmk-up-ms"
        tb__say "Pacemaker: $n hosts online, DC $(tb_pcmk_dc 1), in $(awk -v m="$TB_PCMK_UP_MS" 'BEGIN { printf "%.2f", m / 1000 }') s"
    fi
}

tb__pcmk_timeout() { cat "$TB_DIR/pcmk-timeout" 2>/dev/null || echo 60; }

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
    local ns all="" rc=0 p
    # The fence server first: it must not crash hosts while they go away.
    if p=$(tb__fence_server_pid); then
        kill -TERM "$p" 2>/dev/null
    fi
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
    echo "$TB__SELF"
}

# Command line use: testbed.sh destroy
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case ${1:-} in
        destroy)
            [ "$(id -u)" = 0 ] || { tb__err "needs root"; exit 1; }
            tb_destroy
            exit
            ;;
        fence-server)   # started by tb_create --pacemaker: fence-server PARENT_PID
            tb__fence_server "$2"
            exit
            ;;
        *)
            echo "usage: $0 destroy    (or source it from a test script)" >&2
            exit 2
            ;;
    esac
fi
