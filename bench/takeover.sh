#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/takeover: servers started by hand (nginx with and without reuseport,
# python's http.server) taken over by `baton run --takeover` under load, then
# reloaded N times, with failed requests counted by bench/loadgen for the
# whole run. Runs in a network namespace of its own; needs root.
set -euo pipefail

N=5
SECS=8
case "${1:-}" in
-h|--help) echo "usage: bench/takeover.sh [RELOADS] (default 5); needs root; build first: make"; exit 0 ;;
[0-9]*) N=$1 ;;
esac
if [ -z "${BATON_TAKEOVER_NETNS:-}" ]; then
	exec env BATON_TAKEOVER_NETNS=1 unshare -n "$0" "$@"
fi
ip link set lo up
cd "$(dirname "$0")/.."
B=build/baton
D=$(mktemp -d)
chmod 755 "$D"
export BATON_RUNTIME_DIR=$D/run	# baton's alone (0700), beside the 0755 docroot
trap 'rm -rf "$D"' EXIT
echo ok > "$D/index.html"

nginx_conf() {
	cat > "$D/nginx.conf" <<EOC
worker_processes 2;
daemon off;
master_process on;
pid $D/nginx.pid;
error_log $D/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $D; proxy_temp_path $D; fastcgi_temp_path $D;
 uwsgi_temp_path $D; scgi_temp_path $D;
 server { listen 127.0.0.1:8080 $1; location / { return 200 "ok\n"; } } }
EOC
}

# case NAME "BATON OPTIONS" SERVER ARGS...: started by hand, taken over, N reloads
run_case() {
	local name=$1 opts=$2
	shift 2
	# a background job of a script has SIGINT ignored: python must hear it
	python3 -c 'import os,signal,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
		"$@" > "$D/server.log" 2>&1 &
	local srv=$! i
	for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break; sleep 0.05; done
	build/bench/loadgen --port 8080 --mode conn --concurrency 16 --duration $SECS --timeout-ms 3000 --json \
		> "$D/load.json" &
	local lg=$!
	sleep 0.5
	# shellcheck disable=SC2086
	$B run --name tk --takeover $srv --listen tcp://127.0.0.1:8080 $opts --grace 10s -- "$@" > "$D/baton.log" 2>&1 &
	local bp=$!
	for i in $(seq 250); do $B status tk --json 2>/dev/null | grep -q '"id":1,"pid":[0-9]*,"state":"active"' && break; sleep 0.02; done
	for i in $(seq "$N"); do $B reload tk > /dev/null || echo "reload $i failed"; sleep 0.3; done
	wait $lg || true
	local mode
	mode=$($B status tk | sed -n 's/^listener 0: .*(\(.*\))$/\1/p')
	$B stop tk > /dev/null
	wait $bp || true
	wait $srv 2>/dev/null || true
	python3 - "$name" "$mode" "$D/load.json" <<'EOP'
import json, sys
r = json.load(open(sys.argv[3]))
print(f"{sys.argv[1]:<34} {sys.argv[2]:<8} {r['requests']:>8} {r['failed']:>7}  (refused {r['refused']}, reset {r['reset']}, timeout {r['timeout']}, truncated {r['truncated']})")
EOP
}

printf '%-34s %-8s %8s %7s\n' "server, then $N reloads" mode requests failed
nginx_conf reuseport
run_case "nginx reuseport" "--stop-signal QUIT" /usr/sbin/nginx -c "$D/nginx.conf" -p "$D"
nginx_conf ""
run_case "nginx plain" "--stop-signal QUIT" /usr/sbin/nginx -c "$D/nginx.conf" -p "$D"
run_case "python http.server" "--ready listen --stop-signal INT" \
	/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$D" 8080
run_case "python, --takeover-reuseport" "--takeover-reuseport --ready listen --stop-signal INT --stop-when-idle" \
	/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$D" 8080
