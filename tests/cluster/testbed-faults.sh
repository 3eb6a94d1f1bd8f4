# shellcheck shell=bash
# testbed-faults.sh — faults done to the hosts, part of the cluster testbed.
# Source tests/cluster/testbed.sh, not this file.
#
# Owns: a host's state (up, cut, crashed: $TB_DIR/hI/state) as the faults
# change it, and its fault time; cutting a host off (tb_cut: every bridge
# port down) or one of its links (tb_cut_link), crashing it (tb_crash: ports
# down, then SIGKILL to every process of its namespace), undoing a cut
# (tb_uncut, tb_uncut_link), bringing a crashed host back as after a reboot
# (tb_restart); and the fence server, which crashes a host when the fence
# agent tests/cluster/fence_raistest asks for it from inside a host
# (off/reboot = tb_crash), with its log (tb_fence_log, tb_fence_time,
# tb_wait_fenced). The server runs as `testbed.sh fence-server PARENT_PID`
# (the command line of testbed.sh), a child of the test's shell.

# ---------------------------------------------------------------- faults

# Epoch.ms of the last tb_crash/tb_cut of host I.
tb_fault_time() {
    local i
    i=$(tb__host "$1") || return 1
    cat "$TB_DIR/h$i/fault_time"
}

# SIGKILL every process of network namespace NS until none is left.
tb__kill_ns() {
    local ns=$1 n pids
    for ((n = 0; n < 100; n++)); do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -z "$pids" ] && return 0
        # One may exit before the signal: no failure (also under set -e),
        # the next round lists what is left.
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || :
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
