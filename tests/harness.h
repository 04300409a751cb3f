/* SPDX-License-Identifier: BSD-2-Clause */
/* Test harness: TEST() registers a function that the runner (tests/runner.c)
 * runs in a forked child with a timeout, named after its lane (the folder
 * it is defined in: unit/NAME, integ/NAME); ASSERT_* report file:line and
 * the values; SKIP() ends the test as skipped with its reason. */
#ifndef BATON_HARNESS_H
#define BATON_HARNESS_H

#include <string.h>

struct bt_test {
	const char *name;	/* once registered: LANE/NAME */
	void (*fn)(void);
	unsigned timeout_s;
	struct bt_test *next;
	unsigned needs;		/* BT_NEEDS_*: without ROOT or ENV, in the no-root lane */
	const char *file;	/* __FILE__: tests/unit or tests/integ is its lane */
};

/* What a test needs beyond an unprivileged process in the source tree.
 * `make check-unit` (the runner's --no-root) runs only tests/unit tests that
 * need neither, as user nobody with no BATON_* variable, and fails one that
 * skips there: a test that needs more says so where it is declared. */
#define BT_NEEDS_ROOT 1u	/* privilege: netns, eBPF, another uid */
#define BT_NEEDS_ENV  2u	/* what make check passes (BATON_LIB, BATON_BIN, servers) */
/* The machine to itself: `make check` runs tests side by side (the runner's
 * -jN, TEST_JOBS), each in namespaces and temp dirs of its own, but a test
 * that times a decision (health watch, deadlines, rates) or counts what a
 * load lost is run alone, after the others, so no neighbour's CPU use
 * moves its figures. */
#define BT_NEEDS_ALONE 4u

void bt_register(struct bt_test *t);
_Noreturn void bt_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
_Noreturn void bt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST_NEEDS(id, secs, needs_)                                                     \
	static void id(void);                                                            \
	static struct bt_test id##_test = { .name = #id, .fn = id, .timeout_s = secs,    \
					    .needs = needs_, .file = __FILE__ };         \
	__attribute__((constructor)) static void id##_register(void) { bt_register(&id##_test); } \
	static void id(void)
#define TEST_TIMEOUT(id, secs) TEST_NEEDS(id, secs, 0)
#define TEST(id) TEST_TIMEOUT(id, 30)
#define TEST_ROOT(id) TEST_NEEDS(id, 30, BT_NEEDS_ROOT)
#define TEST_ENV(id) TEST_NEEDS(id, 30, BT_NEEDS_ENV)
#define TEST_ALONE(id, secs) TEST_NEEDS(id, secs, BT_NEEDS_ALONE)

#define SKIP(...) bt_skip(__VA_ARGS__)
#define FAIL(...) bt_fail(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT_TRUE(c)                                                                   \
	do {                                                                             \
		if (!(c))                                                                \
			bt_fail(__FILE__, __LINE__, "expected %s", #c);                  \
	} while (0)
#define ASSERT_CMP(a, op, b)                                                             \
	do {                                                                             \
		long long _a = (long long)(a), _b = (long long)(b);                      \
		if (!(_a op _b))                                                         \
			bt_fail(__FILE__, __LINE__, "expected %s %s %s, got %lld and %lld", \
				#a, #op, #b, _a, _b);                                    \
	} while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP(a, !=, b)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b)
#define ASSERT_LE(a, b) ASSERT_CMP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP(a, >, b)
/* For calls returning >= 0 or -errno. */
#define ASSERT_OK(expr)                                                                  \
	({                                                                               \
		long long _r = (long long)(expr);                                        \
		if (_r < 0)                                                              \
			bt_fail(__FILE__, __LINE__, "%s failed: %s", #expr, strerror((int)-_r)); \
		_r;                                                                      \
	})
#define ASSERT_STREQ(a, b)                                                               \
	do {                                                                             \
		const char *_a = (a), *_b = (b);                                         \
		if (strcmp(_a, _b))                                                      \
			bt_fail(__FILE__, __LINE__, "expected %s == \"%s\", got \"%s\"", #a, _b, _a); \
	} while (0)
#define ASSERT_CONTAINS(hay, needle)                                                     \
	do {                                                                             \
		const char *_h = (hay), *_n = (needle);                                  \
		if (!strstr(_h, _n))                                                     \
			bt_fail(__FILE__, __LINE__, "expected %s to contain \"%s\", got \"%s\"", #hay, _n, _h); \
	} while (0)

#endif
