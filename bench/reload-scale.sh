#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/reload-scale: baton's own time in a reload of 1 listener and of
# 1,024 listeners, in the same run. Own time is what the supervisor spends
# beyond the new generation's readiness: opening and adding its member
# sockets before it starts, and switching every listener once it is ready
# (the "ovh" of bench/reload.sh). The server is a few lines of python that
# says READY=1 at once, so nothing else is measured. Also, per size, what
# the supervisor costs while nothing happens (CPU over IDLE seconds, RSS,
# open files) and whether every listener switched at once (right after each
# reload returns, a connection to the first and to the last listener both
# reach the new generation). Runs in a network namespace and a mount
# namespace (for bpffs) of its own.
set -euo pipefail

R=20
SIZES="1 64 1024 4096"
IDLE=10
usage() {
	cat <<EOF
usage: bench/reload-scale.sh [--reloads N] [--sizes "1 64 1024 4096"] [--idle SECONDS]

Runs baton run with each number of listeners (default 1, 64, 1024 and 4096),
reloads it N times (default 20) and prints, per size, p50 and p99 of:
prepare (ms from the reload request to the new generation's start: member
sockets opened and added), switch (ms from its readiness to every listener
switched) and own = prepare + switch. A second table: the idle supervisor's
CPU (utime + stime from /proc/PID/stat over --idle seconds, default 10, in
% of one core), its RSS and open files, and in how many reloads the first
and the last listener both answered from the new generation right after
the reload returned. Needs root. Build first: make.
EOF
}
while [ $# -gt 0 ]; do
	case "$1" in
	--reloads) R=${2:?}; shift 2 ;;
	--sizes) SIZES=${2:?}; shift 2 ;;
	--idle) IDLE=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench/reload-scale.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
	esac
done
case "$R" in *[!0-9]*|"") echo "bench/reload-scale.sh: --reloads takes a whole number" >&2; exit 2 ;; esac
case "$IDLE" in *[!0-9]*|""|0) echo "bench/reload-scale.sh: --idle takes a whole number of seconds, at least 1" >&2; exit 2 ;; esac
for n in $SIZES; do
	case "$n" in *[!0-9]*|"") echo "bench/reload-scale.sh: --sizes takes whole numbers" >&2; exit 2 ;; esac
	[ "$n" -ge 1 ] && [ "$n" -le 4096 ] || { echo "bench/reload-scale.sh: sizes must be 1..4096" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
if [ -z "${BATON_BENCH_NS:-}" ]; then
	exec unshare --net --mount --propagation private env BATON_BENCH_NS=1 "$0" --reloads "$R" --sizes "$SIZES" \
		--idle "$IDLE"
fi
ip link set lo up
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
B=$PWD/build/baton
[ -x "$B" ] || { echo "bench/reload-scale.sh: $B is missing: run make first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench/reload-scale.sh: needs python3 for its test server" >&2; exit 1; }
tmp=$(mktemp -d /tmp/baton-bench-scale.XXXXXX)
export BATON_RUNTIME_DIR=$tmp/run
SUP=
cleanup() {
	[ -n "$SUP" ] && kill -KILL "$SUP" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# ready at once; answers each connection on any listener with its generation
SRV='import os, selectors, socket
sel = selectors.DefaultSelector()
for i in range(int(os.environ["LISTEN_FDS"])):
    l = socket.socket(fileno=3 + i)
    l.setblocking(False)
    sel.register(l, selectors.EVENT_READ)
gen = os.environ["BATON_GENERATION"].encode() + b"\n"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"READY=1")
while True:
    for k, _ in sel.select():
        try:
            c, _ = k.fileobj.accept()
        except BlockingIOError:
            continue
        c.sendall(gen)
        c.close()'

# What process PID costs while idle: "CPU% RSS_MB FDS", CPU over IDLE seconds.
idle_cost() {
	local t0 t1 hz rss fds
	hz=$(getconf CLK_TCK)
	# utime and stime: fields 14 and 15, counted after the ")" that ends comm
	t0=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')
	sleep "$IDLE"
	t1=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")
	fds=$(ls "/proc/$1/fd" | wc -l)
	awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$IDLE" -v r="$rss" -v f="$fds" \
		'BEGIN {printf "%.2f %.1f %d", (b - a) / hz / s * 100, r / 1024, f}'
}

# The generation that answers on PORT.
gen_at() {
	local g=""
	{ exec 3<>"/dev/tcp/127.0.0.1/$1" && read -r -t 2 g <&3; } 2>/dev/null || true
	exec 3<&- 3>&- 2>/dev/null || true
	echo "${g:-none}"
}

pct() { sort -g "$1" | awk -v p="$2" '{a[NR]=$1} END {if (!NR) {print "-"; exit} i=int((NR-1)*p/100+0.5)+1; if (i>NR) i=NR; printf "%.2f", a[i]}'; }

COST=()
printf '%-10s %8s %10s %10s %10s %10s %10s %10s %8s\n' listeners reloads prep50 prep99 switch50 switch99 own50 own99 spares
for n in $SIZES; do
	args=()
	for i in $(seq 0 $((n - 1))); do args+=(--listen "tcp://127.0.0.1:$((20000 + i))"); done
	"$B" run --name scale --ready notify --grace 5s "${args[@]}" -- python3 -c "$SRV" >"$tmp/sup.log" 2>&1 &
	SUP=$!
	for i in $(seq 400); do
		"$B" status scale --json 2>/dev/null | grep -q '"state":"active"' && break
		sleep 0.05
	done
	if ! kill -0 "$SUP" 2>/dev/null; then
		# a size this baton cannot start: say why and go on with the next
		why=$(tail -n 1 "$tmp/sup.log" | cut -c1-100)
		printf '%-10s %8s  did not start: %s\n' "$n" "$R" "$why"
		COST+=("$(printf '%-10s %10s %10s %10s %14s' "$n" - - - -)")
		wait "$SUP" || true
		SUP=
		continue
	fi
	sleep 1	# past its start
	cost=$(idle_cost "$SUP")
	: >"$tmp/p"; : >"$tmp/s"; : >"$tmp/o"; : >"$tmp/k"
	same=0
	for i in $(seq "$R"); do
		out=$("$B" reload scale) || { echo "bench/reload-scale.sh: reload $i of $n failed: $out" >&2; continue; }
		first=$(gen_at 20000)
		last=$(gen_at $((20000 + n - 1)))
		if [ "$first" = $((i + 1)) ] && [ "$last" = $((i + 1)) ]; then
			same=$((same + 1))
		else
			echo "bench/reload-scale.sh: after reload $i of $n: listener 0 answered from generation $first," \
				"listener $((n - 1)) from $last (want $((i + 1)))" >&2
		fi
		# "+A ms started gen", "+B ms gen N ready after C ms", "+D ms switched"
		# "+E ms gen N took K spare members (of L listeners)": members made before the reload
		echo "$out" | awk -v p="$tmp/p" -v s="$tmp/s" -v o="$tmp/o" -v k="$tmp/k" '
			/ spare member/ {sp = $6}
			/ ms started gen/ {st = substr($1, 2)}
			/ready after/ {rd = substr($1, 2)}
			/ ms switched/ {sw = substr($1, 2)}
			END {printf "%.3f\n", st >> p; printf "%.3f\n", sw - rd >> s; printf "%.3f\n", st + sw - rd >> o; printf "%d\n", sp >> k}'
		sleep 0.2
	done
	"$B" stop scale >/dev/null || true
	wait "$SUP" || true
	SUP=
	printf '%-10s %8s %10s %10s %10s %10s %10s %10s %8s\n' "$n" "$R" "$(pct "$tmp/p" 50)" "$(pct "$tmp/p" 99)" \
		"$(pct "$tmp/s" 50)" "$(pct "$tmp/s" 99)" "$(pct "$tmp/o" 50)" "$(pct "$tmp/o" 99)" \
		"$(sort -n "$tmp/k" | head -n 1)"
	read -r cpu rss fds <<<"$cost"
	COST+=("$(printf '%-10s %10s %10s %10s %14s' "$n" "$cpu" "$rss" "$fds" "$same/$R")")
done
echo "ms; prepare = reload request to the new generation's start (members opened and added, or spares taken; the clone and exec);"
echo "switch = its readiness to every listener switched; own = prepare + switch (goal for 1,024: <= 5 ms p99);"
echo "spares = the fewest members a reload found made before it was asked (supervisor/spare.c; the rest it made)"
echo
printf '%-10s %10s %10s %10s %14s\n' listeners idle_cpu% rss_MB fds same_instant
printf '%s\n' "${COST[@]}"
echo "idle_cpu% = the supervisor's utime + stime over ${IDLE}s with nothing happening, in % of one core"
echo "(goals: <= 0.1 at 1 listener, <= 0.5 at 1,024); rss_MB and fds of the supervisor then;"
echo "same_instant = reloads after which listener 0 and the last listener both answered from the new generation"
