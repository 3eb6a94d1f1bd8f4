# common.sh — helpers shared by the cluster test suites (raisd-tests,
# pacemaker-tests, benchmarks). Source after testbed.sh; expects GAPWATCH
# (the built gapwatch) and PORT (the port the client connects to: nothing
# listens there, so a refused connect means "the address answers").

say() { echo "  $*"; }
bad() { echo "  FAIL: $*"; return 1; }

# ---- raisd started by hand (no Pacemaker): GROUP, ADDRESSES, RAISD and
# RAISCTL name the group, its addresses and the binaries.

# rs_conf I [key=value...]: write host I's raisd configuration.
rs_conf() {
    local i=$1
    shift
    local extra=""
    local kv
    for kv in "$@"; do extra+="${kv}"$'\n'; done
    # load=exec: reads /run/rais/load (written by load_set), so tests can
    # drive each host's utilization (all namespaces share one /proc/stat).
    tb_exec "$i" sh -c "mkdir -p /run/rais && printf '#!/bin/sh\\ncat /run/rais/load 2>/dev/null || echo 0 100\\n' > /run/rais/load.sh && chmod +x /run/rais/load.sh" || return 1
    tb_exec "$i" sh -c "cat > /run/rais/$GROUP.conf" <<EOF
[group]
group=$GROUP
addresses=$ADDRESSES
restart_grace=5
fencing=off
load=exec:/run/rais/load.sh
$extra
EOF
}

# rs_start I: start raisd on host I (config written before).
rs_start() {
    local i=$1
    tb_spawn "$i" "$(tb_hostdir "$i")/raisd.out" "$RAISD" --config "/run/rais/$GROUP.conf" --foreground || return 1
    echo "$TB_PID" >"$(tb_hostdir "$i")/raisd.pid"
}

rs_pid() { cat "$(tb_hostdir "$1")/raisd.pid" 2>/dev/null; }

# rs_stop I: SIGTERM and wait for the exit (graceful stop).
rs_stop() {
    local p
    p=$(rs_pid "$1") || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
    bad "raisd on h$1 did not exit after SIGTERM"
}

rs_kill() { local p; p=$(rs_pid "$1") && kill -KILL "$p" 2>/dev/null; }

raisctl() { local i=$1; shift; tb_exec "$i" "$RAISCTL" "$@"; }

# holders ADDR: the hosts whose eth0 holds ADDR, e.g. "h4" or "h2 h4".
holders() {
    local a=$1 i out=""
    for i in $(seq 1 "$(tb_nhosts)"); do
        [ "$(tb_state "$i")" = crashed ] && continue
        if ip -n "rais-h$i" -o addr show 2>/dev/null | grep -qw "inet6\? $a/[0-9]*"; then out+="h$i "; fi
    done
    echo "${out% }"
}

# wait_holder ADDR "hN" [TIMEOUT_S]: until exactly those hosts hold ADDR.
wait_holder() {
    local a=$1 want=$2 t=${3:-15} end got
    end=$(( $(date +%s) + t ))
    while :; do
        got=$(holders "$a")
        [ "$got" = "$want" ] && return 0
        [ "$(date +%s)" -ge "$end" ] && { bad "$a held by '${got:-nobody}', expected '${want:-nobody}' within ${t}s"; return 1; }
        sleep 0.05
    done
}

# gap_start ADDR...: watch addresses from the client; gap_stop prints the
# summary lines and sets GAP_LONGEST_MS (the longest gap of the first one).
gap_start() {
    local targets=()
    local a
    for a in "$@"; do
        case $a in *:*) targets+=("[$a]:$PORT") ;; *) targets+=("$a:$PORT") ;; esac
    done
    GAP_OUT=$(mktemp)
    ip netns exec "$TB_CL" "$GAPWATCH" "${targets[@]}" >"$GAP_OUT" 2>&1 &
    GAP_PID=$!
    sleep 0.3
}
gap_stop() {
    kill -TERM "$GAP_PID" 2>/dev/null
    wait "$GAP_PID" 2>/dev/null
    GAP_LONGEST_MS=$(grep '^gap ' "$GAP_OUT" | head -n 1 | sed -E 's/.*longest=([0-9]+).*/\1/')
    grep '^gap ' "$GAP_OUT" | sed 's/^/  /'
    GAP_LINES=$(cat "$GAP_OUT")
    rm -f "$GAP_OUT"
}

# up_time ADDR: epoch.ms at which ADDR answers again (waits up to 30 s).
until_up() {
    local a=$1 t
    case $a in *:*) t="[$a]:$PORT" ;; *) t="$a:$PORT" ;; esac
    ip netns exec "$TB_CL" "$GAPWATCH" --until-up --duration 30 "$t" | sed -nE 's/^allup ([0-9.]+).*/\1/p'
}

# median: of the numbers on stdin, one a line ("nan" when none)
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

ms_between() { echo "$1 $2" | awk '{ printf "%d", ($2 - $1) * 1000 }'; }

