#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/idle-cost: CPU an idle supervisor spends on its own, per number of
# listeners: `baton run` with refserver as the server and no traffic, its
# utime+stime from /proc/PID/stat over a window, as % of one core. Other
# benches call it with --sizes and --seconds and read its table, or its
# --raw lines ("idle N PCT"). Runs in a network and mount namespace of its own.
set -euo pipefail

SECS=15
SIZES="1 64 1024"
RAW=0
BIN=
usage() {
	cat <<EOF
usage: bench/idle-cost.sh [--sizes "1 64 1024"] [--seconds N] [--raw] [--bin DIR]

Starts baton run with each number of listeners (default 1, 64 and 1024) and
refserver as the server (beyond its 16 listeners a python3 server that says
READY=1 and sleeps), waits until it serves and settles, then samples
the supervisor's utime+stime (/proc/PID/stat) over N seconds (default 15)
with no traffic, and prints per size the CPU it used in % of one core and
its wake-ups per second (voluntary context switches). --raw prints one line
"idle LISTENERS PCT WAKEUPS_PER_S" per size instead of the table (for other
benches). --bin DIR takes baton and refserver from DIR instead of build/
(to compare with an older build). Needs root; build first: make.
EOF
}
while [ $# -gt 0 ]; do
	case "$1" in
	--sizes) SIZES=${2:?}; shift 2 ;;
	--seconds) SECS=${2:?}; shift 2 ;;
	--raw) RAW=1; shift ;;
	--bin) BIN=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench/idle-cost.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
	esac
done
case "$SECS" in *[!0-9]*|"") echo "bench/idle-cost.sh: --seconds takes a whole number" >&2; exit 2 ;; esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 600 ] || { echo "bench/idle-cost.sh: --seconds must be 1..600" >&2; exit 2; }
for n in $SIZES; do
	case "$n" in *[!0-9]*|"") echo "bench/idle-cost.sh: --sizes takes whole numbers" >&2; exit 2 ;; esac
	[ "$n" -ge 1 ] && [ "$n" -le 4096 ] || { echo "bench/idle-cost.sh: sizes must be 1..4096" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/build}
BIN=$(cd "$BIN" && pwd)
if [ -z "${BATON_BENCH_NS:-}" ]; then
	args=(--sizes "$SIZES" --seconds "$SECS" --bin "$BIN")
	[ "$RAW" = 1 ] && args+=(--raw)
	exec unshare --net --mount --propagation private env BATON_BENCH_NS=1 "$0" "${args[@]}"
fi
ip link set lo up
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
B=$BIN/baton
REF=$BIN/refserver
for f in "$B" "$REF"; do
	[ -x "$f" ] || { echo "bench/idle-cost.sh: $f is missing: run make first" >&2; exit 1; }
done
# the supervisor running (killed by its pid if the bench ends early) and
# its runtime directory, both gone at exit
SUP=
tmp=$(mktemp -d /tmp/baton-bench-idle.XXXXXX)
trap '[ -z "$SUP" ] || kill -KILL "$SUP" 2>/dev/null; rm -rf "$tmp"' EXIT
export BATON_RUNTIME_DIR=$tmp/run
HZ=$(getconf CLK_TCK)
# the server beyond refserver's 16 listeners: says READY=1 and sleeps
SRV='import os, signal, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"READY=1")
signal.pause()'

# utime + stime of PID in clock ticks (fields 14 and 15; the command name
# in field 2 may hold spaces, so count from after its closing parenthesis)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
wakeups() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$1/status"; }

[ "$RAW" = 1 ] || printf '%-10s %8s %10s %12s\n' listeners seconds cpu% wakeups/s
for n in $SIZES; do
	args=()
	for i in $(seq 0 $((n - 1))); do args+=(--listen "tcp://127.0.0.1:$((20000 + i))"); done
	ulimit -n 65536 2>/dev/null || true
	if [ "$n" -le 16 ]; then
		"$B" run --name idle --grace 5s "${args[@]}" -- "$REF" >"$tmp/sup.log" 2>&1 &
	else	# refserver takes at most 16 listeners
		"$B" run --name idle --ready notify --grace 5s "${args[@]}" -- python3 -c "$SRV" >"$tmp/sup.log" 2>&1 &
	fi
	SUP=$!
	ok=0
	for i in $(seq 600); do	# 30 s: a loaded machine, many listeners
		if "$B" status idle --json 2>/dev/null | grep -q '"state":"active"'; then ok=1; break; fi
		sleep 0.05
	done
	if [ "$ok" != 1 ]; then
		echo "bench/idle-cost.sh: baton run with $n listeners did not serve in 30 s:" >&2
		tail -5 "$tmp/sup.log" >&2
		exit 1
	fi
	sleep 2	# the start's own work (readiness, state) is not idle
	t0=$(cpu_ticks "$SUP"); w0=$(wakeups "$SUP")
	sleep "$SECS"
	t1=$(cpu_ticks "$SUP"); w1=$(wakeups "$SUP")
	"$B" stop idle >/dev/null || true
	wait "$SUP" || true
	SUP=
	pct=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v s="$SECS" 'BEGIN {printf "%.3f", 100 * d / hz / s}')
	wps=$(awk -v d=$((w1 - w0)) -v s="$SECS" 'BEGIN {printf "%.1f", d / s}')
	if [ "$RAW" = 1 ]; then
		echo "idle $n $pct $wps"
	else
		printf '%-10s %8s %10s %12s\n' "$n" "$SECS" "$pct" "$wps"
	fi
done
[ "$RAW" = 1 ] || echo "cpu% = the supervisor's utime+stime over the window, % of one core (goal: <= 0.1 at 1 listener, <= 0.5 at 1,024)"
