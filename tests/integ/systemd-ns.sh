#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# PID 1 of the private mount+pid+net namespaces in which
# tests/integ/test_systemd_real.c runs a real `systemd --user` with its own
# journald; nothing on the host is remounted. Also its teardown (cleanup).
#   systemd-ns.sh run CGNAME CONFDIR [NGINXCONF]  (as: unshare -mpnf --mount-proc ... sh this)
#   systemd-ns.sh cleanup CGNAME                  (after PID 1 is gone)
set -eu

# every cgroup hierarchy this host has that systemd looks at: the named v1
# one, the cgroup2 one beside it (hybrid) or cgroup2 alone (unified)
hierarchies() {
	for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
		[ -e "$h/cgroup.procs" ] && echo "$h"
	done
	return 0
}

if [ "$1" = cleanup ]; then
	for h in $(hierarchies); do
		# deepest first: the manager made its slices below ours
		[ -d "$h/$2" ] && find "$h/$2" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	exit 0
fi

cg=$2 conf=$3 nginxconf=${4:-}
for h in $(hierarchies); do
	mkdir -p "$h/$cg"
	echo $$ >"$h/$cg/cgroup.procs"
done
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/system /run/log /run/lock
# baton makes its runtime directory itself (0700) and refuses one that
# others can enter
mkdir -m 0700 -p /run/user/0
mount --bind /dev/null /dev/kmsg
# baton pins its maps under /sys/fs/bpf: a bpffs of our own, not the host's
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
# the nginx example uses Debian's /etc/nginx/nginx.conf: the test's own
# takes its place here only (logs and pid under this /run)
[ -n "$nginxconf" ] && mount --bind "$nginxconf" /etc/nginx/nginx.conf
/lib/systemd/systemd-journald &
# systemd --user in the foreground would be PID 1's only child to reap; the
# shell stays PID 1 and reaps everything (KillMode=process leaves orphans)
XDG_RUNTIME_DIR=/run/user/0 HOME=$conf XDG_CONFIG_HOME=$conf DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus \
	/lib/systemd/systemd --user </dev/null >"$conf/manager.log" 2>&1 &
trap 'kill -TERM -1 2>/dev/null; exit 0' TERM INT
while :; do
	sleep 1 &
	wait $! || true	# and any orphan that ended meanwhile
done
