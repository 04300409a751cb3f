/* SPDX-License-Identifier: BSD-2-Clause */
/* Whether a pin may have gone since the last check: one inotify descriptor
 * watching the pin root and each listener's folder, so that a reload checks
 * (and pins again) only after something was removed, not 17 stat calls per
 * listener every time. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "core.h"
#include "pinlayout.h"
#include "state.h"

#define GONE (IN_DELETE | IN_DELETE_SELF | IN_MOVED_FROM | IN_MOVE_SELF | IN_ONLYDIR)

void pinwatch_close(struct sup *s)
{
	if (s->pinwatch >= 0)
		close(s->pinwatch);
	s->pinwatch = -1;
}

/* Watches the root and every listener's folder from now on. Without a
 * watch on each (no inotify, the user's watch limit, a folder missing) the
 * descriptor is dropped and every reload checks every pin, as before. */
void pinwatch_arm(struct sup *s)
{
	char path[PATH_MAX];
	int l;

	if (s->pinwatch < 0)
		s->pinwatch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s->pinwatch < 0)
		return;
	if (inotify_add_watch(s->pinwatch, s->pin_root, GONE) < 0)
		goto drop;
	/* a folder that does not exist holds no pin to lose: with one
	 * steering set per supervisor only the set's folder does, and a
	 * watch dropped for the others made every reload check every
	 * listener's pins (tens of ms at 1,024 listeners) */
	for (l = 0; l < s->nl; l++)
		if (pin_listener_dir(path, sizeof(path), s->pin_root, l) ||
		    (inotify_add_watch(s->pinwatch, path, GONE) < 0 && errno != ENOENT))
			goto drop;
	return;
drop:
	pinwatch_close(s);
}

/* True unless the watch says nothing went since pinwatch_arm; what it
 * queued is read and dropped. */
bool pinwatch_changed(struct sup *s)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t n;

	if (s->pinwatch < 0)
		return true;
	while ((n = read(s->pinwatch, buf, sizeof(buf))) > 0)
		changed = true;
	if (n < 0 && errno != EAGAIN) {
		pinwatch_close(s);
		return true;
	}
	return changed;
}
