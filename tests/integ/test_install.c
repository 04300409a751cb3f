/* SPDX-License-Identifier: BSD-2-Clause */
/* make install into a staging directory (DESTDIR), then what a user of the
 * library does: compile with `pkg-config --cflags --libs libbaton`, run
 * against the installed libbaton.so.0; then make uninstall leaves nothing.
 * And make install into the real default prefix (a private tmpfs over
 * /usr/local, /etc copied on write): a program builds and runs with no step
 * after it (ldconfig ran), and uninstall removes the folders it made. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baton.h"
#include "harness.h"
#include "helpers.h"

static char stage[] = "/tmp/baton-install.XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path) ? -1 : 0;
}

/* at exit, so a failed assertion leaves no staging tree behind */
static void rm_stage(void)
{
	nftw(stage, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* PROG on $PATH, or skip naming it. */
static void need(const char *prog, char *path, size_t len)
{
	const char *p = getenv("PATH");

	while (p && *p) {
		size_t n = strcspn(p, ":");

		snprintf(path, len, "%.*s/%s", (int)n, p, prog);
		if (n && !access(path, X_OK))
			return;
		p += n + (p[n] == ':');
	}
	SKIP("%s is not installed (needed to build a program against the installed library)", prog);
}

/* The child runs outside the `make check` that started the tests: its
 * MAKEFLAGS (SANITIZE=1, TESTS=..., the jobserver) must not reach the make
 * the test runs; CTX, if set, is the LD_LIBRARY_PATH to run with. */
static void clean_make_env(void *ctx)
{
	const char *ld = ctx;

	unsetenv("MAKEFLAGS");
	unsetenv("MFLAGS");
	unsetenv("MAKELEVEL");
	unsetenv("MAKEOVERRIDES");
	/* and the directories are the defaults the test looks in */
	for (const char *const *v = (const char *const[]){ "DESTDIR", "PREFIX", "BINDIR", "LIBDIR", "INCLUDEDIR",
							    "MANDIR", "PKGCONFIGDIR", "PRELOADDIR", NULL };
	     *v; v++)
		unsetenv(*v);
	if (ld)
		setenv("LD_LIBRARY_PATH", ld, 1);
}

/* The source tree SRC and the tools a user builds with (PATH_MAX each), or skip. */
static void need_build_tools(const char *src, char *make, char *cc, char *pc)
{
	if (!src || !*src)
		SKIP("BATON_SRCDIR does not name the source tree (run through make check)");
	need("make", make, PATH_MAX);
	need("cc", cc, PATH_MAX);
	need("pkg-config", pc, PATH_MAX);
}

/* Whether `make -q installables` finds the build in SRC up to date: make
 * install copies what `make` built; the test must not build it. */
static bool make_up_to_date(const char *make, const char *src)
{
	char *argv[] = { (char *)make, "-C", (char *)src, "-q", "SANITIZE=0", "installables", NULL };
	char out[8192], err[8192];

	return bt_run_with(argv, clean_make_env, NULL, out, sizeof(out), err, sizeof(err), 30) == 0;
}

/* `make -C SRC -s SANITIZE=0 [DESTDIR=...] TARGET` (DESTDIR NULL: none),
 * which must exit 0 within TIMEOUT_S. */
static void make_target(const char *make, const char *src, const char *destdir, const char *target, int timeout_s)
{
	char *argv[] = { (char *)make, "-C", (char *)src, "-s", "SANITIZE=0", (char *)(destdir ? destdir : target),
			 destdir ? (char *)target : NULL, NULL };
	char out[8192], err[8192];
	int rc = bt_run_with(argv, clean_make_env, NULL, out, sizeof(out), err, sizeof(err), timeout_s);

	bt_log("make %s: %s%s", target, out, err);
	if (rc != 0)
		FAIL("make %s %s: exit %d: %s", target, destdir ? destdir : "", rc, err);
}

static void pkg_config_env(void *ctx)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/usr/local/lib/pkgconfig", stage);
	setenv("PKG_CONFIG_PATH", path, 1);
	setenv("PKG_CONFIG_SYSROOT_DIR", stage, 1);
	clean_make_env(ctx);
}

static const char prog_c[] =
	"#define _GNU_SOURCE\n"
	"#include <baton.h>\n"
	"#include <dlfcn.h>\n"
	"#include <netinet/in.h>\n"
	"#include <stdio.h>\n"
	"#include <sys/socket.h>\n"
	"int main(void)\n"
	"{\n"
	"	struct baton_spec spec;\n"
	"	struct sockaddr_in sin;\n"
	"	socklen_t len = sizeof(sin);\n"
	"	char err[256], text[256];\n"
	"	int fd, on = 0;\n"
	"	socklen_t onlen = sizeof(on);\n"
	"	Dl_info info;\n"
	"	if (baton_spec_parse(\"tcp://127.0.0.1:0?name=probe\", &spec, err, sizeof(err)) < 0) {\n"
	"		fprintf(stderr, \"parse: %s\\n\", err);\n"
	"		return 1;\n"
	"	}\n"
	"	if (baton_spec_format(&spec, text, sizeof(text)) < 0 || (fd = baton_listener_open(&spec)) < 0)\n"
	"		return 2;\n"
	"	if (getsockname(fd, (struct sockaddr *)&sin, &len) ||\n"
	"	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &onlen))\n"
	"		return 3;\n"
	"	if (!dladdr((void *)baton_spec_parse, &info) || !info.dli_fname)\n"
	"		return 4;\n"
	"	printf(\"spec %s\\nlistening %d port %d\\nlibrary %s\\n\", text, on, ntohs(sin.sin_port), info.dli_fname);\n"
	"	return 0;\n"
	"}\n";

TEST_TIMEOUT(install_builds_a_program_with_pkg_config_and_uninstall_removes_it, 90)
{
	const char *src = getenv("BATON_SRCDIR");
	char make[PATH_MAX], cc[PATH_MAX], pc[PATH_MAX], destdir[PATH_MAX + 16], path[PATH_MAX * 2];
	char prog[PATH_MAX], progsrc[PATH_MAX], libdir[PATH_MAX], want[PATH_MAX * 2];
	char out[8192], err[8192], target[64];
	static const char *const files[] = {
		"bin/baton", "lib/baton/libbaton-preload.so", "lib/libbaton.so." BATON_VERSION, "lib/libbaton.so.0",
		"lib/libbaton.so", "lib/libbaton.a", "lib/pkgconfig/libbaton.pc", "include/baton.h",
		"include/baton_handover_wire.h", "share/man/man1/baton.1", "share/man/man3/baton.3",
		"share/bash-completion/completions/baton",
	};
	struct stat st;
	FILE *f;
	size_t i;
	ssize_t n;
	int rc;

	need_build_tools(src, make, cc, pc);
	if (!mkdtemp(stage))
		FAIL("mkdtemp: %s", strerror(errno));
	atexit(rm_stage);
	snprintf(destdir, sizeof(destdir), "DESTDIR=%s", stage);

	/* Installing copies what `make` built; the test must not build it. */
	if (!make_up_to_date(make, src))
		SKIP("the plain build in %s/build is not up to date, or was built for other than the default "
		     "directories (make install would rebuild it): run make all",
		     src);
	make_target(make, src, destdir, "install", 30);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/usr/local/%s", stage, files[i]);
		if (lstat(path, &st))
			FAIL("make install did not install %s: %s", path, strerror(errno));
	}
	/* the development link and the soname link point down the chain */
	snprintf(path, sizeof(path), "%s/usr/local/lib/libbaton.so", stage);
	n = readlink(path, target, sizeof(target) - 1);
	ASSERT_GT(n, 0);
	target[n] = '\0';
	ASSERT_STREQ(target, "libbaton.so.0");
	snprintf(path, sizeof(path), "%s/usr/local/lib/libbaton.so.0", stage);
	n = readlink(path, target, sizeof(target) - 1);
	ASSERT_GT(n, 0);
	target[n] = '\0';
	ASSERT_STREQ(target, "libbaton.so." BATON_VERSION);
	snprintf(path, sizeof(path), "%s/usr/local/bin/baton", stage);
	ASSERT_EQ(access(path, X_OK), 0);

	snprintf(progsrc, sizeof(progsrc), "%s/prog.c", stage);
	snprintf(prog, sizeof(prog), "%s/prog", stage);
	f = fopen(progsrc, "we");
	if (!f || fputs(prog_c, f) < 0 || fclose(f))
		FAIL("writing %s: %s", progsrc, strerror(errno));
	{
		char *argv[] = { pc, "--cflags", "--libs", "libbaton", NULL };

		rc = bt_run_with(argv, pkg_config_env, NULL, out, sizeof(out), err, sizeof(err), 10);
		if (rc != 0)
			FAIL("pkg-config --cflags --libs libbaton: exit %d: %s", rc, err);
		snprintf(want, sizeof(want), "-I%s/usr/local/include", stage);
		ASSERT_CONTAINS(out, want);
		snprintf(want, sizeof(want), "-L%s/usr/local/lib", stage);
		ASSERT_CONTAINS(out, want);
		ASSERT_CONTAINS(out, "-lbaton");
	}
	{
		/* as a user would write it: the flags word-split by the shell */
		char *argv[] = { "/bin/sh", "-c", "exec \"$1\" -o \"$2\" \"$3\" $(pkg-config --cflags --libs libbaton)",
				 "sh", cc, prog, progsrc, NULL };

		rc = bt_run_with(argv, pkg_config_env, NULL, out, sizeof(out), err, sizeof(err), 30);
		if (rc != 0)
			FAIL("cc with pkg-config's flags: exit %d: %s", rc, err);
	}
	snprintf(libdir, sizeof(libdir), "%s/usr/local/lib", stage);
	{
		char *argv[] = { prog, NULL };

		rc = bt_run_with(argv, clean_make_env, libdir, out, sizeof(out), err, sizeof(err), 10);
		if (rc != 0)
			FAIL("the program built against the installed library: exit %d: %s%s", rc, out, err);
	}
	bt_log("%s", out);
	ASSERT_CONTAINS(out, "spec tcp://127.0.0.1:0?");
	ASSERT_CONTAINS(out, "name=probe\n");
	ASSERT_CONTAINS(out, "listening 1 port ");
	ASSERT_TRUE(!strstr(out, "listening 1 port 0\n"));
	/* linked to the installed shared library, through its soname */
	snprintf(want, sizeof(want), "library %s/libbaton.so.0\n", libdir);
	ASSERT_CONTAINS(out, want);

	make_target(make, src, destdir, "uninstall", 30);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/usr/local/%s", stage, files[i]);
		if (!lstat(path, &st))
			FAIL("make uninstall left %s", path);
	}
	snprintf(path, sizeof(path), "%s/usr/local/lib/baton", stage);
	if (!lstat(path, &st))
		FAIL("make uninstall left the shim's directory %s", path);
	/* and the folders install made in the stage, once empty */
	snprintf(path, sizeof(path), "%s/usr/local/bin", stage);
	if (!lstat(path, &st))
		FAIL("make uninstall left the folder %s that install created", path);
	snprintf(path, sizeof(path), "%s/usr/local/share", stage);
	if (!lstat(path, &st))
		FAIL("make uninstall left the folder %s that install created", path);
	/* only what install put there: the program the test built stays */
	ASSERT_EQ(access(prog, X_OK), 0);
}

/* Entries in folder PATH, . and .. aside; -1 if it cannot be read. */
static int entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static char etc_up[] = "/tmp/baton-etc.XXXXXX";

/* at exit: the copy-on-write /etc goes, then its folder in the real /tmp */
static void rm_etc_up(void)
{
	umount2("/etc", MNT_DETACH);
	umount2(etc_up, MNT_DETACH);
	rmdir(etc_up);
}

TEST_TIMEOUT(install_into_the_default_prefix_needs_no_other_step, 120)
{
	const char *src = getenv("BATON_SRCDIR");
	char make[PATH_MAX], cc[PATH_MAX], pc[PATH_MAX], opts[256], up[96], work[96];
	char prog[PATH_MAX], progsrc[PATH_MAX], out[8192], err[8192];
	FILE *f;
	int rc;

	need_build_tools(src, make, cc, pc);
	need("ldconfig", prog, sizeof(prog));
	if (geteuid() != 0)
		SKIP("needs root: make install into /usr/local runs ldconfig (in a private mount namespace)");
	if (!make_up_to_date(make, src))
		SKIP("the plain build in %s/build is not up to date for the default directories: run make all",
		     src);
	/* the machine's /usr/local and ld.so.cache stay as they are: this
	 * test's own /usr/local (empty) and /etc (copy on write) */
	if (!mkdtemp(etc_up))
		FAIL("mkdtemp: %s", strerror(errno));
	atexit(rm_etc_up);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		SKIP("cannot make a private mount namespace: %s", strerror(errno));
	if (mount("tmpfs", "/usr/local", "tmpfs", 0, "mode=0755") || mount("tmpfs", etc_up, "tmpfs", 0, "mode=0700"))
		SKIP("cannot mount a tmpfs over /usr/local: %s", strerror(errno));
	snprintf(up, sizeof(up), "%s/up", etc_up);
	snprintf(work, sizeof(work), "%s/work", etc_up);
	ASSERT_EQ(mkdir(up, 0755), 0);
	ASSERT_EQ(mkdir(work, 0755), 0);
	snprintf(opts, sizeof(opts), "lowerdir=/etc,upperdir=%s,workdir=%s", up, work);
	if (mount("overlay", "/etc", "overlay", 0, opts))
		SKIP("cannot put a copy-on-write /etc over the real one (overlayfs): %s", strerror(errno));

	make_target(make, src, NULL, "install", 60);
	snprintf(progsrc, sizeof(progsrc), "%s/prog.c", etc_up);
	snprintf(prog, sizeof(prog), "%s/prog", etc_up);
	f = fopen(progsrc, "we");
	if (!f || fputs(prog_c, f) < 0 || fclose(f))
		FAIL("writing %s: %s", progsrc, strerror(errno));
	{
		/* what a user types after make install, and nothing else */
		char *argv[] = { "/bin/sh", "-c", "cc -o \"$1\" \"$2\" $(pkg-config --cflags --libs libbaton) && exec \"$1\"",
				 "sh", prog, progsrc, NULL };

		rc = bt_run_with(argv, clean_make_env, NULL, out, sizeof(out), err, sizeof(err), 60);
		bt_log("%s%s", out, err);
		if (rc != 0)
			FAIL("build and run against the installed library: exit %d: %s%s", rc, out, err);
	}
	ASSERT_CONTAINS(out, "listening 1 port ");
	ASSERT_CONTAINS(out, "library /usr/local/lib/libbaton.so.0\n");
	make_target(make, src, NULL, "uninstall", 30);
	/* every folder under /usr/local was made by install: none is left */
	if (entries("/usr/local") != 0) {
		char *argv[] = { "/usr/bin/find", "/usr/local", NULL };

		bt_run(argv, out, sizeof(out), err, sizeof(err), 10);
		FAIL("make uninstall left in /usr/local: %s", out);
	}
}
