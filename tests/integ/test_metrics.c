/* SPDX-License-Identifier: BSD-2-Clause */
/* Metrics an operator alerts on: the last reload's outcome and when one
 * last served, the reload duration histogram, the serving generation, kept
 * across `baton upgrade` and a resumed supervisor; and --metrics-listen,
 * the same text over HTTP, scraped during reloads under load. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "helpers.h"

static char out[65536], err[16384];

/* `baton run --name web` of the reference server, with OPT1 OPT2 (or
 * nothing) before the command. RESUME: the state of a dead one is there. */
static void msv_start(struct bt_sv *s, bool resume, const char *opt1, const char *opt2)
{
	const char *ref = bt_need_env("BATON_REFSERVER", "reference server");
	const char *opts[] = { opt1, opt2, NULL };

	bt_need_netns();
	bt_need_ebpf();
	if (!resume)
		bt_sv_init(s);
	snprintf(s->cmd, sizeof(s->cmd), "exec %s -q", ref);
	bt_sv_start(s, "tcp://127.0.0.1:0?name=http", "3s", opts, NULL, out, sizeof(out));
}

/* The value of the sample METRIC{LABELS} in Prometheus text, or -1. */
static double sample(const char *text, const char *metric, const char *labels)
{
	char want[256];
	const char *p;

	snprintf(want, sizeof(want), "\n%s{%s} ", metric, labels);
	p = strstr(text, want);
	return p ? atof(p + strlen(want)) : -1;
}

/* A value in thousandths, for the integer assertions (timestamps carry
 * milliseconds, sums microseconds). */
/* Each sample of TEXT in W (N of them) has its value, as a whole number. */
struct want_sample {
	const char *metric, *labels;
	long long value;
};

static void samples_are(const char *text, const struct want_sample *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((long long)sample(text, w[i].metric, w[i].labels) != w[i].value)
			FAIL("%s{%s}: expected %lld, got %g", w[i].metric, w[i].labels, w[i].value,
			     sample(text, w[i].metric, w[i].labels));
}
#define SAMPLES_ARE(text, ...)                                                     \
	do {                                                                       \
		static const struct want_sample want_[] = { __VA_ARGS__ };         \
		samples_are((text), want_, sizeof(want_) / sizeof(want_[0]));      \
	} while (0)

static long long milli(double v)
{
	return (long long)(v * 1000.0 + (v < 0 ? -0.5 : 0.5));
}

/* The last reload's outcome in M: OK (1 or 0) and the time of the last
 * one that served, TS, as the gauges give them. */
static void last_reload_is(const char *m, int ok, double ts)
{
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), ok);
	ASSERT_EQ(milli(sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(ts));
}

static void metrics(char *buf, size_t len)
{
	ASSERT_EQ(bt_baton("status", "web", "--metrics"), 0);
	snprintf(buf, len, "%s", out);
}

/* metrics() into BUF, logged (a failed sample check below then shows the
 * whole scrape), and the last reload's gauges checked: last_reload_is. */
static void metrics_logged(char *buf, size_t len, int ok, double ts)
{
	metrics(buf, len);
	bt_log("%.3000s", buf);
	last_reload_is(buf, ok, ts);
}

TEST_TIMEOUT(metrics_alert_on_a_failed_reload_and_survive_upgrade_and_resume, 120)
{
	static char m[65536], m2[65536];
	struct bt_sv s;
	double ok_ts, started;
	int status;

	started = (double)time(NULL);
	msv_start(&s, false, NULL, NULL);
	metrics(m, sizeof(m));
	bt_log("%.1500s", m);
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), 1);
	ASSERT_GE(milli(sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(started - 1));
	ASSERT_EQ(sample(m, "baton_serving_generation", "name=\"web\""), 1);
	ASSERT_CONTAINS(m, "\nbaton_build_info{name=\"web\",version=\"" BATON_VERSION "\"} 1\n");
	ASSERT_CONTAINS(m, "# TYPE baton_reload_duration_seconds histogram\n");
	ASSERT_EQ(sample(m, "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\""), 0);

	for (int i = 0; i < 10; i++) {	/* counted by gen 1, which then goes */
		int fd = bt_connect(s.port);

		ASSERT_GE(fd, 0);
		close(fd);
	}
	/* two that serve, then one that is rolled back */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	metrics(m, sizeof(m));
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), 1);
	ok_ts = sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"");
	ASSERT_GE(milli(ok_ts), milli(started - 1));
	SAMPLES_ARE(m,
		    { "baton_serving_generation", "name=\"web\"", 3 },
		    { "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\"", 2 },
		    { "baton_reload_duration_seconds_bucket", "name=\"web\",result=\"done\",le=\"+Inf\"", 2 });
	ASSERT_GT(milli(sample(m, "baton_reload_duration_seconds_sum", "name=\"web\",result=\"done\"") * 1000), 0);
	ASSERT_NE(bt_baton("reload", "web", "--", "/nonexistent/server"), 0);
	metrics_logged(m, sizeof(m), 0, ok_ts);
	SAMPLES_ARE(m,
		    { "baton_serving_generation", "name=\"web\"", 3 },
		    { "baton_reload_duration_seconds_count", "name=\"web\",result=\"failed\"", 1 },
		    { "baton_reloads_total", "name=\"web\",result=\"failed\"", 1 });
	/* gens 1, 2 and 4 are gone (or going): only live generations have series */
	ASSERT_TRUE(strstr(m, "generation=\"4\"") == NULL);
	bt_promtool(s.dir, m);

	/* baton upgrade: the same numbers from the re-executed supervisor */
	ASSERT_EQ(bt_baton("upgrade", "web"), 0);
	metrics(m2, sizeof(m2));
	last_reload_is(m2, 0, ok_ts);
	SAMPLES_ARE(m2,
		    { "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\"", 2 },
		    { "baton_reload_duration_seconds_count", "name=\"web\",result=\"failed\"", 1 });
	ASSERT_EQ(milli(sample(m2, "baton_reload_duration_seconds_sum", "name=\"web\",result=\"done\"") * 1000),
		  milli(sample(m, "baton_reload_duration_seconds_sum", "name=\"web\",result=\"done\"") * 1000));
	ASSERT_EQ(sample(m2, "baton_connections_steered_total", "name=\"web\",listener=\"0\""), 10);

	/* a reload that serves sets it back to 1 */
	ASSERT_EQ(bt_baton("reload", "web"), 0);
	metrics(m, sizeof(m));
	ASSERT_EQ(sample(m, "baton_last_reload_successful", "name=\"web\""), 1);
	ASSERT_GT(milli(sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"")), milli(ok_ts));
	ok_ts = sample(m, "baton_last_reload_success_timestamp_seconds", "name=\"web\"");

	/* a supervisor killed and run again resumes them too */
	ASSERT_EQ(kill(s.pid, SIGKILL), 0);
	ASSERT_EQ(waitpid(s.pid, &status, 0), s.pid);
	msv_start(&s, true, NULL, NULL);
	ASSERT_CONTAINS(out, "\"resumed\":true");
	metrics_logged(m2, sizeof(m2), 1, ok_ts);
	SAMPLES_ARE(m2,
		    { "baton_reload_duration_seconds_count", "name=\"web\",result=\"done\"", 3 },
		    { "baton_reload_duration_seconds_count", "name=\"web\",result=\"failed\"", 1 },
		    { "baton_serving_generation", "name=\"web\"", 5 },
		    { "baton_connections_steered_total", "name=\"web\",listener=\"0\"", 10 });
	bt_supervisor_stop(&s.pid, 10);
	bt_promtool(s.dir, m2);
}

/* ---- --metrics-listen -------------------------------------------------------- */

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port nobody holds in this test's network namespace. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &len))
		FAIL("cannot find a free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

/* A connection to 127.0.0.1:PORT, or -1 (bt_connect fails the test). */
static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Sends REQ (LEN bytes) to the metrics port and reads the answer until the
 * server closes, for at most TIMEOUT_MS: its length, or -1. */
static ssize_t http(uint16_t port, const char *req, size_t len, char *buf, size_t cap, int timeout_ms)
{
	long long end = mono_ms() + timeout_ms;
	size_t got = 0;
	int fd = tcp_connect(port);

	if (fd < 0)
		return -1;
	if (len && write(fd, req, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = end - mono_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			break;
		n = read(fd, buf + got, cap - 1 - got);
		if (n <= 0 || (got += (size_t)n) >= cap - 1) {
			buf[got] = '\0';
			close(fd);
			return n < 0 ? -1 : (ssize_t)got;
		}
	}
	close(fd);
	return -1;	/* not closed in time */
}

/* Whether ANSWER is a 200 whose Content-Length matches a body of metrics. */
static bool good_scrape(const char *answer, size_t len)
{
	const char *body = strstr(answer, "\r\n\r\n"), *cl = strstr(answer, "\r\nContent-Length: ");

	if (!body || !cl || cl > body || strncmp(answer, "HTTP/1.1 200 OK\r\n", 17))
		return false;
	body += 4;
	return (size_t)atol(cl + 18) == len - (size_t)(body - answer) && strstr(body, "# TYPE baton_up gauge\n") &&
	       strstr(body, "\nbaton_serving_generation{name=\"web\"} ") && answer[len - 1] == '\n';
}

#define SCRAPE_REQ "GET /metrics HTTP/1.1\r\nHost: baton\r\nUser-Agent: test\r\n\r\n"

/* Scrapes PORT in a loop until STOP is readable (the parent closed it);
 * writes "ok bad slowest_ms" to REPORT and the last body to LAST. */
static void scraper(uint16_t port, int stop, int report, const char *last)
{
	static char buf[1 << 20];
	long ok = 0, bad = 0, slowest = 0;
	char line[96];

	for (;;) {
		struct pollfd p = { .fd = stop, .events = POLLIN };
		long long t0 = mono_ms();
		ssize_t n;

		if (poll(&p, 1, 0) == 1)
			break;
		n = http(port, SCRAPE_REQ, sizeof(SCRAPE_REQ) - 1, buf, sizeof(buf), 5000);
		if (mono_ms() - t0 > slowest)
			slowest = (long)(mono_ms() - t0);
		if (n > 0 && good_scrape(buf, (size_t)n)) {
			FILE *f = fopen(last, "w");

			ok++;
			if (f) {
				fputs(strstr(buf, "\r\n\r\n") + 4, f);
				fclose(f);
			}
		} else {
			bad++;
		}
		usleep(2000);
	}
	snprintf(line, sizeof(line), "%ld %ld %ld\n", ok, bad, slowest);
	if (write(report, line, strlen(line)) < 0)
		_exit(1);
	_exit(0);
}

/* `HTTP/1.1 NNN` of the answer to REQ. */
static int status_of(uint16_t port, const char *req, size_t len, int timeout_ms)
{
	static char buf[8192];
	ssize_t n = http(port, req, len, buf, sizeof(buf), timeout_ms);

	if (n < 12 || strncmp(buf, "HTTP/1.1 ", 9))
		return -1;
	return atoi(buf + 9);
}

TEST_ALONE(metrics_listen_answers_every_scrape_during_reloads_under_load_despite_slow_clients, 150)
{
	static char body[1 << 20], big[6000];
	char opt[64], last[128], rep[96] = "";
	int stop[2], report[2], silent[12], i, status;
	long ok = 0, bad = 0, slowest = 0;
	long long t0, took;
	uint16_t mport;
	struct bt_sv s;
	struct bt_load load;
	const char *r;
	pid_t kid;
	ssize_t n;

	bt_need_netns();
	mport = free_port();
	snprintf(opt, sizeof(opt), "127.0.0.1:%u", mport);
	msv_start(&s, false, "--metrics-listen", opt);
	snprintf(last, sizeof(last), "%s/scraped.txt", s.dir);

	/* the answer is the text of baton status --metrics */
	n = http(mport, SCRAPE_REQ, sizeof(SCRAPE_REQ) - 1, body, sizeof(body), 5000);
	ASSERT_GT(n, 0);
	ASSERT_TRUE(good_scrape(body, (size_t)n));
	ASSERT_CONTAINS(body, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
	ASSERT_EQ(bt_baton("status", "web", "--metrics"), 0);
	{
		/* the same families, in the same order (the values of the queue may move) */
		const char *a = strstr(body, "\r\n\r\n") + 4, *b = out;

		for (;;) {
			a = strstr(a, "# TYPE ");
			b = strstr(b, "# TYPE ");
			if (!a || !b)
				break;
			ASSERT_EQ(strcspn(a, "\n"), strcspn(b, "\n"));
			ASSERT_TRUE(!strncmp(a, b, strcspn(a, "\n")));
			a++;
			b++;
		}
		ASSERT_TRUE(a == NULL && b == NULL);
	}

	/* slow clients: more than there are places, connected, sending nothing */
	for (i = 0; i < 12; i++)
		ASSERT_GE(silent[i] = bt_connect(mport), 0);
	usleep(100000);
	t0 = mono_ms();
	n = http(mport, SCRAPE_REQ, sizeof(SCRAPE_REQ) - 1, body, sizeof(body), 5000);
	took = mono_ms() - t0;
	bt_log("a scrape behind 12 silent clients: %lld ms", took);
	ASSERT_TRUE(n > 0 && good_scrape(body, (size_t)n));
	ASSERT_CMP(took, <, 1000);	/* it took a silent client's place, it did not wait for one to time out */

	/* reloads under load, scraped all along */
	ASSERT_EQ(pipe2(stop, O_CLOEXEC), 0);
	ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
	load = bt_load_start(s.port, "conn", "20", 8);
	kid = fork();
	ASSERT_GE(kid, 0);
	if (kid == 0) {
		close(stop[1]);
		close(report[0]);
		scraper(mport, stop[0], report[1], last);
	}
	close(stop[0]);
	close(report[1]);
	for (i = 0; i < 20; i++) {
		usleep(50000);	/* scrapes between reloads as well as during them */
		t0 = mono_ms();
		ASSERT_EQ(bt_baton("reload", "web"), 0);
		took = mono_ms() - t0;
		bt_log("reload %d: %lld ms", i + 1, took);
		ASSERT_CMP(took, <, 10000);
		if (i == 9)	/* a slow client's place taken mid-run, too */
			for (int k = 0; k < 4; k++)
				ASSERT_GE(silent[k] = (close(silent[k]), bt_connect(mport)), 0);
	}
	close(stop[1]);
	r = bt_load_stop(&load, 30);
	ASSERT_EQ(waitpid(kid, &status, 0), kid);
	n = read(report[0], rep, sizeof(rep) - 1);
	close(report[0]);
	ASSERT_GT(n, 0);
	ASSERT_EQ(sscanf(rep, "%ld %ld %ld", &ok, &bad, &slowest), 3);
	bt_log("load: %s", r);
	bt_log("scrapes during 20 reloads: %ld answered 200 with valid metrics, %ld not; slowest %ld ms", ok, bad,
	       slowest);
	ASSERT_EQ(bt_json_get(r, "failed"), 0);
	ASSERT_GT(bt_json_get(r, "answered"), 0);
	ASSERT_GE(ok, 20);
	ASSERT_EQ(bad, 0);
	ASSERT_CMP(slowest, <, 3000);

	/* every silent client was let go (after MHTTP_READ_MS, or for a scrape) */
	for (i = 0; i < 12; i++) {
		struct pollfd p = { .fd = silent[i], .events = POLLIN };
		char c;

		ASSERT_EQ(poll(&p, 1, 5000), 1);
		ASSERT_LE(read(silent[i], &c, 1), 0);
		close(silent[i]);
	}

	/* anything but GET /metrics */
	ASSERT_EQ(status_of(mport, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", 29, 5000), 200);
	ASSERT_EQ(status_of(mport, "GET / HTTP/1.1\r\n\r\n", 18, 5000), 404);
	ASSERT_EQ(status_of(mport, "GET /metricsx HTTP/1.1\r\n\r\n", 26, 5000), 404);
	ASSERT_EQ(status_of(mport, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 45, 5000), 405);
	ASSERT_EQ(status_of(mport, "HEAD /metrics HTTP/1.1\r\n\r\n", 26, 5000), 405);
	ASSERT_EQ(status_of(mport, "GET /metrics HTTP/2.0\r\n\r\n", 25, 5000), 505);
	ASSERT_EQ(status_of(mport, "GET /metrics\r\n\r\n", 16, 5000), 400);
	ASSERT_EQ(status_of(mport, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, 5000), 400);	/* TLS */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	ASSERT_EQ(status_of(mport, big, sizeof(big), 5000), 431);
	t0 = mono_ms();
	ASSERT_EQ(status_of(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\n", 32, 5000), 408);
	took = mono_ms() - t0;
	ASSERT_GE(took, 1900);

	/* baton upgrade keeps the socket: scrapes go on at the same address */
	ASSERT_EQ(bt_baton("upgrade", "web"), 0);
	n = http(mport, SCRAPE_REQ, sizeof(SCRAPE_REQ) - 1, body, sizeof(body), 5000);
	ASSERT_TRUE(n > 0 && good_scrape(body, (size_t)n));
	bt_supervisor_stop(&s.pid, 10);
	{
		static char log[65536];
		int fd = open(s.log, O_RDONLY | O_CLOEXEC);

		n = fd >= 0 ? read(fd, log, sizeof(log) - 1) : -1;
		log[n > 0 ? n : 0] = '\0';
		if (fd >= 0)
			close(fd);
		ASSERT_CONTAINS(log, "metrics served on http://127.0.0.1:");
		ASSERT_CONTAINS(log, "(the socket kept across the upgrade)");
	}
	ASSERT_EQ(http(mport, SCRAPE_REQ, sizeof(SCRAPE_REQ) - 1, body, sizeof(body), 2000), -1);	/* stopped: closed */
	{
		FILE *f = fopen(last, "r");

		ASSERT_TRUE(f != NULL);
		n = (ssize_t)fread(body, 1, sizeof(body) - 1, f);
		fclose(f);
		body[n > 0 ? n : 0] = '\0';
	}
	bt_promtool(s.dir, body);
}

TEST(metrics_listen_bad_address_is_refused_naming_it)
{
	char *argv[] = { (char *)bt_baton_bin(), "run", "--metrics-listen", "localhost:nope", "--", "true", NULL };

	ASSERT_EQ(bt_run(argv, out, sizeof(out), err, sizeof(err), 10), 2);
	ASSERT_CONTAINS(err, "bad --metrics-listen \"localhost:nope\": want HOST:PORT, [V6]:PORT or :PORT");
}
