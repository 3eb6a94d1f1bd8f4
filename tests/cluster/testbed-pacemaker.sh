# shellcheck shell=bash
# testbed-pacemaker.sh — Pacemaker on the hosts, part of the cluster testbed.
# Source tests/cluster/testbed.sh, not this file.
#
# Owns: the CIB every host starts from (tb__pcmk_seed), a host's Pacemaker
# directories and authkey, starting and stopping pacemakerd (tb_pcmk_start,
# tb_pcmk_stop), reading what a host's crm_mon sees (tb_pcmk_online,
# tb_pcmk_dc) and waiting until all see one DC (tb_wait_pcmk). Fencing is
# the fence server's (testbed-faults.sh).
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

# tb_create --pcmk-timeout S (default 60): how long tb_restart waits for Pacemaker.
tb__pcmk_timeout() { cat "$TB_DIR/pcmk-timeout" 2>/dev/null || echo 60; }
