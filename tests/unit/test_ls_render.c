/* SPDX-License-Identifier: BSD-2-Clause */
/* baton ls rendering against recorded fixtures (no privilege needed): each
 * tests/fixtures/ls/NAME.fixture was recorded with `baton ls -a --record`
 * (as root, as root with --no-bpf, and as nobody) and must render exactly as
 * NAME.txt and NAME.json. BATON_UPDATE_FIXTURES=1 rewrites the expected
 * files instead, for review in the diff. Also: filters, and the fixture
 * format reads back what it wrote. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "lsfmt.h"

static const char *fixture_dir(void)
{
	const char *d = getenv("BATON_FIXTURES");

	return d ? d : "tests/fixtures";
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	FILE *m;
	int c;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	if (!m)
		FAIL("open_memstream: %s", strerror(errno));
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	return buf;
}

static void load(const char *name, struct baton_sock **v, size_t *n)
{
	char path[512], err[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/ls/%s.fixture", fixture_dir(), name);
	f = fopen(path, "re");
	if (!f)
		SKIP("fixture %s not found (%s): run from the source tree or set BATON_FIXTURES", path,
		     strerror(errno));
	if (ls_load(f, v, n, err, sizeof(err)))
		FAIL("%s: %s", path, err);
	fclose(f);
}

typedef void (*render_fn)(FILE *, const struct baton_sock *, size_t);

static void expect(const char *name, const char *ext, render_fn fn)
{
	struct baton_sock *v;
	char path[512], *got = NULL, *want;
	size_t n, len = 0;
	FILE *m;

	load(name, &v, &n);
	m = open_memstream(&got, &len);
	if (!m)
		FAIL("open_memstream: %s", strerror(errno));
	fn(m, v, n);
	fclose(m);
	free(v);
	snprintf(path, sizeof(path), "%s/ls/%s.%s", fixture_dir(), name, ext);
	if (getenv("BATON_UPDATE_FIXTURES")) {
		FILE *f = fopen(path, "we");

		if (!f || fputs(got, f) == EOF || fclose(f))
			FAIL("write %s: %s", path, strerror(errno));
		free(got);
		return;
	}
	want = slurp(path);
	if (!want)
		FAIL("expected output %s: %s", path, strerror(errno));
	if (strcmp(got, want)) {
		size_t i = 0;

		while (got[i] && got[i] == want[i])
			i++;
		FAIL("%s differs at byte %zu:\n--- got ---\n%s\n--- want ---\n%s", path, i, got + i, want + i);
	}
	free(got);
	free(want);
}

/* One test a fixture and a renderer: ls_render_FIXTURE_text and _json. */
#define LS_RENDER_TESTS(fx)                                 \
	TEST(ls_render_##fx##_text)                         \
	{                                                   \
		expect(#fx, "txt", ls_render_text);         \
	}                                                   \
	TEST(ls_render_##fx##_json)                         \
	{                                                   \
		expect(#fx, "json", ls_render_json);        \
	}

LS_RENDER_TESTS(root)
LS_RENDER_TESTS(nobpf)
LS_RENDER_TESTS(nobody)

/* Process names are chosen by their owners (prctl(PR_SET_NAME), argv[0]):
 * hostile.fixture has an ESC sequence that clears the screen and sets the
 * terminal title, an 8-bit CSI, a bidi override and bytes that are not
 * UTF-8. The text table shows each escaped, keeps valid UTF-8, and holds no
 * control byte at all; JSON escapes them its own way. */
TEST(ls_render_escapes_hostile_process_names)
{
	struct baton_sock *v;
	char *buf = NULL;
	size_t n, len = 0, i;
	FILE *m;

	expect("hostile", "txt", ls_render_text);
	expect("hostile", "json", ls_render_json);
	load("hostile", &v, &n);
	m = open_memstream(&buf, &len);
	ls_render_text(m, v, n);
	fclose(m);
	free(v);
	for (i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 && buf[i] != '\n')
			FAIL("control byte 0x%02x at %zu of the text output:\n%s", (unsigned char)buf[i], i, buf);
	ASSERT_CONTAINS(buf, "\\x1b[2J\\x1b]0;pwned\\x07[4242] fd 3");
	ASSERT_CONTAINS(buf, "caf\xc3\xa9\\\\x1b[4243]");	/* UTF-8 kept, a backslash doubled */
	ASSERT_CONTAINS(buf, "bad\\xff\\xc2\\x9b\\xe2\\x80\\xaex[4244]");
	ASSERT_CONTAINS(buf, "plain[4245] fd 3");
	free(buf);
}

TEST(ls_render_fixture_round_trip)
{
	static const char *const names[] = { "root", "nobpf", "nobody", "hostile" };
	char path[512], *orig, *again = NULL;
	struct baton_sock *v;
	size_t i, n, len = 0;
	FILE *m;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		load(names[i], &v, &n);
		ASSERT_GT(n, 0);
		m = open_memstream(&again, &len);
		ls_record(m, v, n);
		fclose(m);
		free(v);
		snprintf(path, sizeof(path), "%s/ls/%s.fixture", fixture_dir(), names[i]);
		orig = slurp(path);
		ASSERT_TRUE(orig != NULL);
		ASSERT_STREQ(again, orig);
		free(orig);
		free(again);
		again = NULL;
	}
}

TEST(ls_render_nothing_known_is_never_guessed)
{
	/* a socket nothing was read about but its address: every option is null */
	struct baton_sock s = { .proto = BATON_PROTO_TCP, .family = AF_INET, .state = 10, .lport = 80, .slot = -1 };
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	ls_render_json(m, &s, 1);
	fclose(m);
	ASSERT_CONTAINS(buf, "\"reuseaddr\": null");
	ASSERT_CONTAINS(buf, "\"group\": null");
	ASSERT_CONTAINS(buf, "\"program\": null");
	ASSERT_CONTAINS(buf, "\"slot\": null");
	ASSERT_CONTAINS(buf, "\"owners_complete\": false");
	free(buf);
	buf = NULL;
	m = open_memstream(&buf, &len);
	ls_render_text(m, &s, 1);
	fclose(m);
	ASSERT_CONTAINS(buf, "options=? group=?");
	free(buf);
}

TEST(ls_filter_forms)
{
	struct baton_sock s = { .proto = BATON_PROTO_TCP, .family = AF_INET, .lport = 8080,
				.local = { 127, 0, 0, 1 } };
	struct ls_filter f;
	char err[256];

	ASSERT_OK(ls_filter_parse("8080", &f, err, sizeof(err)));
	ASSERT_TRUE(ls_filter_match(&f, &s));
	ASSERT_OK(ls_filter_parse("127.0.0.1:8080", &f, err, sizeof(err)));
	ASSERT_TRUE(ls_filter_match(&f, &s));
	ASSERT_OK(ls_filter_parse("0.0.0.0:8080", &f, err, sizeof(err)));
	ASSERT_TRUE(!ls_filter_match(&f, &s));
	ASSERT_OK(ls_filter_parse("tcp://127.0.0.1:8080", &f, err, sizeof(err)));
	ASSERT_TRUE(ls_filter_match(&f, &s));
	ASSERT_OK(ls_filter_parse("udp://127.0.0.1:8080", &f, err, sizeof(err)));
	ASSERT_TRUE(!ls_filter_match(&f, &s));
	ASSERT_OK(ls_filter_parse("[::1]:8080", &f, err, sizeof(err)));
	ASSERT_TRUE(!ls_filter_match(&f, &s));
	ASSERT_OK(ls_filter_parse("8081", &f, err, sizeof(err)));
	ASSERT_TRUE(!ls_filter_match(&f, &s));
	ASSERT_EQ(ls_filter_parse("80a", &f, err, sizeof(err)), -EINVAL);
	ASSERT_CONTAINS(err, "bad filter \"80a\"");
	ASSERT_EQ(ls_filter_parse("65536", &f, err, sizeof(err)), -EINVAL);
	ASSERT_EQ(ls_filter_parse("[::1:80", &f, err, sizeof(err)), -EINVAL);
}

/* Stale pin directories: what the name says (v4, v6, a supervisor's, a
 * --pin of one's own), the way to remove each, and JSON null when unread. */
TEST(ls_render_stale_pins)
{
	struct ls_stale st[4];
	struct ls_filter f;
	char *buf = NULL, err[256];
	size_t len = 0;
	FILE *m;

	ls_stale_parse(&st[0], "/sys/fs/bpf/baton", "/sys/fs/bpf/baton/steer-127_0_0_1-8080");
	ASSERT_STREQ(st[0].spec, "tcp://127.0.0.1:8080");
	ls_stale_parse(&st[1], "/sys/fs/bpf/baton", "/sys/fs/bpf/baton/steer-__1-443");
	ASSERT_STREQ(st[1].spec, "tcp://[::1]:443");
	st[1].listening = true;
	ls_stale_parse(&st[2], "/sys/fs/bpf/baton", "/sys/fs/bpf/baton/run-web/http");
	ASSERT_STREQ(st[2].supervisor, "web");
	ASSERT_STREQ(st[2].spec, "");
	ls_stale_parse(&st[3], "/sys/fs/bpf/baton", "/sys/fs/bpf/baton/mine");
	ASSERT_OK(ls_filter_parse("8080", &f, err, sizeof(err)));
	ASSERT_TRUE(ls_stale_match(&f, &st[0]));
	ASSERT_TRUE(!ls_stale_match(&f, &st[1]));
	ASSERT_TRUE(!ls_stale_match(&f, &st[2]));

	m = open_memstream(&buf, &len);
	ls_render_stale_text(m, st, 4);
	fclose(m);
	ASSERT_CONTAINS(buf, "\nstale baton pins: /sys/fs/bpf/baton/steer-127_0_0_1-8080 (no listener on "
			     "127.0.0.1:8080); remove with baton steer --release tcp://127.0.0.1:8080\n");
	ASSERT_CONTAINS(buf, "(its sockets are gone; what listens on [::1]:443 now is not in it); remove with "
			     "baton steer --release tcp://[::1]:443\n");
	ASSERT_CONTAINS(buf, "(no socket of supervisor web is left); remove with baton stop web, or rm -r "
			     "/sys/fs/bpf/baton/run-web if it no longer runs\n");
	ASSERT_CONTAINS(buf, "/sys/fs/bpf/baton/mine (no socket of its group is left); remove with rm -r "
			     "/sys/fs/bpf/baton/mine\n");
	free(buf);

	buf = NULL;
	m = open_memstream(&buf, &len);
	ls_render_json_stale(m, NULL, 0, st, 1);
	fclose(m);
	ASSERT_STREQ(buf, "{\"sockets\": [],\n \"stale_pins\": [\n  {\"path\": "
			   "\"/sys/fs/bpf/baton/steer-127_0_0_1-8080\", \"listener\": \"tcp://127.0.0.1:8080\", "
			   "\"supervisor\": null, \"why\": \"no listener on 127.0.0.1:8080\", \"remove\": "
			   "\"baton steer --release tcp://127.0.0.1:8080\"}\n ]}\n");
	free(buf);
	buf = NULL;
	m = open_memstream(&buf, &len);
	ls_render_json_stale(m, NULL, 0, st, -1);
	fclose(m);
	ASSERT_STREQ(buf, "{\"sockets\": [],\n \"stale_pins\": null}\n");
	free(buf);
}
