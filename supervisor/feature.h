/* SPDX-License-Identifier: BSD-2-Clause */
/* The feature hook table: how the core (gen.c, sup.c, state.c, resume.c,
 * orphans.c) reaches the features without naming them. A feature fills the
 * hooks it needs and leaves the others NULL; the core calls each hook of
 * every row in table order (feature.c), so calls go one way: features call
 * gen.c, gen.c iterates the table. A new feature is one file and one row. */
#ifndef BATON_SUP_FEATURE_H
#define BATON_SUP_FEATURE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct sup;
struct gen;
struct baton_group_opts;

/* For every "bool" hook the first row that returns true claims the event
 * and the rows after it are not asked; for an "int" hook the first non-zero
 * return stops the loop and is returned. */
struct sup_feature {
	const char *name;

	/* the supervisor's life (sup.c) */
	int (*init)(struct sup *s);                   /* sup_init, after the per-listener arrays */
	int (*intake)(struct sup *s);                 /* before anything binds (LISTEN_FDS); -errno said */
	int (*open)(struct sup *s);                   /* the loop's descriptors, after the control socket */
	int (*gen0)(struct sup *s);                   /* a fresh start: generation 0, a server baton did not start */
	void (*give_back)(struct sup *s);             /* that start failed: generation 0 given back untouched */
	int (*setup)(struct sup *s);                  /* groups made or resumed, before a spawn */
	void (*serving)(struct sup *s);               /* gen 1 serves, or adopted generations do */
	bool (*event)(struct sup *s, uint32_t tag);   /* an epoll event; true: its own */
	void (*tick)(struct sup *s, long long now);   /* every TICK_MS while busy */
	bool (*busy)(const struct sup *s);            /* true: the loop must tick */
	int (*wait_ms)(const struct sup *s, long long now); /* not busy: look again in ms (-1: on events only) */
	void (*close)(struct sup *s, bool clean);     /* the loop ended */
	void (*fini)(struct sup *s);                  /* sup_fini, before the members are released */
	void (*free)(struct sup *s);                  /* sup_fini, after the groups are freed */

	/* listeners and their members (gen.c, sup.c, resume.c, orphans.c) */
	bool (*passed)(const struct sup *s, int l);   /* listener L was handed to baton: no port to pin */
	void (*group_opts)(const struct sup *s, int l, struct baton_group_opts *o);
	bool (*binds_own)(const struct sup *s);       /* new generations bind their own sockets */
	int (*member_fd)(struct sup *s, int l);       /* a socket for listener L's next member, or -1 */
	/* a member already in listener L's group at weight 0 for G, being
	 * started: its slot (G's member inode and counter base filled), or -1 */
	int (*member_spare)(struct sup *s, struct gen *g, int l);
	int (*dup_ino)(struct sup *s, unsigned long long ino); /* a copy of socket INO it holds, or -ENOENT */
	bool (*ours)(const struct sup *s, unsigned long long ino); /* INO was passed to us: not foreign */
	void (*mark_ours)(struct sup *s, ino_t ino);
	/* G's member joined listener L's group: FRESH, a socket just made,
	 * else one handed over (a restart, a resume) */
	void (*member_joined)(struct sup *s, struct gen *g, int l, bool fresh);
	/* a second member of GI on listener L (generation 0: one per worker);
	 * true: taken; false: not, and the caller removes SLOT */
	bool (*member_extra)(struct sup *s, int gi, int l, int slot, ino_t ino);
	bool (*member_keep)(struct sup *s, struct gen *g, int l); /* before the fence; true: it keeps it */
	void (*member_left)(struct sup *s, struct gen *g, int l); /* fenced, before it leaves the group */
	void (*members_released)(struct sup *s, struct gen *g);

	/* the generation state machine (gen.c) */
	void (*gen_forget)(struct sup *s, struct gen *g);     /* G's slot is reused */
	int (*gen_start)(struct sup *s, int gi);              /* before its spawn; -errno: not started */
	void (*gen_end)(struct sup *s, int gi);               /* its process ended, or never started */
	const char *(*gen_mode)(const struct sup *s, int gi); /* its bind mode, for the reload's steps */
	bool (*hold_ready)(struct sup *s, int gi);            /* it said ready, but is not listening yet */
	bool (*claim_ready)(struct sup *s, int gi);           /* a reload's generation is ready: not switched */
	bool (*keep_old)(struct sup *s, int old, int gi);     /* the switch: OLD is kept, not stopped */
	void (*gen_stop)(struct sup *s, struct gen *g);       /* told to stop, before the signal */
	bool (*hold_stop)(struct sup *s, struct gen *g);      /* a served one: the signal waits */
	bool (*stop_signal)(struct sup *s, struct gen *g);    /* true: signalled its own way */
	void (*drain_wait)(struct sup *s, struct gen *g, long long now);  /* a held signal due yet? */
	void (*drain_watch)(struct sup *s, struct gen *g, long long now); /* after the grace check */
	bool (*gen_exited)(struct sup *s, int gi, const char *how);       /* true: it handled the exit */
	bool (*reaped)(struct sup *s, pid_t pid, int status);  /* a child that is no generation */
	void (*after_reap)(struct sup *s);
	void (*stopping)(struct sup *s);                      /* the supervisor begins to stop */
	int (*admit)(struct sup *s);                          /* a reload may start: 0, or -errno */
	void (*reload_begin)(struct sup *s);
	void (*reload_started)(struct sup *s, int gi);
	void (*reload_counted)(struct sup *s, bool ok, long long took_us); /* -1: not timed */
	void (*reload_end)(struct sup *s);

	/* the state file (state.c, resume.c) */
	void (*save)(struct sup *s, FILE *f);
	void (*saved)(struct sup *s);                         /* after every save */
	bool (*load_line)(struct sup *s, const char *line);   /* true: its line */
	void (*loaded)(struct sup *s);                        /* the resumed counters take effect */
	bool (*resuming)(const struct sup *s, int id);        /* true: it keeps gen ID's reload as it was */
	void (*resumed)(struct sup *s);
};

/* The rows in the order their hooks run (feature.c says why). */
extern const struct sup_feature *const sup_features[];
extern const size_t sup_nfeatures;

#define FEATURES_EACH(f) \
	for (const struct sup_feature *const *f##_at = sup_features, *f; \
	     f##_at < sup_features + sup_nfeatures && (f = *f##_at, true); f##_at++)

/* Every row's HOOK(s, ...), those that fill it, in table order. */
#define FEATURES_CALL(hook, ...) \
	do { \
		FEATURES_EACH(f_) \
			if (f_->hook) \
				f_->hook(__VA_ARGS__); \
	} while (0)

/* true once a row's bool HOOK returns true (the rows after it are not asked) */
#define FEATURES_ANY(hook, ...) ({ \
	bool any_ = false; \
	FEATURES_EACH(f_) \
		if (f_->hook && (any_ = f_->hook(__VA_ARGS__))) \
			break; \
	any_; })

/* the first non-zero return of an int HOOK, or 0 */
#define FEATURES_FIRST(hook, ...) ({ \
	int r_ = 0; \
	FEATURES_EACH(f_) \
		if (f_->hook && (r_ = f_->hook(__VA_ARGS__))) \
			break; \
	r_; })

/* the first descriptor (>= 0) an int HOOK returns; else the last error,
 * or -ENOENT when no row fills it */
#define FEATURES_FD(hook, ...) ({ \
	int fd_ = -ENOENT; \
	FEATURES_EACH(f_) \
		if (f_->hook && (fd_ = f_->hook(__VA_ARGS__)) >= 0) \
			break; \
	fd_; })

#endif
