# common.sh — helpers shared by the cluster test suites (raisd-tests,
# pacemaker-tests, benchmarks). Source after testbed.sh; expects GAPWATCH
# (the built gapwatch) and PORT (the port the client connects to: nothing
# listens there, so a refused connect means "the address answers").

say() { echo "  $*"; }
bad() { echo "  FAIL: $*"; return 1; }

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

