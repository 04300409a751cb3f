/* SPDX-License-Identifier: BSD-2-Clause */
/* `baton status` text, --json and --metrics rendered from records built here
 * (no supervisor, no privilege): each must match tests/fixtures/status/NAME.*
 * byte for byte (scripts read them); the JSON must parse and carry exactly
 * the keys baton(1) documents, the metrics the documented families.
 * BATON_UPDATE_FIXTURES=1 rewrites the expected files, for review. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../../supervisor/statusview.h"

/* ---- records ---------------------------------------------------------------- */

static char *argv_ebpf[] = { "/usr/sbin/server", "--title=\033]0;owned\007", "caf\xc3\xa9", NULL };
static char *env_ebpf[] = { "MODE=canary", "DEBUG", NULL };
static char *argv_cbpf[] = { "/usr/sbin/nginx", "-g", "daemon off;", NULL };

static struct sv_member members[2][3][3];	/* view, generation, listener */
static struct sv_gen gens[2][3];
static struct sv_listener listeners[2][3];

/* eBPF: a canary under way, handoff, QUIC flows, the reload histogram. */
static void view_ebpf(struct status_view *v)
{
	struct sv_listener *l = listeners[0];
	struct sv_gen *g = gens[0];

	*v = (struct status_view){
		.name = "web", .version = "9.8.7", .pid = 4242, .mode = BATON_MODE_EBPF,
		.reloads_done = 3, .reloads_failed = 1, .restarts = 1, .degraded = "", .state_err = "",
		.state_file = "/run/baton/web.state", .last_reload = "ok after 6.2 ms: gen 3 (pid 4711) serves",
		.reloading = true, .command_set = true, .argv = argv_ebpf, .env = env_ebpf, .serving = 3,
		.stage = { .kind = STAGE_CANARY, .gen = 4, .old_gen = 3, .pct = 10, .step_ms = 5000, .age_ms = 777,
			   .next_step_in_ms = 4223, .probation_left_ms = -99, .check = "/healthz",
			   .checks_passed = 3, .checks_failed = 1, .check_last = "HTTP 200 \"ok\"\n",
			   .last = "canary gen 2 promoted after 60000 ms (every step passed)" },
		.has_handoff = true,
		.handoff = { .offered = 14, .handed_off = 10, .answered = 25, .no_target = 1, .expired = 1,
			     .unreachable = 1, .take_failed = 1, .refused = 2, .pending = 1 },
		.has_reloads = true,
		.reloads = { .last_ok = 1, .last_ok_ms = 1733300000123, .n = { 3, 1 }, .sum_us = { 18600, 2500000 },
			     .b = { { 1, 1, 1 }, { [8] = 1 } } },
		.nl = 3, .l = l, .ngen = 3, .gen = g,
	};
	l[0] = (struct sv_listener){ .spec = "tcp://0.0.0.0:8080?backlog=4096&handoff=idle", .port = 8080,
				     .mode = "steered", .gone = { 100, 2, 3 } };
	l[1] = (struct sv_listener){ .spec = "udp://0.0.0.0:4433?flows=quic", .port = 4433, .mode = "steered",
				     .udp = true,
				     .flows = { .mode = BATON_FLOWS_QUIC, .have = true, .idle_ms = 30000, .table = 16384,
						.entries = 40, .live = 31, .followed = 9000, .by_cid = 700, .created = 50,
						.expired = 9, .evicted = 1, .insert_failed = 2 } };
	l[2] = (struct sv_listener){ .spec = "tcp://[::1]:8443?backlog=128", .port = 8443, .mode = "steered" };
	g[0] = (struct sv_gen){ .id = 4, .pid = 4712, .state = GEN_CANARY, .start_wall_ms = 1733300007000,
				.uptime_ms = 810, .ready_after_ms = 33, .why = "", .health = "", .bind_mode = "shim",
				.has_handoff = true, .handoff = { .in = 3, .answered = 5 }, .m = members[0][0] };
	g[1] = (struct sv_gen){ .id = 3, .pid = 4711, .state = GEN_ACTIVE, .start_wall_ms = 1733300000000,
				.uptime_ms = 7810, .ready_after_ms = 17, .why = "", .health = "", .bind_mode = "cgroup",
				.has_handoff = true, .handoff = { .in = 7, .out = 1, .answered = 20 },
				.m = members[0][1] };
	/* exited: its reason and health are a server's words, escaped */
	g[2] = (struct sv_gen){ .id = 2, .state = GEN_EXITED, .start_wall_ms = 1733299000999, .ready_after_ms = -1,
				.why = "exited with status 1 \"bye\"", .health = "fenced: owner stopped (SIGSTOP)\033[2J",
				.bind_mode = "unknown", .adopted = true, .has_handoff = true,
				.handoff = { .out = 9 }, .m = members[0][2] };
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 3; k++)
			members[0][i][k] = (struct sv_member){
				.slot = i, .counted = true, .count = { 1000u * (i + 1) + k, k, i },
				.has_share = true, .share_ppm = i ? 900000 : 100000, .has_queue = true,
				.queue = (uint32_t)k, .backlog = k == 1 ? 212992 : 4096, .quic_cid_byte = -1 };
	for (int i = 0; i < 2; i++) {
		members[0][i][1].has_flows = true;
		members[0][i][1].flows = 10u + (unsigned)i * 11;
		members[0][i][1].quic_cid_byte = gens[0][i].id & 0xff;
	}
	for (int k = 0; k < 3; k++)
		members[0][2][k] = (struct sv_member){ .slot = -1, .counted = true, .count = { 77, 0, 5 },
						       .quic_cid_byte = -1 };
}

/* Classic BPF: no counters, a probation, a taken-over server, a shared
 * listener, UDP without a flow table, a supervisor stopping, degraded. */
static void view_cbpf(struct status_view *v)
{
	struct sv_listener *l = listeners[1];
	struct sv_gen *g = gens[1];

	*v = (struct status_view){
		.name = "edge", .version = "9.8.7", .pid = 99, .mode = BATON_MODE_CBPF, .reloads_done = 1,
		.degraded = "replacement failed (gen 3 was not ready within 2000 ms); \033]52;c;x\007",
		.state_err = "cannot write the state file: Read-only file system",
		.state_file = "/run/baton/edge.state", .last_reload = "", .resumed = true, .stopping = true,
		.argv = argv_cbpf, .serving = -1,
		.stage = { .kind = STAGE_PROBATION, .gen = 2, .old_gen = 1, .pct = 0, .age_ms = 2000,
			   .next_step_in_ms = -5, .probation_left_ms = 8000, .check = "curl -fsS http://x/",
			   .check_last = "", .last = "" },
		.nl = 3, .l = l, .ngen = 3, .gen = g,
	};
	l[0] = (struct sv_listener){ .spec = "tcp://0.0.0.0:80?backlog=511", .port = 80, .mode = "shared" };
	l[1] = (struct sv_listener){ .spec = "udp://0.0.0.0:53", .port = 53, .mode = "steered", .udp = true,
				     .flows = { .mode = BATON_FLOWS_ON } };
	l[2] = (struct sv_listener){ .spec = "udp://0.0.0.0:123?flows=off", .port = 123, .mode = "steered",
				     .udp = true, .flows = { .mode = BATON_FLOWS_OFF } };
	g[0] = (struct sv_gen){ .id = 2, .pid = 5002, .state = GEN_ACTIVE, .start_wall_ms = 1733300000500,
				.uptime_ms = 2012, .ready_after_ms = 12, .why = "", .health = "", .bind_mode = "none",
				.m = members[1][0] };
	g[1] = (struct sv_gen){ .id = 1, .pid = 5001, .state = GEN_STANDBY, .start_wall_ms = 1733299990000,
				.uptime_ms = 12000, .ready_after_ms = 40, .why = "", .health = "", .bind_mode = "shim",
				.m = members[1][1] };
	g[2] = (struct sv_gen){ .id = 0, .pid = 777, .state = GEN_DRAINING, .start_wall_ms = 1733200000000,
				.uptime_ms = 100000000, .ready_after_ms = 0, .why = "", .health = "kept: no replacement",
				.bind_mode = "none", .adopted = true, .m = members[1][2] };
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 3; k++)
			members[1][i][k] = (struct sv_member){ .slot = k == 0 ? -1 : i, .has_share = k > 0,
							       .share_ppm = i ? 0 : 1000000, .has_queue = k > 0,
							       .queue = 3, .backlog = 511, .quic_cid_byte = -1 };
}

/* ---- rendering and fixtures ------------------------------------------------- */

typedef void (*render_fn)(FILE *, const struct status_view *);

static char *render(void (*view)(struct status_view *), render_fn fn)
{
	struct status_view v;
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	if (!m)
		FAIL("open_memstream: %s", strerror(errno));
	view(&v);
	fn(m, &v);
	fclose(m);
	return out;
}

/* GOT must be tests/fixtures/status/NAME.EXT (BATON_FIXTURES: another root). */
static void expect(const char *got, const char *name, const char *ext)
{
	const char *dir = getenv("BATON_FIXTURES") ? getenv("BATON_FIXTURES") : "tests/fixtures";
	char path[512], want[256] = "";
	size_t i = 0;
	FILE *f;
	int c;

	snprintf(path, sizeof(path), "%s/status/%s.%s", dir, name, ext);
	if (getenv("BATON_UPDATE_FIXTURES")) {
		f = fopen(path, "we");
		if (!f || fputs(got, f) == EOF || fclose(f))
			FAIL("write %s: %s", path, strerror(errno));
		return;
	}
	f = fopen(path, "re");
	if (!f)
		FAIL("expected output %s: %s (run from the source tree or set BATON_FIXTURES)", path, strerror(errno));
	while ((c = fgetc(f)) != EOF && got[i] == (char)c)
		i++;
	if (c != EOF || got[i]) {
		want[0] = c == EOF ? '\0' : (char)c;
		if (c != EOF && !fgets(want + 1, sizeof(want) - 1, f))
			want[1] = '\0';
		FAIL("%s differs at byte %zu:\n--- got ---\n%.200s\n--- want ---\n%s", path, i, got + i, want);
	}
	fclose(f);
}

/* ---- a JSON checker that notes every key's path ----------------------------- */

/* What a checker found wrong (it returns false, or -1). */
static char why[2600];

static bool bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return false;
}

struct jp {
	const char *p;
	char keys[128][64];     /* "generations[].members[].queue" */
	int n;
};

static bool note(struct jp *j, const char *path)
{
	for (int i = 0; i < j->n; i++)
		if (!strcmp(j->keys[i], path))
			return true;
	if (j->n == 128)
		return bad("more than 128 distinct keys");
	snprintf(j->keys[j->n++], sizeof(j->keys[0]), "%s", path);
	return true;
}

static void ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
		j->p++;
}

/* A string (into OUT if given): no raw control byte, only JSON's escapes. */
static bool jstring(struct jp *j, char *out, size_t len)
{
	size_t n = 0;

	if (*j->p++ != '"')
		return false;
	for (; *j->p != '"'; j->p++) {
		if ((unsigned char)*j->p < 0x20)
			return false;	/* also the end of the text */
		if (*j->p == '\\') {
			j->p++;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!j->p[i] || !strchr("0123456789abcdefABCDEF", j->p[i]))
						return false;
				j->p += 4;
			} else if (!*j->p || !strchr("\"\\/bfnrt", *j->p)) {
				return false;
			}
		}
		if (out && n + 1 < len)
			out[n++] = *j->p;
	}
	j->p++;
	if (out)
		out[n] = '\0';
	return true;
}

static bool jnumber(struct jp *j)
{
	const char *s = j->p;

	if (*j->p == '-')
		j->p++;
	if (*j->p == '0')
		j->p++;
	else if (*j->p >= '1' && *j->p <= '9')
		while (*j->p >= '0' && *j->p <= '9')
			j->p++;
	else
		return false;
	if (*j->p == '.' && j->p[1] >= '0' && j->p[1] <= '9')
		for (j->p++; *j->p >= '0' && *j->p <= '9'; j->p++)
			;
	return j->p > s;
}

static bool jvalue(struct jp *j, const char *path);

static bool jmembers(struct jp *j, const char *path, bool object)
{
	char key[48], sub[64];

	j->p++;
	ws(j);
	if (*j->p == (object ? '}' : ']')) {
		j->p++;
		return true;
	}
	for (;;) {
		ws(j);
		snprintf(sub, sizeof(sub), "%s[]", path);
		if (object) {
			if (!jstring(j, key, sizeof(key)))
				return false;
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
			if (!note(j, sub))
				return false;
			ws(j);
			if (*j->p++ != ':')
				return false;
		}
		if (!jvalue(j, sub))
			return false;
		ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		return *j->p++ == (object ? '}' : ']');
	}
}

static bool jvalue(struct jp *j, const char *path)
{
	ws(j);
	if (*j->p == '{' || *j->p == '[')
		return jmembers(j, path, *j->p == '{');
	if (*j->p == '"')
		return jstring(j, NULL, 0);
	for (const char *const *w = (const char *const[]){ "true", "false", "null", NULL }; *w; w++)
		if (!strncmp(j->p, *w, strlen(*w))) {
			j->p += strlen(*w);
			return true;
		}
	return jnumber(j);
}

/* TEXT is one JSON document (an object) in valid UTF-8; J gets its keys. */
static bool json_check(const char *text, struct jp *j)
{
	const unsigned char *u = (const unsigned char *)text;

	why[0] = '\0';
	while (*u) {
		int more = *u < 0x80 ? 0 : (*u & 0xe0) == 0xc0 ? 1 : (*u & 0xf0) == 0xe0 ? 2 : (*u & 0xf8) == 0xf0 ? 3 : -1;

		for (u++; more > 0 && (*u & 0xc0) == 0x80; more--, u++)
			;
		if (more)
			return bad("not UTF-8 before byte %td: %.2000s", (const char *)u - text, text);
	}
	memset(j, 0, sizeof(*j));
	j->p = text;
	if (*text != '{' || !jvalue(j, ""))
		return why[0] ? false : bad("not JSON at byte %td: %.2000s", j->p - text, text);
	ws(j);
	if (*j->p)
		return bad("more than one JSON document, from byte %td: %.2000s", j->p - text, text);
	return true;
}

/* The keys man baton(1) lists under JSON OUTPUT, baton status --json. */
static const char *const documented[] = {
	"version", "name", "pid", "mode", "reloads_done", "reloads_failed", "restarts", "service", "degraded",
	"state_write_error", "resumed", "state_file", "reloading", "stopping", "last_reload", "command",
	"environment", "stage", "stage.kind", "stage.last", "stage.gen", "stage.old_gen", "stage.canary_pct",
	"stage.step_ms", "stage.next_step_in_ms", "stage.probation_left_ms", "stage.since_ms", "stage.check",
	"stage.checks_passed", "stage.checks_failed", "stage.check_last", "listeners", "listeners[].index",
	"listeners[].spec", "listeners[].port", "listeners[].mode", "listeners[].flows", "listeners[].flows.mode",
	"listeners[].flows.table", "listeners[].flows.idle_ms", "listeners[].flows.entries",
	"listeners[].flows.live", "listeners[].flows.followed", "listeners[].flows.by_cid",
	"listeners[].flows.created", "listeners[].flows.expired", "listeners[].flows.evicted",
	"listeners[].flows.insert_failed", "handoff", "handoff.offered", "handoff.handed_off", "handoff.answered",
	"handoff.failed", "handoff.failed_no_target", "handoff.failed_limit", "handoff.failed_expired",
	"handoff.failed_wake", "handoff.failed_unreachable", "handoff.failed_take", "handoff.refused",
	"handoff.pending", "generations", "generations[].id", "generations[].pid", "generations[].state",
	"generations[].started", "generations[].uptime_ms", "generations[].ready_after_ms", "generations[].exit",
	"generations[].health", "generations[].handoff", "generations[].handoff.in", "generations[].handoff.out",
	"generations[].handoff.answered", "generations[].bind_mode", "generations[].adopted",
	"generations[].share_pct", "generations[].members", "generations[].members[].listener",
	"generations[].members[].slot", "generations[].members[].steered", "generations[].members[].migrated_in",
	"generations[].members[].migrated_out", "generations[].members[].share_pct",
	"generations[].members[].queue", "generations[].members[].backlog", "generations[].members[].flows",
	"generations[].members[].quic_cid_byte",
};
#define NDOC (sizeof(documented) / sizeof(documented[0]))

static bool listed(const char *const *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], key))
			return true;
	return false;
}

/* Every key of J is documented; with ALL, every documented key is there. */
static void keys_documented(const struct jp *j, bool all)
{
	for (int i = 0; i < j->n; i++)
		if (!listed(documented, NDOC, j->keys[i]))
			FAIL("key %s is not documented in baton(1) JSON OUTPUT", j->keys[i]);
	for (size_t i = 0; all && i < NDOC; i++) {
		bool found = false;

		for (int k = 0; k < j->n && !found; k++)
			found = !strcmp(j->keys[k], documented[i]);
		if (!found)
			FAIL("documented key %s missing", documented[i]);
	}
}

/* ---- a Prometheus text format checker --------------------------------------- */

/* The families man baton(1) lists under METRICS. */
static const char *const families[] = {
	"up", "build_info", "degraded", "serving_generation", "state_write_failing", "reloads_total",
	"last_reload_successful", "last_reload_success_timestamp_seconds", "reload_duration_seconds",
	"restarts_total", "listener_info", "generation_state", "generation_start_time_seconds", "generation_queue",
	"connections_steered_total", "connections_migrated_in_total", "connections_migrated_out_total",
	"generation_connections_steered_total", "generation_connections_migrated_in_total",
	"generation_connections_migrated_out_total", "handoff_connections_total", "handoff_answers_total",
};
#define NFAM (sizeof(families) / sizeof(families[0]))

/* {name="N",k="v",...}: each value quoted with only \\, \" and \n escaped;
 * what follows, or NULL. */
static const char *labels(const char *p, const char *name, const char *line)
{
	if (strncmp(p, "{name=\"", 7) || strncmp(p + 7, name, strlen(name)) || p[7 + strlen(name)] != '"')
		return bad("no name=\"%s\" label first: %s", name, line), NULL;
	for (p++; *p != '}'; p++) {
		while (*p >= 'a' && *p <= 'z')
			p++;
		if (*p++ != '=' || *p++ != '"')
			return bad("bad label: %s", line), NULL;
		for (; *p != '"'; p++)
			if (!*p || *p == '\n' || (*p == '\\' && (!p[1] || !strchr("\\\"n", *++p))))
				return bad("bad label value: %s", line), NULL;
		p++;
		if (*p != ',' && *p != '}')
			return bad("bad label list: %s", line), NULL;
		if (*p == '}')
			break;
	}
	return p + 1;
}

/* TEXT is the exposition format: every family with HELP then TYPE, its
 * samples after them, named for it, with a name label and a number. FOUND
 * gets the families, in order; returns how many, or -1 (see why). */
static int metrics_check(char *text, const char *name, char found[][48])
{
	char fam[48] = "", type[16] = "";
	int n = 0;

	why[0] = '\0';
	for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *end;
		size_t fl = strlen(fam);

		if (!strncmp(line, "# HELP baton_", 13)) {
			if (sscanf(line + 13, "%47s", fam) != 1 || line[13 + strlen(fam)] != ' ' || n == (int)NFAM + 4)
				return bad("bad HELP: %s", line), -1;
			snprintf(found[n++], 48, "%s", fam);
			line = strtok_r(NULL, "\n", &save);
			if (!line || sscanf(line, "# TYPE baton_%*s %15s", type) != 1 ||
			    strncmp(line + 13, fam, strlen(fam)) || line[13 + strlen(fam)] != ' ' ||
			    (strcmp(type, "gauge") && strcmp(type, "counter") && strcmp(type, "histogram")))
				return bad("HELP baton_%s not followed by its TYPE: %s", fam, line ? line : "(end)"), -1;
			continue;
		}
		if (!fl || strncmp(line, "baton_", 6) || strncmp(line + 6, fam, fl))
			return bad("sample outside its family %s: %s", fam, line), -1;
		end = line + 6 + fl;
		if (!strcmp(type, "histogram") && *end == '_')
			for (const char *const *s = (const char *const[]){ "_bucket", "_sum", "_count", NULL }; *s; s++)
				if (!strncmp(end, *s, strlen(*s)))
					end += strlen(*s);
		end = (char *)labels(end, name, line);
		if (!end)
			return -1;
		if (*end++ != ' ' || !*end || (strtod(end, &end), *end))
			return bad("no number after the labels: %s", line), -1;
	}
	return n;
}

static void families_documented(char found[][48], int n, bool all)
{
	for (int i = 0; i < n; i++)
		if (!listed(families, NFAM, found[i]))
			FAIL("metric baton_%s is not documented in baton(1) METRICS", found[i]);
	for (size_t i = 0; all && i < NFAM; i++) {
		bool seen = false;

		for (int k = 0; k < n && !seen; k++)
			seen = !strcmp(found[k], families[i]);
		if (!seen)
			FAIL("documented metric baton_%s missing", families[i]);
	}
}

/* ---- tests ------------------------------------------------------------------ */

static void json_ok(const char *text, struct jp *j)
{
	if (!json_check(text, j))
		FAIL("%s", why);
}

static int metrics_ok(char *text, const char *name, char found[][48])
{
	int n = metrics_check(text, name, found);

	if (n < 0)
		FAIL("%s", why);
	return n;
}

/* VIEW as text: the fixture NAME.txt (the caller frees it). */
static char *text_fixture(void (*view)(struct status_view *), const char *name)
{
	char *got = render(view, status_render_text);

	expect(got, name, "txt");
	return got;
}

/* VIEW as JSON: the fixture NAME.json, its keys documented (ALL: every
 * documented key there). */
static void json_fixture(void (*view)(struct status_view *), const char *name, bool all)
{
	char *got = render(view, status_render_json);
	struct jp j;

	expect(got, name, "json");
	json_ok(got, &j);
	keys_documented(&j, all);
	free(got);
}

/* VIEW as metrics: the fixture NAME.prom, its families documented (ALL:
 * every one there) into FOUND; how many. */
static int metrics_fixture(void (*view)(struct status_view *), const char *name, const char *sup, bool all,
			   char found[][48])
{
	char *got = render(view, status_render_metrics);
	int n;

	expect(got, name, "prom");
	n = metrics_ok(got, sup, found);
	families_documented(found, n, all);
	free(got);
	return n;
}

TEST(status_render_ebpf_text)
{
	char *got = text_fixture(view_ebpf, "ebpf");

	/* what a server chose to say reaches no terminal raw */
	ASSERT_CONTAINS(got, "--title=\\x1b]0;owned\\x07 caf\xc3\xa9; environment: MODE=canary DEBUG\n");
	ASSERT_CONTAINS(got, "[fenced: owner stopped (SIGSTOP)\\x1b[2J]");
	free(got);
}

/* Every documented key and metric family appears, and no other. */
TEST(status_render_ebpf_json_and_metrics_have_every_documented_key)
{
	char found[NFAM + 4][48];

	json_fixture(view_ebpf, "ebpf", true);
	metrics_fixture(view_ebpf, "ebpf", "web", true, found);
}

TEST(status_render_cbpf_text)
{
	char *got = text_fixture(view_cbpf, "cbpf");

	ASSERT_CONTAINS(got, "degraded: replacement failed (gen 3 was not ready within 2000 ms); \\x1b]52;c;x\\x07\n");
	free(got);
}

TEST(status_render_cbpf_json_and_metrics_leave_out_the_counters)
{
	char found[NFAM + 4][48];
	int n;

	json_fixture(view_cbpf, "cbpf", false);
	n = metrics_fixture(view_cbpf, "cbpf", "edge", false, found);
	/* classic BPF counts nothing; no handoff listener; no reload outcomes kept */
	for (int i = 0; i < n; i++)
		if (strstr(found[i], "connections_") || strstr(found[i], "reload_"))
			FAIL("baton_%s in classic BPF mode without handoff or reload outcomes", found[i]);
}

/* The checkers find what they are for: a test that cannot fail is none. */
TEST(status_render_checkers_reject_what_is_broken)
{
	static const char *const bad_json[] = {
		"{\"a\":1", "{\"a\":01}", "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":1}{}", "{\"a\":tru}",
		"{\"a\":\"\xc3\"}", "{\"a\" 1}", "{\"a\":[1,]}", "[1]",
	};
	static const char *const bad_metrics[] = {
		"baton_up{name=\"web\"} 1\n",	/* no HELP */
		"# HELP baton_up x\nbaton_up{name=\"web\"} 1\n",	/* no TYPE */
		"# HELP baton_up x\n# TYPE baton_up gauge\nbaton_down{name=\"web\"} 1\n",
		"# HELP baton_up x\n# TYPE baton_up gauge\nbaton_up{name=\"web\",a=\"\"\"} 1\n",
		"# HELP baton_up x\n# TYPE baton_up gauge\nbaton_up{name=\"web\",a=\"\\\"} 1\n",
		"# HELP baton_up x\n# TYPE baton_up gauge\nbaton_up{mode=\"x\"} 1\n",
		"# HELP baton_up x\n# TYPE baton_up gauge\nbaton_up{name=\"web\"} one\n",
	};
	char text[256], found[NFAM + 4][48];
	struct jp j;

	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++)
		if (json_check(bad_json[i], &j) || !why[0])
			FAIL("the JSON checker accepted %s", bad_json[i]);
	for (size_t i = 0; i < sizeof(bad_metrics) / sizeof(bad_metrics[0]); i++) {
		snprintf(text, sizeof(text), "%s", bad_metrics[i]);
		if (metrics_check(text, "web", found) >= 0 || !why[0])
			FAIL("the metrics checker accepted %s", bad_metrics[i]);
	}
	json_ok("{\"a\":[1,-2.5,\"\\u00e9\",true,null,{}]}\n", &j);
	snprintf(text, sizeof(text), "# HELP baton_up x\n# TYPE baton_up gauge\nbaton_up{name=\"web\",a=\"\\\"\\n\"} 1\n");
	ASSERT_EQ(metrics_ok(text, "web", found), 1);
}
