# shellcheck shell=bash
# testbed-corosync.sh — corosync on the hosts, part of the cluster testbed.
# Source tests/cluster/testbed.sh, not this file.
#
# Owns: each host's corosync.conf (knet, one interface a link, the nodelist
# of every host), starting corosync (tb_start: and Pacemaker where it ran),
# reading a host's membership (tb_ring_id, tb_member_ids, tb_members,
# tb_quorate, tb_membership_time) and knet's links (tb_links_up), and the
# waits on them (tb_wait_members, tb_wait_quorate, tb_wait_all,
# tb_wait_links_settled), with a host's diagnostics when a wait fails.
# It never changes the network: the faults do (testbed-faults.sh).
#
# Timing (corosync 3.1.7, 2 cores, token 1000): 3 hosts form in ~3-4 s; a
# crash is detected and a new membership formed in ~3.5 s (token 1000 +
# token_coefficient 650 = 1650 ms, consensus 1980 ms); 5 hosts: ~6 s. A knet
# link needs ~8 s after it came up before its loss is detected faster than
# the token (tb_wait_links_settled); until then losing it forms a new ring
# (same members).

# tb__profile_keys FILE: the "key: value" lines of FILE's totem section
# (comments dropped), each prefixed with "totem " when directly in totem or
# "interface " when in its interface subsection (knet's per-link keys, such
# as knet_ping_timeout: corosync reads them only there). Fails when FILE
# has no totem key, or other nested sections than interface.
tb__profile_keys() {
    awk '
        { sub(/#.*/, ""); gsub(/^[ \t]+|[ \t]+$/, "") }
        $0 == "" { next }
        depth == 0 && /^totem[ \t]*\{$/ { depth = 1; seen = 1; next }
        depth == 0 { next }
        depth == 1 && /^interface[ \t]*\{$/ { depth = 2; next }
        /\{$/ { bad = 1; depth++; next }
        /^\}$/ { depth--; next }
        /^[a-z_0-9]+:[ \t]*[^ \t]/ {
            if (depth == 1) { print "totem " $0; n++ }
            else if (depth == 2 && $1 != "linknumber:") print "interface " $0
        }
        END { if (!seen || n == 0 || depth != 0 || bad) exit 1 }' "$1"
}

# tb__profile_setup NAME TOKEN_SET: with a NAME, read the totem keys of the
# shipped examples/corosync-NAME.conf (NAME with a slash: that file) into
# $TB_DIR/totem-profile and its interface keys into
# $TB_DIR/interface-profile, so that the tests run exactly what ships; its
# token replaces the default one unless --token was given (TOKEN_SET=1).
# Without a NAME, no profile.
tb__profile_setup() {
    local name=$1 f t keys
    : >"$TB_DIR/totem-profile"
    : >"$TB_DIR/interface-profile"
    [ -n "$name" ] || return 0
    case $name in
        */*) f=$name ;;
        *[!a-z0-9-]*) tb__err "bad profile name '$name'"; return 1 ;;
        *) f="${TB__SELF%/*}/../../examples/corosync-$name.conf" ;;
    esac
    [ -r "$f" ] || { tb__err "no profile $f"; return 1; }
    keys=$(tb__profile_keys "$f") || { tb__err "$f: no totem keys, or a section the testbed cannot merge"; return 1; }
    echo "$keys" | sed -n 's/^totem //p' >"$TB_DIR/totem-profile"
    echo "$keys" | sed -n 's/^interface //p' >"$TB_DIR/interface-profile"
    echo "$name" >"$TB_DIR/profile"
    t=$(awk -F: '$1 == "token" { gsub(/[ \t]/, "", $2); print $2 }' "$TB_DIR/totem-profile")
    if [ "$2" = 0 ] && [ -n "$t" ]; then
        case $t in *[!0-9]*) tb__err "$f: bad token '$t'"; return 1 ;; esac
        echo "$t" >"$TB_DIR/token"
    fi
    return 0
}

tb__write_conf() {
    local i=$1 hd="$TB_DIR/h$1" j l conf o k
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
        # The profile's keys but token (above) and those --totem sets.
        while IFS= read -r o; do
            k=${o%%:*}
            [ "$k" = token ] && continue
            grep -q "^$k:" "$TB_DIR/totem-extra" 2>/dev/null && continue
            echo "    $o"
        done <"$TB_DIR/totem-profile"
        while IFS= read -r o; do
            [ -n "$o" ] && echo "    $o"
        done <"$TB_DIR/totem-extra"
        for ((l = 0; l < $(tb__nlinks); l++)); do
            echo "    interface {"
            echo "        linknumber: $l"
            while IFS= read -r o; do
                [ -n "$o" ] && echo "        $o"
            done <"$TB_DIR/interface-profile"
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
