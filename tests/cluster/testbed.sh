#!/bin/bash
# shellcheck source-path=SCRIPTDIR
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
# The testbed is this file and its parts beside it, each sourced from here
# (by this file's own directory, wherever it is sourced from), one concern
# each; every function keeps its tb_ name whichever part holds it:
#
#   testbed.sh            globals, host names and state, tb_create, tb_destroy,
#                         the command line (destroy, fence-server)
#   testbed-net.sh        namespaces, veths, MACs, addresses; each host's anchor
#                         (private mount + UTS namespaces); tb_exec, tb_spawn
#   testbed-corosync.sh   corosync.conf, tb_start, membership and link views,
#                         the waits
#   testbed-pacemaker.sh  the seeded CIB, pacemakerd start/stop, crm_mon views,
#                         tb_wait_pcmk
#   testbed-faults.sh     cut, crash, uncut, link cuts, restart; the fence server
#   testbed-install.sh    tb_stage_install and the read-only install overlay
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
# Each host has an "anchor" process holding its private mount and UTS
# namespaces (its own /run, /dev/shm, /etc/corosync, /var/lib/...,
# /var/log/...): testbed-net.sh says what it mounts.
#
# `ip netns exec rais-hI CMD` does NOT reach host I's corosync or Pacemaker:
# libqb's IPC sockets are abstract (per network namespace) but its ring
# buffers are files in /dev/shm, which is private per host here (so that a
# crashed host leaves nothing behind): "Cannot initialize CMAP service".
# Always use tb_exec / tb_spawn. Likewise pcs and corosync read the host's
# /etc/corosync/corosync.conf under tb_exec (no /etc/netns needed).
#
# Processes started here are children of the calling shell (disowned, so bash
# neither waits for them nor reports their death); call tb_create, tb_restart
# and tb_start from the test's main shell, not from $(...) or a pipeline.
#
# Functions (HOST is I, hI or rais-hI; tb_exec also takes cl and br):
#   tb_create N [--links 1|2] [--token MS] [--totem 'key: value']...
#             [--profile NAME] [--no-corosync] [--timeout S] [--pacemaker ...]
#             [--install DIR]
#                        --profile NAME: the totem keys of the shipped
#                        examples/corosync-NAME.conf (e.g. fast; its
#                        interface keys go to every link); --token and
#                        --totem override them.
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
# neighbour fence_raistest, the parts are read beside it (the test may
# change directory after sourcing; CDPATH must not make cd print).
TB__SELF=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" 2>/dev/null && pwd)/$(basename -- "${BASH_SOURCE[0]}")
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

tb__nhosts() { cat "$TB_DIR/nhosts" 2>/dev/null || echo 0; }
tb__nlinks() { cat "$TB_DIR/nlinks" 2>/dev/null || echo 1; }
tb__state() { cat "$TB_DIR/h$1/state" 2>/dev/null || echo none; }
tb__set_state() { echo "$2" >"$TB_DIR/h$1/state"; }
# Public: number of hosts; state of host I (up, cut, crashed).
tb_nhosts() { tb__nhosts; }
tb_state() { local i; i=$(tb__host "$1") || return 1; tb__state "$i"; }

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

# ---------------------------------------------------------------- parts

# Read beside this file, one by one so that `shellcheck -x testbed.sh` follows
# them; a part that cannot be read is the testbed's own hard failure (99).
# shellcheck source=testbed-net.sh
. "${TB__SELF%/*}/testbed-net.sh" || tb__fatal "cannot read ${TB__SELF%/*}/testbed-net.sh"
# shellcheck source=testbed-corosync.sh
. "${TB__SELF%/*}/testbed-corosync.sh" || tb__fatal "cannot read ${TB__SELF%/*}/testbed-corosync.sh"
# shellcheck source=testbed-pacemaker.sh
. "${TB__SELF%/*}/testbed-pacemaker.sh" || tb__fatal "cannot read ${TB__SELF%/*}/testbed-pacemaker.sh"
# shellcheck source=testbed-faults.sh
. "${TB__SELF%/*}/testbed-faults.sh" || tb__fatal "cannot read ${TB__SELF%/*}/testbed-faults.sh"
# shellcheck source=testbed-install.sh
. "${TB__SELF%/*}/testbed-install.sh" || tb__fatal "cannot read ${TB__SELF%/*}/testbed-install.sh"

# ---------------------------------------------------------------- create

tb_create() {
    local n="" links=1 token=1000 token_set=0 profile="" start=1 i l t0 t1 extra=()
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
            --token) token=$2; token_set=1; shift 2 ;;
            --token=*) token=${1#*=}; token_set=1; shift ;;
            --profile) profile=$2; shift 2 ;;
            --profile=*) profile=${1#*=}; shift ;;
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
    tb__profile_setup "$profile" "$token_set" || tb__fatal "tb_create: --profile '$profile'"
    token=$(cat "$TB_DIR/token")
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

# ---------------------------------------------------------------- destroy

# The EXIT trap: clean up, run the test's own EXIT trap, and exit with the
# test's status. Neither may change that status, also under the caller's
# `set -e` (a failing command in them would end the trap with status 1 and
# skip the rest): on the left of ||, errexit is off inside them.
tb__on_exit() {
    local rc=$?
    tb_destroy || :
    if [ -n "${TB__PREV_EXIT:-}" ]; then
        eval "$TB__PREV_EXIT" || :
    fi
    exit "$rc"
}

tb_destroy() {
    local ns all="" rc=0 p
    # The fence server first: it must not crash hosts while they go away.
    if p=$(tb__fence_server_pid); then
        kill -TERM "$p" 2>/dev/null || :
    fi
    # No namespace left is no failure (|| : also under the caller's set -e).
    all=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^rais-(br|cl|h[0-9]+)$') || :
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
