#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/reload: N reloads under saturating load, in both load modes, counted
# by bench/loadgen: `baton run` with the reference server, and, where they are
# installed, `nginx -s reload` and HAProxy's seamless reload side by side in
# the same run; unmodified servers under `baton run` (nginx and python's
# http.server through the preload shim) next to their own way of reloading
# (nginx -s reload; python: stop and start); a static Go server (no libc:
# the cgroup bind mode) next to a plain stop and start of it. Then, counted
# by wrk, 10 reloads of nginx under 50 connections, per request and
# keep-alive: `nginx -s reload` next to `baton run` + nginx with and without
# ?handoff=idle (idle keep-alive connections handed to the new generation).
# Last, the steady state (no reload): keep-alive requests/s of `baton run` +
# nginx with and without ?handoff=idle, in alternating rounds.
# Runs in a network namespace of its own.
set -euo pipefail

N=100
CONC=64
GAP=0.05
WRK_ONLY=0
WRK_RELOADS=${WRK_RELOADS:-10}
WRK_CONC=50
WRK_GAP=0.5
STEADY_ROUNDS=${STEADY_ROUNDS:-6}
STEADY_SECS=${STEADY_SECS:-5}
STEADY_ONLY=0
usage() {
	cat <<EOF
usage: bench/reload.sh [--reloads N] [--concurrency C] [--wrk-only] [--steady-only]

Reloads each server N times (default 100) while loadgen keeps C connections
busy (default 64), in connection-per-request and keep-alive modes, and prints
failed requests per configuration, reload time (command to switched, p50/p99)
and baton's own overhead beyond the new generation's readiness (p50/p99).
Then a second table from wrk (-t2 -c$WRK_CONC, $WRK_RELOADS reloads, one every
${WRK_GAP}s; environment: WRK_RELOADS): nginx -s reload, baton run + nginx, and baton run + nginx with
?handoff=idle; in keep-alive mode also HAProxy's seamless reload and Apache's
graceful restart beside baton run + each with ?handoff=idle; with wrk's socket
errors. --wrk-only prints that table only.
Last, the steady state without reloads: wrk -t2 -c$WRK_CONC keep-alive against
baton run + nginx with and without ?handoff=idle, $STEADY_ROUNDS alternating
rounds of ${STEADY_SECS}s each in ABBA order (environment: STEADY_ROUNDS,
STEADY_SECS), requests/s per round, the ratio of the medians, and the median
of each round's ratio, the pair that ran back to back (what the handoff
costs while nothing reloads). --steady-only prints that row only.
Needs root (network namespace, eBPF). Build first: make.
EOF
}
while [ $# -gt 0 ]; do
	case "$1" in
	--reloads) N=${2:?}; shift 2 ;;
	--concurrency) CONC=${2:?}; shift 2 ;;
	--wrk-only) WRK_ONLY=1; shift ;;
	--steady-only) STEADY_ONLY=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench/reload.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
	esac
done
case "$N$CONC" in *[!0-9]*) echo "bench/reload.sh: --reloads and --concurrency take whole numbers" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 1000 ] || { echo "bench/reload.sh: --reloads must be 1..1000" >&2; exit 2; }
case "$WRK_RELOADS" in ""|*[!0-9]*|0) echo "bench/reload.sh: WRK_RELOADS takes a whole number, at least 1" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
if [ -z "${BATON_BENCH_NETNS:-}" ]; then
	args=(--reloads "$N" --concurrency "$CONC")
	[ "$WRK_ONLY" = 1 ] && args+=(--wrk-only)
	[ "$STEADY_ONLY" = 1 ] && args+=(--steady-only)
	exec unshare --net env BATON_BENCH_NETNS=1 "$0" "${args[@]}"
fi
ip link set lo up

B=$PWD/build/baton REF=$PWD/build/refserver LG=$PWD/build/bench/loadgen
for f in "$B" "$REF" "$LG"; do
	[ -x "$f" ] || { echo "bench/reload.sh: $f is missing: run make first" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/baton-bench-reload.XXXXXX)
export BATON_RUNTIME_DIR=$tmp/run
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# pNN of the numbers in file $1 (one per line)
pct() { sort -g "$1" | awk -v p="$2" '{a[NR]=$1} END {if (!NR) {print "-"; exit} i=int((NR-1)*p/100+0.5)+1; if (i>NR) i=NR; printf "%.1f", a[i]}'; }
field() { grep -o "\"$2\": *[0-9]*" "$1" | head -1 | grep -o '[0-9]*$'; }

wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench/reload.sh: nothing listens on port $1" >&2
	return 1
}

load_start() {	# port mode
	"$LG" --port "$1" --mode "$2" --concurrency "$CONC" --duration 600 --timeout-ms 3000 --json \
		>"$tmp/load.json" 2>"$tmp/load.err" &
	LGPID=$!
	PIDS+=("$LGPID")
	sleep 0.3
}

load_stop() {
	kill -TERM "$LGPID"
	wait "$LGPID" || true
}

# failed requests per 100 reloads
per100() { awk -v f="${1:-0}" -v n="$2" 'BEGIN {printf "%.1f", n ? f * 100 / n : 0}'; }

ROWS=()
row() {	# name mode reloads [times-file]
	local req failed t50=- t99=- o50=- o99=-
	req=$(field "$tmp/load.json" requests)
	failed=$(field "$tmp/load.json" failed)
	if [ -n "${4:-}" ]; then
		awk '{print $1}' "$4" >"$tmp/t"
		awk '{print $2}' "$4" >"$tmp/o"
		t50=$(pct "$tmp/t" 50) t99=$(pct "$tmp/t" 99) o50=$(pct "$tmp/o" 50) o99=$(pct "$tmp/o" 99)
	fi
	ROWS+=("$(printf '%-22s %-10s %7s %9s %7s %9s %9s %9s %9s %9s' "$1" "$2" "$3" "$req" "$failed" "$t50" "$t99" "$o50" "$o99" "$(per100 "$failed" "$3")")")
}

bench_baton() {	# the reference server: it takes its socket from LISTEN_FDS
	bench_baton_server "baton run + refserver" 8080 "$1" -- "$REF" -q --tag b
}

# nginx of DIR/nginx.conf in the background (its pid in NG and PIDS), once
# it listens on PORT: dir port
nginx_up() {
	nginx -c "$1/nginx.conf" -p "$1" 2>>"$1/stderr" &
	NG=$!
	PIDS+=("$NG")
	wait_port "$2"
}

# `nginx -s reload` of DIR COUNT times, GAP seconds apart: dir count gap
nginx_reloads() {
	local i
	for i in $(seq "$2"); do
		nginx -c "$1/nginx.conf" -p "$1" -s reload 2>>"$1/stderr"
		sleep "$3"
	done
}

bench_nginx() {
	local mode=$1 i
	mkdir -p "$tmp/nginx"
	cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
	uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
	server { listen 127.0.0.1:8081 backlog=4096; location / { return 200 "ok\n"; } }
}
EOF
	nginx_up "$tmp/nginx" 8081
	local ng=$NG
	load_start 8081 "$mode"
	nginx_reloads "$tmp/nginx" "$N" "$GAP"
	load_stop
	kill -QUIT "$ng"
	wait "$ng" || true
	row "nginx -s reload" "$mode" "$N"
}

bench_haproxy() {
	local mode=$1 i
	mkdir -p "$tmp/haproxy"
	cat >"$tmp/haproxy/haproxy.cfg" <<EOF
global
	master-worker
	stats socket $tmp/haproxy/admin.sock mode 600 level admin expose-fd listeners
	maxconn 8192
defaults
	mode http
	timeout client 30s
	timeout server 30s
	timeout connect 5s
frontend f
	bind 127.0.0.1:8082
	http-request return status 200 content-type text/plain string "ok"
EOF
	haproxy -W -db -q -f "$tmp/haproxy/haproxy.cfg" 2>>"$tmp/haproxy/stderr" &
	local hp=$!
	PIDS+=("$hp")
	wait_port 8082
	load_start 8082 "$mode"
	for i in $(seq "$N"); do
		kill -USR2 "$hp"	# master-worker reload: new workers take the listeners over
		sleep "$GAP"
	done
	load_stop
	kill -USR1 "$hp"	# soft stop
	sleep 0.5
	kill -TERM "$hp" 2>/dev/null || true
	wait "$hp" || true
	row "haproxy seamless" "$mode" "$N"
}

# `baton run --name NAME --listen LISTEN --grace 10s [options] -- CMD...` in
# the background, its output to LOG, its pid in SUP (and PIDS); returns once
# its status shows an active generation (5 s at most).
# name listen log [baton run options] -- CMD...
sup_start() {
	local name=$1 listen=$2 log=$3 i
	shift 3
	"$B" run --name "$name" --listen "$listen" --grace 10s "$@" >"$log" 2>&1 &
	SUP=$!
	PIDS+=("$SUP")
	for i in $(seq 100); do
		"$B" status "$name" --json >"$tmp/st" 2>/dev/null && grep -q '"state":"active"' "$tmp/st" && break
		sleep 0.05
	done
}

# WRK_RELOADS `baton reload wbench`, WRK_GAP apart, saying any that fails: label
wrk_reloads() {
	local i out
	for i in $(seq "$WRK_RELOADS"); do
		out=$("$B" reload wbench) || echo "bench/reload.sh: $1 reload $i failed: $out" >&2
		sleep "$WRK_GAP"
	done
}

# `baton run` with an unmodified server: label port mode [baton run options] -- CMD...
bench_baton_server() {
	local label=$1 port=$2 mode=$3 i out
	shift 3
	sup_start sbench "tcp://127.0.0.1:$port?backlog=4096" "$tmp/ssup.log" "$@"
	local sup=$SUP
	load_start "$port" "$mode"
	: >"$tmp/times"
	for i in $(seq "$N"); do
		out=$("$B" reload sbench) || { echo "bench/reload.sh: $label reload $i failed: $out" >&2; continue; }
		echo "$out" | awk '/ ms switched/ {sw=substr($1,2)} /ready after/ {for (i=1;i<=NF;i++) if ($i=="after") rd=$(i+1)} END {printf "%s %.1f\n", sw, sw-rd}' >>"$tmp/times"
		sleep "$GAP"
	done
	load_stop
	"$B" stop sbench >/dev/null
	wait "$sup" || true
	row "$label" "$mode" "$N" "$tmp/times"
}

nginx_conf() {	# dir port
	mkdir -p "$1"
	cat >"$1/nginx.conf" <<EOF
worker_processes 2;
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1;
	uwsgi_temp_path $1; scgi_temp_path $1;
	server { listen 127.0.0.1:$2 backlog=4096; location / { return 200 "ok\n"; } }
}
EOF
}

# nginx binding its own socket, through the shim; QUIT is its graceful stop
bench_baton_nginx() {
	nginx_conf "$tmp/bnginx" 8085
	bench_baton_server "baton run + nginx" 8085 "$1" --stop-signal QUIT -- \
		nginx -c "$tmp/bnginx/nginx.conf" -p "$tmp/bnginx"
}

# a static Go server (CGO_ENABLED=0): it binds its own socket with raw system
# calls, so baton run's bind mode auto picks the cgroup bind hook; built with
# the caller's GOCACHE if set (CI shares one with the tests), else a fresh one
GOSRV=
build_go() {
	command -v go >/dev/null || return 1
	mkdir -p "$tmp/go"
	GOCACHE=${GOCACHE:-$tmp/go/cache} GOPATH=$tmp/go/path GO111MODULE=off CGO_ENABLED=0 HOME=$tmp/go \
		go build -o "$tmp/go/goserver" tests/fixtures/goserver/main.go && GOSRV=$tmp/go/goserver
}
bench_baton_go() {
	bench_baton_server "baton run + go" 8086 "$1" -- "$GOSRV" 127.0.0.1:8086
}
# A server's own way without baton: stop it with SIG (its graceful way) and
# start another, N times under load. START_FN starts one in the background.
# stop_wait PID: wait for the server's own graceful stop, at most 10 s, then
# SIGKILL it (said): a plain server that never ends must not hang the bench
stop_wait() {
	local p=$1 i st
	for i in $(seq 100); do
		st=$(ps -o stat= -p "$p" 2>/dev/null) || break
		[ "${st:0:1}" = Z ] && break
		sleep 0.1
	done
	st=$(ps -o stat= -p "$p" 2>/dev/null) && [ "${st:0:1}" != Z ] && {
		echo "bench/reload: pid $p did not stop within 10 s of its stop signal: killed" >&2
		kill -KILL "$p"
	}
	wait "$p" || true
}
stop_start() {	# label port mode SIG START_FN
	local label=$1 port=$2 mode=$3 sig=$4 start=$5 i p
	"$start" & p=$!
	PIDS+=("$p")
	wait_port "$port"
	load_start "$port" "$mode"
	for i in $(seq "$N"); do
		kill -"$sig" "$p"
		stop_wait "$p"
		"$start" & p=$!
		PIDS+=("$p")
		wait_port "$port" 2>/dev/null || true
		sleep "$GAP"
	done
	load_stop
	kill -"$sig" "$p"
	stop_wait "$p"
	row "$label" "$mode" "$N"
}
# Go's own way without baton: SIGTERM (http.Server.Shutdown) and start again
gostart() { exec "$GOSRV" 127.0.0.1:8087; }
bench_go_restart() {
	stop_start "go stop+start" 8087 "$1" TERM gostart
}

PY=$(command -v /usr/bin/python3 || command -v python3 || true)
bench_baton_python() {
	mkdir -p "$tmp/www" && echo ok >"$tmp/www/index.html"
	bench_baton_server "baton run + python" 8084 "$1" --ready listen --stop-signal INT --stop-when-idle -- \
		"$PY" -m http.server --bind 127.0.0.1 --directory "$tmp/www" 8084
}

# python's http.server has no reload: stop it (SIGINT, its graceful way) and
# start another. A background job of a script starts with SIGINT ignored,
# and python then would not stop on it: env --default-signal restores it.
pystart() { exec env --default-signal=INT "$PY" -m http.server --bind 127.0.0.1 --directory "$tmp/www" 8083 >/dev/null 2>&1; }
bench_python_restart() {
	mkdir -p "$tmp/www" && echo ok >"$tmp/www/index.html"
	stop_start "python stop+start" 8083 "$1" INT pystart
}

# ---- wrk: what an operator's load test sees ----------------------------------------

WROWS=()
WRK_SECS=$(awk -v n="$WRK_RELOADS" -v g="$WRK_GAP" 'BEGIN {printf "%d", n * g + 3}')
wrk_start() {	# port mode: wrk in the background for WRK_SECS, then a second to warm up
	local hdr=()
	[ "$2" = conn ] && hdr=(-H "Connection: close")
	wrk -t2 -c"$WRK_CONC" -d"${WRK_SECS}s" "${hdr[@]}" "http://127.0.0.1:$1/" >"$tmp/wrk.out" 2>&1 &
	WRKPID=$!
	PIDS+=("$WRKPID")
	sleep 1
}
wrk_row() {	# label mode [handoff counters]
	wait "$WRKPID" || true
	local req errs detail
	req=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
	errs=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10; f = 1} END {if (!f) print 0}' "$tmp/wrk.out")
	detail=$(grep -o 'Socket errors:.*' "$tmp/wrk.out" | sed 's/Socket errors: //' || true)
	WROWS+=("$(printf '%-34s %-10s %7s %9s %7s  %s' "$1" "$2" "$WRK_RELOADS" "${req:-?}" "$errs" "${detail:-none}${3:+; $3}")")
}

wrk_nginx() {	# mode
	nginx_conf "$tmp/wnginx" 8086
	nginx_up "$tmp/wnginx" 8086
	local ng=$NG
	wrk_start 8086 "$1"
	nginx_reloads "$tmp/wnginx" "$WRK_RELOADS" "$WRK_GAP"
	wrk_row "nginx -s reload" "$1"
	kill -QUIT "$ng"
	wait "$ng" || true
}

# The handoff counters of the status JSON in $tmp/st, for a row's note.
handoff_note() {
	local k v hand=""
	grep -q '"handoff":{' "$tmp/st" || return 0
	for k in handed_off answered failed pending; do
		v=$(grep -o "\"$k\":[0-9]*" "$tmp/st" | head -1 | cut -d: -f2)
		[ -n "$v" ] && hand="$hand${hand:+, }${k/_/ } $v"
	done
	# which way, where any failed
	hand="$hand$( (grep -o '"failed_[a-z]*":[1-9][0-9]*' "$tmp/st" || true) | sed 's/"failed_\([a-z]*\)":/ \1 /' | tr -d '\n')"
	printf '%s' "$hand"
}

wrk_baton_nginx() {	# label mode listen-options
	nginx_conf "$tmp/wbnginx" 8087
	wrk_baton "$1" "$2" 8087 "$3" --stop-signal QUIT -- nginx -c "$tmp/wbnginx/nginx.conf" -p "$tmp/wbnginx"
}

# `baton run` + any server under wrk: label mode port listen-options [baton run options] -- CMD...
wrk_baton() {
	local label=$1 mode=$2 port=$3 lopts=$4
	shift 4
	sup_start wbench "tcp://127.0.0.1:$port?backlog=4096$lopts" "$tmp/wsup.log" "$@"
	local sup=$SUP
	wrk_start "$port" "$mode"
	wrk_reloads "$label"
	"$B" status wbench --json >"$tmp/st" 2>/dev/null || true
	wrk_row "$label" "$mode" "$(handoff_note)"
	"$B" stop wbench >/dev/null
	wait "$sup" || true
}

haproxy_cfg() {	# dir port [master-worker]
	mkdir -p "$1"
	{
		echo "global"
		[ -n "${3:-}" ] && printf '\tmaster-worker\n\tstats socket %s/admin.sock mode 600 level admin expose-fd listeners\n' "$1"
		printf '\tmaxconn 8192\ndefaults\n\tmode http\n\ttimeout client 30s\n\ttimeout server 30s\n'
		printf '\ttimeout connect 5s\n\ttimeout http-keep-alive 30s\nfrontend f\n\tbind 127.0.0.1:%s\n' "$2"
		printf '\thttp-request return status 200 content-type text/plain string "ok"\n'
	} >"$1/haproxy.cfg"
}

# HAProxy's own seamless reload (master-worker, USR2) under wrk
wrk_haproxy() {	# mode
	haproxy_cfg "$tmp/whap" 8088 mw
	haproxy -W -db -q -f "$tmp/whap/haproxy.cfg" 2>>"$tmp/whap/stderr" &
	local hp=$! i
	PIDS+=("$hp")
	wait_port 8088
	wrk_start 8088 "$1"
	for i in $(seq "$WRK_RELOADS"); do
		kill -USR2 "$hp"
		sleep "$WRK_GAP"
	done
	wrk_row "haproxy seamless (USR2)" "$1"
	kill -USR1 "$hp"
	sleep 0.3
	kill -TERM "$hp" 2>/dev/null || true
	wait "$hp" || true
}

apache_conf() {	# dir port: mpm_event, keep-alive, one pid file per generation
	mkdir -p "$1/www"
	echo ok >"$1/www/index.html"
	cat >"$1/apache.conf" <<EOF
ServerRoot $1
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
Listen 127.0.0.1:$2
ServerName localhost
PidFile $1/apache-\${BATON_GENERATION}.pid
DefaultRuntimeDir $1
Mutex file:$1
ErrorLog $1/error.log
DocumentRoot $1/www
User nobody
Group nogroup
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
<Directory $1/www>
Require all granted
</Directory>
EOF
}

# Apache's own graceful restart under wrk
wrk_apache() {	# mode
	apache_conf "$tmp/wap" 8089
	BATON_GENERATION=own apache2 -f "$tmp/wap/apache.conf" -DFOREGROUND 2>>"$tmp/wap/stderr" &
	local ap=$! i
	PIDS+=("$ap")
	wait_port 8089
	wrk_start 8089 "$1"
	for i in $(seq "$WRK_RELOADS"); do
		kill -USR1 "$ap"	# graceful restart
		sleep "$WRK_GAP"
	done
	wrk_row "apache2 graceful (USR1)" "$1"
	kill -WINCH "$ap"
	sleep 0.3
	kill -TERM "$ap" 2>/dev/null || true
	wait "$ap" || true
}

wrk_table() {
	if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
		echo "wrk rows: wrk or nginx not installed (scripts/install-deps installs both), skipped"
		return
	fi
	for mode in conn keepalive; do
		wrk_nginx "$mode"
		wrk_baton_nginx "baton run + nginx" "$mode" ""
		wrk_baton_nginx "baton run + nginx ?handoff=idle" "$mode" "&handoff=idle"
	done
	# keep-alive only: what the handoff is for (and the CI run stays short)
	if command -v haproxy >/dev/null; then
		wrk_haproxy keepalive
		haproxy_cfg "$tmp/wbhap" 8090
		wrk_baton "baton run + haproxy ?handoff=idle" keepalive 8090 "&handoff=idle" --ready delay:300ms \
			--stop-signal USR1 -- haproxy -db -q -f "$tmp/wbhap/haproxy.cfg"
	else
		WROWS+=("haproxy: not installed, skipped")
	fi
	if command -v apache2 >/dev/null; then
		wrk_apache keepalive
		apache_conf "$tmp/wbap" 8091
		wrk_baton "baton run + apache2 ?handoff=idle" keepalive 8091 "&handoff=idle" --ready delay:300ms \
			--stop-signal WINCH -- apache2 -f "$tmp/wbap/apache.conf" -DFOREGROUND
	else
		WROWS+=("apache2: not installed (scripts/install-deps installs it), skipped")
	fi
	echo "wrk -t2 -c$WRK_CONC: $WRK_RELOADS reloads per row, one every ${WRK_GAP}s (stop signals: nginx QUIT, haproxy USR1, apache2 WINCH: each one's graceful stop)"
	printf '%-34s %-10s %7s %9s %7s  %s\n' config mode reloads requests errors "wrk socket errors (connect, read, write, timeout)"
	printf '%s\n' "${WROWS[@]}"
	echo "keepalive errors without handoff: the old nginx closes each idle keep-alive connection at its graceful stop"
}

# ---- steady state: what ?handoff=idle costs while nothing reloads -----------------

steady_sup() {	# name port listen-options: baton run + nginx, waits until it serves
	local i
	nginx_conf "$tmp/s$1" "$2"
	"$B" run --name "$1" --listen "tcp://127.0.0.1:$2?backlog=4096$3" --stop-signal QUIT -- \
		nginx -c "$tmp/s$1/nginx.conf" -p "$tmp/s$1" >"$tmp/s$1.log" 2>&1 &
	PIDS+=("$!")
	SSUPS+=("$!")
	for i in $(seq 100); do
		"$B" status "$1" --json 2>/dev/null | grep -q '"state":"active"' && break
		sleep 0.05
	done
	wait_port "$2" || { cat "$tmp/s$1.log" >&2; return 1; }
}
steady_rate() {	# port: keep-alive requests/s of one round
	wrk -t2 -c"$WRK_CONC" -d"${STEADY_SECS}s" "http://127.0.0.1:$1/" 2>&1 |
		awk '/^Requests\/sec:/ {printf "%d", $2}'
}
steady_row() {
	local r plain=() hand=() mp mh
	SSUPS=()
	if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
		echo "steady state: wrk or nginx not installed (scripts/install-deps installs both), skipped"
		return
	fi
	steady_sup splain 8092 ""
	steady_sup shand 8093 "&handoff=idle"
	# alternating, so that whatever else runs on the machine hits both
	# alike, and in ABBA order, so that neither always runs first
	for r in $(seq "$STEADY_ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			plain+=("$(steady_rate 8092)")
			hand+=("$(steady_rate 8093)")
		else
			hand+=("$(steady_rate 8093)")
			plain+=("$(steady_rate 8092)")
		fi
	done
	"$B" stop splain >/dev/null 2>&1 || true
	"$B" stop shand >/dev/null 2>&1 || true
	wait "${SSUPS[@]}" || true
	mp=$(printf '%s\n' "${plain[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	mh=$(printf '%s\n' "${hand[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "steady state, keep-alive, no reload: wrk -t2 -c$WRK_CONC, $STEADY_ROUNDS alternating rounds of ${STEADY_SECS}s (requests/s)"
	printf '%-34s %9s  %s\n' config median rounds
	printf '%-34s %9s  %s\n' "baton run + nginx" "$mp" "${plain[*]}"
	printf '%-34s %9s  %s\n' "baton run + nginx ?handoff=idle" "$mh" "${hand[*]}"
	awk -v h="$mh" -v p="$mp" 'BEGIN {if (p > 0) printf "ratio of medians handoff/plain: %.3f\n", h / p}'
	# each round's pair ran back to back: its ratio is the least disturbed
	paste <(printf '%s\n' "${hand[@]}") <(printf '%s\n' "${plain[@]}") |
		awk '$2 > 0 {print $1 / $2}' | sort -g |
		awk '{a[NR]=$1} END {if (NR) printf "median of per-round ratios handoff/plain: %.3f (rounds in ABBA order; goal >= 0.97)\n", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

if [ "$STEADY_ONLY" = 1 ]; then
	steady_row
	exit 0
fi
if [ "$WRK_ONLY" = 1 ]; then
	wrk_table
	echo
	steady_row
	exit 0
fi

echo "bench/reload: $N reloads per row under $CONC concurrent connections, one every ${GAP}s"
build_go >"$tmp/go-build.log" 2>&1 || GOSRV=
for mode in conn keepalive; do
	bench_baton "$mode"
	if command -v nginx >/dev/null; then bench_nginx "$mode"; else ROWS+=("nginx: not installed, skipped"); fi
	if command -v haproxy >/dev/null; then bench_haproxy "$mode"; else ROWS+=("haproxy: not installed, skipped"); fi
	if command -v nginx >/dev/null; then bench_baton_nginx "$mode"; else ROWS+=("baton run + nginx: nginx not installed, skipped"); fi
	if [ -n "$PY" ]; then
		bench_baton_python "$mode"
		bench_python_restart "$mode"
	else
		ROWS+=("python3: not installed, skipped")
	fi
	if [ -n "$GOSRV" ]; then
		bench_baton_go "$mode"
		bench_go_restart "$mode"
	else
		ROWS+=("go: golang-go not installed (or the build failed), skipped")
	fi
done
printf '%-22s %-10s %7s %9s %7s %9s %9s %9s %9s %9s\n' config mode reloads requests failed "reload50" "reload99" "ovh50" "ovh99" "fail/100"
printf '%s\n' "${ROWS[@]}"
echo "reload = ms from the reload request to the switch; ovh = baton's own ms beyond the new generation's readiness (goal <= 5)"
echo "fail/100 = failed requests per 100 reloads"
echo
wrk_table
echo
steady_row
