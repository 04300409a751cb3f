/* SPDX-License-Identifier: BSD-2-Clause */
/* The runtime directory, baton's or nothing: opened once O_NOFOLLOW and
 * refused unless this uid owns it alone, then used only through that fd;
 * and the locks that make one supervisor per name (NAME.lock there, and
 * the bpffs pin directory the name's steering maps live in). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"
#include "rundir.h"

/* The pid that holds a flock on the file open as FD, from /proc/locks;
 * 0 if it cannot be told. */
pid_t rundir_lock_holder(int fd)
{
	struct stat st;
	char line[256];
	pid_t who = 0;
	FILE *f;

	if (fstat(fd, &st) || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!who && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long ino;
		int pid;
		char *p = strstr(line, "FLOCK");

		if (!p || sscanf(p, "FLOCK %*s %*s %d %x:%x:%llu", &pid, &maj, &min, &ino) != 4)
			continue;
		if (ino == (unsigned long long)st.st_ino && makedev(maj, min) == st.st_dev && pid > 0)
			who = pid;
	}
	fclose(f);
	return who;
}

/* Creates the runtime directory if it is missing and opens it; refuses
 * one that is a symlink, is not ours, or that others may enter: whoever
 * can write there can plant a state file this supervisor would act on, or
 * a symlink its writes would follow. */
int rundir_open(struct sup *s)
{
	char dir[4096];
	struct stat st;
	int fd, r;

	if ((r = sup_runtime_dir(dir, sizeof(dir)))) {
		say_err(s, "no runtime directory: set BATON_RUNTIME_DIR or XDG_RUNTIME_DIR");
		return r;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		r = -errno;
		say_err(s, "cannot create the runtime directory %s: %s", dir, strerror(errno));
		return r;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (errno == ELOOP || errno == ENOTDIR)	/* O_DIRECTORY on a symlink says ENOTDIR */
			say_err(s, "refusing the runtime directory %s: it is %s: remove it, or set BATON_RUNTIME_DIR to "
				   "a directory only uid %u can enter", dir,
				!lstat(dir, &st) && S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory",
				(unsigned)geteuid());
		else
			say_err(s, "cannot open the runtime directory %s: %s", dir, strerror(errno));
		return r;
	}
	if (fstat(fd, &st)) {
		r = -errno;
		close(fd);
		return r;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		say_err(s, "refusing the runtime directory %s: it is owned by uid %u with mode %04o, but must be owned "
			   "by uid %u (this user) with no access for group or others, or another user could plant the "
			   "state this supervisor acts on; %s, or set BATON_RUNTIME_DIR to another directory", dir,
			(unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid(),
			st.st_uid != geteuid() ? "remove it (baton creates it again)" : "chmod 700 it");
		close(fd);
		return -EPERM;
	}
	s->rundir = fd;
	return 0;
}

/* Before a retry of a write the directory refused: opened again by its
 * path (a read-only mount may have been replaced by a writable one), with
 * the same checks, silently; the old fd stays if the new one fails them. */
void rundir_reopen(struct sup *s)
{
	char dir[4096];
	struct stat st;
	int fd;

	if (sup_runtime_dir(dir, sizeof(dir)))
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return;
	}
	if (s->rundir >= 0)
		close(s->rundir);
	s->rundir = fd;
}

/* Opens NAME in the runtime directory for reading: a regular file of
 * ours, never through a symlink. -errno, said unless it is missing. */
int rundir_open_file(struct sup *s, const char *name, const char *what)
{
	struct stat st;
	int fd = openat(s->rundir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), r;

	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			say_err(s, "cannot open the %s %s: %s", what, name, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		say_err(s, "refusing the %s %s: it is %s owned by uid %u, not a file of uid %u (this user); remove "
			   "it", what, name, S_ISREG(st.st_mode) ? "a file" : "not a regular file", (unsigned)st.st_uid,
			(unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	fcntl(fd, F_SETFL, 0);
	return fd;
}

/* One supervisor per name: an exclusive flock on NAME.lock, held for the
 * supervisor's life (across `baton upgrade`, see upgrade.c) and taken
 * before anything in the directory is created or removed. The loser
 * changes nothing and names the winner. */
int rundir_lock(struct sup *s)
{
	char name[BATON_NAME_MAX + 8];
	struct stat st;
	int fd, tries = 0, waits = 0;

	if (s->lockfd >= 0)
		return 0;	/* inherited across `baton upgrade` */
	snprintf(name, sizeof(name), "%s.lock", s->name);
again:
	/* read-only is enough for flock, and opens on a read-only mount */
	fd = openat(s->rundir, name, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int r = -errno;

		if (r == -EROFS || r == -ENOSPC || r == -EDQUOT) {
			/* a directory we cannot write must not keep a restart
			 * from taking its generations back */
			say_warn(s, "cannot create the lock file %s in the runtime directory (%s): starting without it; "
				    "nothing else keeps a second supervisor of this name from starting meanwhile",
				 name, strerror(-r));
			return 0;
		}
		say_err(s, "cannot open the lock file %s in the runtime directory: %s", name, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		say_err(s, "refusing the lock file %s: it is not a file of uid %u (this user); remove it", name,
			(unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if (!flock(fd, LOCK_EX | LOCK_NB)) {
		struct stat now;

		/* a lock on a file a stopping supervisor just removed is no
		 * lock: the next start creates another */
		if (fstatat(s->rundir, name, &now, AT_SYMLINK_NOFOLLOW) || now.st_ino != st.st_ino ||
		    now.st_dev != st.st_dev) {
			close(fd);
			if (++tries < 5)
				goto again;
			say_err(s, "cannot lock %s: it keeps being replaced", name);
			return -EAGAIN;
		}
	} else {
		int r = -errno;
		pid_t who = rundir_lock_holder(fd);

		close(fd);
		/* The pid that took the lock is gone (/proc/locks shows 0 for
		 * it), yet the lock is held: a child it forked just before it
		 * died holds a copy of the lock's descriptor until its exec
		 * (close-on-exec). Wait for that, up to a second, rather than
		 * refuse a restart. */
		if (r == -EWOULDBLOCK && (who <= 0 || (kill(who, 0) && errno == ESRCH)) && ++waits < 100) {
			usleep(10000);
			goto again;
		}
		if (r == -EWOULDBLOCK) {
			if (who > 0)
				say_err(s, "a supervisor named \"%s\" already runs (pid %d); use baton status/reload/stop "
					   "%s, or pick another --name", s->name, (int)who, s->name);
			else
				say_err(s, "a supervisor named \"%s\" already runs (it holds %s); use baton "
					   "status/reload/stop %s, or pick another --name", s->name, name, s->name);
			return -EADDRINUSE;
		}
		say_err(s, "cannot lock %s: %s", name, strerror(-r));
		return r;
	}
	s->lockfd = fd;
	return 0;
}

/* The steering maps of a name are pinned under one bpffs directory
 * whatever the runtime directory: a second supervisor of the same name
 * (another BATON_RUNTIME_DIR, or the first's directory deleted under it)
 * must neither clear nor take them. A flock on that directory says whose
 * they are. 0: ours; -EADDRINUSE: another supervisor's (said). */
int rundir_lock_pins(struct sup *s)
{
	int fd;

	if (s->pinlockfd >= 0 || !s->pin_root[0])
		return 0;
	{
		char parent[sizeof(s->pin_root)], *slash;

		snprintf(parent, sizeof(parent), "%s", s->pin_root);
		if ((slash = strrchr(parent, '/')) && slash != parent) {
			*slash = '\0';
			mkdir(parent, 0700);
		}
	}
	if (mkdir(s->pin_root, 0700) && errno != EEXIST) {
		/* the parent may be missing: the group creates it, and then
		 * nobody else had pins here */
		s->pins_ours = true;
		return 0;
	}
	fd = open(s->pin_root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		s->pins_ours = true;
		return 0;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int r = errno;
		pid_t who = rundir_lock_holder(fd);

		close(fd);
		if (r == EWOULDBLOCK) {
			say_err(s, "the steering maps of \"%s\" (%s) belong to a running supervisor%s%.0d%s (started with "
				   "another runtime directory, or one deleted since): stop it with the runtime directory "
				   "it was started with, or pick another --name", s->name, s->pin_root,
				who > 0 ? ", pid " : "", (int)who, who > 0 ? "," : "");
			return -EADDRINUSE;
		}
		s->pins_ours = true;	/* no locks on this file system: as before */
		return 0;
	}
	s->pinlockfd = fd;
	s->pins_ours = true;
	return 0;
}

/* Binds unix socket FD to NAME in the runtime directory, through the
 * directory's fd (so that no path component can be swapped under it) and
 * with a 0177 umask (so that it is never, even for a moment, reachable by
 * others). A stale file of ours goes first; another user's is refused. */
int rundir_bind(struct sup *s, int fd, const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int r;

	if (!fstatat(s->rundir, name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (st.st_uid != geteuid() || !S_ISSOCK(st.st_mode)) {
			say_err(s, "refusing to replace %s in the runtime directory: it is %s owned by uid %u; remove it",
				name, S_ISSOCK(st.st_mode) ? "a socket" : "not a socket", (unsigned)st.st_uid);
			return -EPERM;
		}
		if (unlinkat(s->rundir, name, 0) && errno != ENOENT)
			return -errno;
	}
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "/proc/self/fd/%d/%s", s->rundir, name) >=
	    sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(old);
	return r;
}

/* Removes NAME from the runtime directory if it is ours. */
void rundir_unlink(struct sup *s, const char *name)
{
	struct stat st;

	if (s->rundir < 0 || fstatat(s->rundir, name, &st, AT_SYMLINK_NOFOLLOW) || st.st_uid != geteuid())
		return;
	unlinkat(s->rundir, name, 0);
}
