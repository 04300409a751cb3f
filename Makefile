# SPDX-License-Identifier: BSD-2-Clause
# baton build: `make` builds the library, BPF skeletons, CLI, tests and
# benchmarks under build/; `make check` runs the tests; `make check
# SANITIZE=1` builds into build/san with ASan+UBSan and runs them there;
# `make install` / `make uninstall` (PREFIX, DESTDIR, ...) put the result in place.
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
SANITIZE ?= 0

ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH:= $(shell $(CC) -print-multiarch 2>/dev/null)
BPFDIR   := build/bpf

# Installation directories, GNU style; DESTDIR stages an install (packages).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# The preload shim is loaded by path (LD_PRELOAD), never searched for, so it
# gets a directory of its own; baton is built to look there.
PRELOADDIR ?= $(LIBDIR)/baton
INSTALL    ?= install
# One version, the header's; the soname changes only with the ABI.
VERSION  := $(shell sed -n '/define BATON_VERSION/s/.*"\(.*\)".*/\1/p' include/baton.h)
SOVERSION:= 0
SONAME   := libbaton.so.$(SOVERSION)

ifeq ($(SANITIZE),1)
BUILD    := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD    := build
SANFLAGS :=
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
# Hardened by default: baton runs as root in front of servers and its shim
# is loaded into them. The flags come first, so CFLAGS/CPPFLAGS/LDFLAGS from
# the environment (dpkg-buildflags, a -fno-... of one's own) still win.
# -fstack-clash-protection and -fcf-protection only where $(CC) has them
# (-fcf-protection is x86 only). _FORTIFY_SOURCE needs optimisation (glibc
# warns, -Werror fails, without -O), is left to the environment when it sets
# it, and is off under SANITIZE=1: ASan checks every access, and the
# fortified __*_chk calls would bypass some of its interceptors.
cc_has    = $(shell $(CC) -Werror $(1) -E -x c /dev/null >/dev/null 2>&1 && echo $(1))
HARDEN_CFLAGS  := -fstack-protector-strong $(call cc_has,-fstack-clash-protection) $(call cc_has,-fcf-protection)
HARDEN_CPPFLAGS:= $(if $(filter-out -O0,$(filter -O%,$(CFLAGS))),$(if $(findstring _FORTIFY_SOURCE,$(CFLAGS) $(CPPFLAGS)),,$(if $(SANFLAGS),,-D_FORTIFY_SOURCE=2)))
HARDEN_LDFLAGS := -Wl,-z,relro,-z,now
# the environment's flags, before the sanitizers are added (the shim has none)
ENV_CFLAGS  := $(CFLAGS)
ENV_LDFLAGS := $(LDFLAGS)
CFLAGS   := $(HARDEN_CFLAGS) $(HARDEN_CPPFLAGS) $(CFLAGS)
CFLAGS   += $(CPPFLAGS) -std=gnu11 $(WARN) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Ilib -Ibpf -I$(BPFDIR) -Icommon
LDFLAGS  := $(HARDEN_LDFLAGS) $(LDFLAGS) $(SANFLAGS)
BPF_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
LDLIBS   := $(BPF_LIBS) -lpthread -lm

# What the build bakes in from the installation directories (where baton
# looks for the shim, the paths in libbaton.pc) is kept in $(BUILD)/dirs,
# rewritten only when they change: a different PREFIX rebuilds just that.
DIRS_LINE := $(PREFIX) $(LIBDIR) $(INCLUDEDIR) $(PRELOADDIR)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
ifneq ($(file <$(BUILD)/dirs),$(DIRS_LINE))
$(shell mkdir -p $(BUILD))
$(file >$(BUILD)/dirs,$(DIRS_LINE))
endif
endif

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
CLI_SRC  := $(wildcard cli/*.c) $(wildcard supervisor/*.c) $(wildcard common/*.c)
CLI_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC))
TEST_SRC := tests/runner.c tests/helpers.c tests/sv.c $(wildcard tests/unit/*.c) $(wildcard tests/integ/*.c)
TEST_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRC))
# the runner with one test that leaves processes behind, which the runner
# must end: run by tests/unit/test_runner.c, never part of the suite
RUNNER_FIXTURE_OBJ := $(BUILD)/obj/tests/runner.o $(BUILD)/obj/tests/runner_fixture.o
# bench/benchlib.c is no program: what the programs share, linked into each
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/benchlib.c,$(wildcard bench/*.c)))
SKELS    := $(BPFDIR)/steer.skel.h $(BPFDIR)/sockiter.skel.h $(BPFDIR)/bindhook.skel.h $(BPFDIR)/sigwatch.skel.h
# the renderer of baton ls is tested on recorded fixtures, without the CLI;
# the supervisor's state machine is driven by unit tests without processes,
TEST_OBJ += $(BUILD)/obj/cli/lsfmt.o $(BUILD)/obj/cli/lsjson.o $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard supervisor/*.c) $(wildcard common/*.c))
# and the shim lookup, on the test binary's own directory

.PHONY: all check check-unit bench demo fuzz clean installables install uninstall
.SECONDARY:
.DELETE_ON_ERROR:
# what make install copies (a package build needs only these)
INSTALLABLES := $(BUILD)/baton $(BUILD)/libbaton-preload.so $(BUILD)/libbaton.so.$(VERSION) \
	$(BUILD)/$(SONAME) $(BUILD)/libbaton.so $(BUILD)/libbaton.a $(BUILD)/libbaton.pc
all: $(INSTALLABLES) $(BUILD)/baton-test $(BUILD)/runner-fixture $(BENCHES) $(BUILD)/refserver $(BUILD)/udpflow $(BUILD)/preload-probe
installables: $(INSTALLABLES)

# BPF: clang -> bpftool gen object (links, strips DWARF) -> bpftool gen skeleton.
# Static pattern rules only: an implicit chain let a parallel build compile
# lib/ before its skeleton existed.
$(SKELS): $(BPFDIR)/%.skel.h: bpf/%.bpf.c $(wildcard bpf/*.h) | $(BPFDIR)
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		$(if $(MULTIARCH),-I/usr/include/$(MULTIARCH)) -Ibpf -I$(BPFDIR) -c $< -o $(BPFDIR)/$*.tmp.o
	$(BPFTOOL) gen object $(BPFDIR)/$*.bpf.o $(BPFDIR)/$*.tmp.o
	$(BPFTOOL) gen skeleton $(BPFDIR)/$*.bpf.o name $*_bpf > $@.tmp && mv $@.tmp $@

# Kernel types for the socket iterator (CO-RE); steer.bpf.c needs only uapi.
$(BPFDIR)/vmlinux.h: | $(BPFDIR)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@
$(BPFDIR)/sockiter.skel.h $(BPFDIR)/sigwatch.skel.h: $(BPFDIR)/vmlinux.h

$(LIB_OBJ): $(BUILD)/obj/%.o: %.c include/baton.h include/baton_handover_wire.h lib/internal.h lib/util.h lib/steer_int.h bpf/steer.h $(SKELS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(sort $(CLI_OBJ) $(TEST_OBJ) $(RUNNER_FIXTURE_OBJ)): $(BUILD)/obj/%.o: %.c include/baton.h include/baton_handover_wire.h $(wildcard tests/*.h cli/*.h supervisor/*.h common/*.h) lib/util.h lib/cgroup.h lib/steer_int.h bpf/bindhook.h bpf/steer.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Icli -Isupervisor -c $< -o $@

# As libbpf's Makefile does: the header's MAJOR.MINOR must be the newest node
# of the version script, so that a release adding symbols also says so in
# BATON_VERSION (and the other way round); BATON_VERSION must spell the three
# macros. Checked before either library is made.
MAP_VERSION := $(shell sed -n 's/^BATON_\([0-9][0-9.]*\)[[:space:]]*{.*/\1/p' lib/libbaton.map | sort -V | tail -n1)
HDR_VERSION := $(shell sed -n 's/^\#define BATON_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\).*/\2/p' include/baton.h | paste -sd.)
$(BUILD)/version-ok: include/baton.h lib/libbaton.map Makefile
	@if [ "$(VERSION)" != "$(HDR_VERSION)" ]; then \
		echo "include/baton.h: BATON_VERSION \"$(VERSION)\" is not BATON_VERSION_MAJOR.MINOR.PATCH ($(HDR_VERSION))" >&2; exit 1; fi
	@if [ "$(basename $(VERSION))" != "$(MAP_VERSION)" ]; then \
		echo "include/baton.h: BATON_VERSION $(VERSION) does not match the newest node BATON_$(MAP_VERSION) of lib/libbaton.map:" \
			"the header's MAJOR.MINOR and the newest node must be the same version" >&2; exit 1; fi
	@mkdir -p $(dir $@) && touch $@
$(BUILD)/libbaton.a $(BUILD)/libbaton.so.$(VERSION): | $(BUILD)/version-ok
$(BUILD)/libbaton.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libbaton.so.$(VERSION): $(LIB_OBJ) lib/libbaton.map
	$(CC) $(LDFLAGS) -shared -Wl,--version-script=lib/libbaton.map -Wl,-soname,$(SONAME) \
		-o $@ $(LIB_OBJ) $(LDLIBS)
$(BUILD)/$(SONAME): $(BUILD)/libbaton.so.$(VERSION)
	ln -sfn $(notdir $<) $@
$(BUILD)/libbaton.so: $(BUILD)/$(SONAME)
	ln -sfn $(notdir $<) $@
# ${prefix}-relative where it can be, so pkg-config --define-prefix works
$(BUILD)/libbaton.pc: lib/libbaton.pc.in include/baton.h $(BUILD)/dirs
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@.tmp && mv $@.tmp $@
$(BUILD)/dirs: ;
$(BUILD)/obj/common/preload_path.o: $(BUILD)/dirs
$(BUILD)/obj/common/preload_path.o: CFLAGS += -DBATON_PRELOAD_DIR='"$(PRELOADDIR)"'
$(BUILD)/baton: $(CLI_OBJ) $(BUILD)/libbaton.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libbaton.a $(LDLIBS)
$(BUILD)/baton-test: $(TEST_OBJ) $(BUILD)/libbaton.a
	$(CC) $(LDFLAGS) -o $@ $(sort $(TEST_OBJ)) $(BUILD)/libbaton.a $(LDLIBS)
$(BUILD)/runner-fixture: $(RUNNER_FIXTURE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $(RUNNER_FIXTURE_OBJ) $(LDLIBS)
# The no-root lane: tests/unit only (and what they drive), without the
# integration tests, so `make check-unit` builds little and runs in seconds.
UNIT_OBJ := $(filter-out $(BUILD)/obj/tests/integ/%,$(TEST_OBJ))
$(BUILD)/baton-unit: $(UNIT_OBJ) $(BUILD)/libbaton.a
	$(CC) $(LDFLAGS) -o $@ $(sort $(UNIT_OBJ)) $(BUILD)/libbaton.a $(LDLIBS)
# The example server stands alone: what a server needs for baton is the
# protocol, not this library (the handover protocol is one header; its
# option numbers are checked by the header-only common/numarg.h).
REFSERVER_SRC := $(wildcard examples/refserver/*.c)
$(BUILD)/refserver: $(REFSERVER_SRC) examples/refserver/refserver.h include/baton_handover_wire.h common/numarg.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(REFSERVER_SRC)
# The flow-stateful UDP server of the flow tests and benchmark: libc only.
$(BUILD)/udpflow: examples/udpflow.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<
# The smallest server for baton run (a newcomer's first read); tested under
# baton run by tests/integ/test_minimal.c, found next to BATON_BIN.
all: $(BUILD)/minimal
$(BUILD)/minimal: examples/minimal.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<
# The preload shim goes into servers built without sanitizers, so it is
# built without them too, and links only libdl: never the BPF loader.
# It is hardened like the rest (it runs inside root servers) and takes the
# environment's CFLAGS and LDFLAGS, without the sanitizers.
SHIM_OPT := $(if $(SANFLAGS),-O2 -g,$(ENV_CFLAGS))
SHIM_CPPFLAGS := $(if $(filter-out -O0,$(filter -O%,$(SHIM_OPT))),$(if $(findstring _FORTIFY_SOURCE,$(SHIM_OPT) $(CPPFLAGS)),,-D_FORTIFY_SOURCE=2))
SHIM_CFLAGS := $(HARDEN_CFLAGS) $(SHIM_CPPFLAGS) $(SHIM_OPT) $(CPPFLAGS) \
	-std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden
SHIM_LDFLAGS := $(HARDEN_LDFLAGS) $(ENV_LDFLAGS)
SHIM_SRC := preload/shim.c preload/handoff.c common/preload_map.c
$(BUILD)/libbaton-preload.so: $(SHIM_SRC) preload/shim.h common/handoff_wire.h common/preload_map.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -Icommon $(SHIM_LDFLAGS) -shared -Wl,-soname,libbaton-preload.so -o $@ $(SHIM_SRC) -ldl
$(BUILD)/preload-probe: tests/preload_probe.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) $(SHIM_LDFLAGS) -o $@ $<
$(BUILD)/bench/%: bench/%.c bench/benchlib.c bench/benchlib.h common/numarg.h $(BUILD)/libbaton.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< bench/benchlib.c $(BUILD)/libbaton.a $(LDLIBS)

$(BPFDIR):
	@mkdir -p $@

# TESTS=pattern runs the tests whose names contain it; a name is LANE/NAME
# (unit/, integ/: the folder of its file), so TESTS=unit/ runs one lane.
# TEST_JOBS=N runs N tests side by side, then those declared TEST_ALONE one by
# one; TEST_LOCK=FILE makes them share FILE with what else runs (.ci/run).
TEST_JOBS ?= 1
TEST_LOCK ?=
# Under SANITIZE=1 the
# reference server is built with ASan and baton run preloads the (plain) shim
# into it: ASan would refuse to start with a library ahead of its runtime,
# although nothing the shim wraps is intercepted by ASan, so that check is off.
SAN_ENV := $(if $(filter 1,$(SANITIZE)),ASAN_OPTIONS=$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}verify_asan_link_order=0)
check: all
	$(SAN_ENV) BATON_SRCDIR=$(CURDIR) BATON_BIN=$(CURDIR)/$(BUILD)/baton BATON_LIB=$(CURDIR)/$(BUILD)/libbaton.so \
		BATON_REFSERVER=$(CURDIR)/$(BUILD)/refserver BATON_UDPFLOW=$(CURDIR)/$(BUILD)/udpflow BATON_LOADGEN=$(CURDIR)/$(BUILD)/bench/loadgen \
		BATON_PROBE=$(CURDIR)/$(BUILD)/preload-probe BATON_PRELOAD_LIB=$(CURDIR)/$(BUILD)/libbaton-preload.so \
		BATON_RUNNER_FIXTURE=$(CURDIR)/$(BUILD)/runner-fixture $(BUILD)/baton-test -j$(TEST_JOBS) $(if $(TEST_LOCK),--lock $(TEST_LOCK)) $(TESTS)

# The no-root lane: tests/unit without the tests declared TEST_ROOT or
# TEST_ENV, as user nobody (when run as root) with no BATON_* variable, in
# seconds; it builds only what those tests use (and the shim they look for).
check-unit: $(BUILD)/baton-unit $(BUILD)/libbaton-preload.so
	$(SAN_ENV) $(BUILD)/baton-unit --no-root $(TESTS)

bench: all
	$(BUILD)/bench/accept-rate
	$(BUILD)/bench/ls-scale
	BATON_BIN=$(BUILD)/baton BATON_REFSERVER=$(BUILD)/refserver $(BUILD)/bench/failover

demo: all
	$(BUILD)/baton demo

# libFuzzer targets (clang); FUZZ_SECONDS bounds each run. `make fuzz` builds
# and runs them all, `make fuzz-NAME` one. To add a target NAME: write
# fuzz/NAME_fuzz.c, seed fuzz/corpus/NAME/, and append a block of three
# lines below: FUZZ_TARGETS += NAME, FUZZ_SRC_NAME (the sources it fuzzes)
# and FUZZ_LEN_NAME (-max_len); FUZZ_CFLAGS_NAME for extra -I if needed.
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Ilib -Icommon -fsanitize=fuzzer,address,undefined

FUZZ_TARGETS += spec
FUZZ_SRC_spec := lib/spec.c lib/log.c
FUZZ_LEN_spec := 256

FUZZ_TARGETS += handover
FUZZ_SRC_handover :=
FUZZ_LEN_handover := 4096

FUZZ_TARGETS += items
FUZZ_SRC_items := supervisor/items.c
FUZZ_LEN_items := 512
FUZZ_CFLAGS_items := -Isupervisor

# sd_notify datagrams from generations (the parse in lib/notify.c)
FUZZ_TARGETS += notify
FUZZ_SRC_notify := lib/notify.c lib/util.c
FUZZ_LEN_notify := 4200

# the escaper of other users' text in every text and JSON output
FUZZ_TARGETS += textesc
FUZZ_SRC_textesc := lib/util.c
FUZZ_LEN_textesc := 512

# the request line and head of the --metrics-listen HTTP endpoint
FUZZ_TARGETS += mhttp
FUZZ_SRC_mhttp := supervisor/httpreq.c
FUZZ_LEN_mhttp := 8192
FUZZ_CFLAGS_mhttp := -Isupervisor

# the state file a resumed supervisor reads (supervisor/stateparse.c)
FUZZ_TARGETS += state
FUZZ_SRC_state := supervisor/stateparse.c supervisor/strv.c supervisor/items.c lib/spec.c lib/log.c
FUZZ_LEN_state := 2048
FUZZ_CFLAGS_state := -Isupervisor

# request lines on the control socket (supervisor/ctlparse.c)
FUZZ_TARGETS += ctl
FUZZ_SRC_ctl := supervisor/ctlparse.c
FUZZ_LEN_ctl := 257
FUZZ_CFLAGS_ctl := -Isupervisor

# the shim's BATON_PRELOAD map, parsed inside users' servers (common/preload_map.c)
FUZZ_TARGETS += preload
FUZZ_SRC_preload := common/preload_map.c
FUZZ_LEN_preload := 4096

# the keep-alive handoff's messages and the shim's BATON_HANDOFF parser
FUZZ_TARGETS += handoff
FUZZ_SRC_handoff :=
FUZZ_LEN_handoff := 4200

define FUZZ_RULES
build/fuzz/$(1)_fuzz: fuzz/$(1)_fuzz.c $$(FUZZ_SRC_$(1)) $$(wildcard include/*.h lib/*.h common/*.h supervisor/*.h) Makefile
	@mkdir -p build/fuzz
	$$(CLANG) $$(FUZZ_CFLAGS) $$(FUZZ_CFLAGS_$(1)) fuzz/$(1)_fuzz.c $$(FUZZ_SRC_$(1)) -o $$@
.PHONY: fuzz-$(1)
fuzz-$(1): build/fuzz/$(1)_fuzz
	mkdir -p build/fuzz/corpus-$(1) && cp fuzz/corpus/$(1)/* build/fuzz/corpus-$(1)/
	build/fuzz/$(1)_fuzz -max_total_time=$$(FUZZ_SECONDS) -max_len=$$(FUZZ_LEN_$(1)) build/fuzz/corpus-$(1)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))

# Copies only what `make` built (installables): as root, make install
# rebuilds nothing unless the sources or the directories changed.
# Without DESTDIR, the folders install creates are listed in
# $(INSTALLED_DIRS), so that uninstall removes them (once empty) and only them.
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALL_DIRLIST = $(BINDIR) $(LIBDIR) $(PRELOADDIR) $(PKGCONFIGDIR) $(INCLUDEDIR) $(MANDIR)/man1 $(MANDIR)/man3 \
	$(COMPLETIONDIR)
INSTALLED_DIRS = $(DESTDIR)$(PRELOADDIR)/installed-dirs
install: installables
	@if [ "$(SANITIZE)" = 1 ]; then echo "make install: not with SANITIZE=1 (a sanitizer build is for tests)" >&2; exit 1; fi
	@new=; for d in $(INSTALL_DIRLIST); do p="$(DESTDIR)$$d"; \
		while [ -n "$$p" ] && [ "$$p" != / ] && [ ! -d "$$p" ]; do new="$$new $$p"; p=$$(dirname "$$p"); done; \
	done; $(INSTALL) -d $(addprefix $(DESTDIR),$(INSTALL_DIRLIST)); \
	if [ -z "$(DESTDIR)" ]; then for p in $$new; do echo "$$p"; done >> $(INSTALLED_DIRS); fi
	$(INSTALL) -m 755 $(BUILD)/baton $(DESTDIR)$(BINDIR)/baton
	$(INSTALL) -m 644 $(BUILD)/libbaton-preload.so $(DESTDIR)$(PRELOADDIR)/libbaton-preload.so
	$(INSTALL) -m 644 $(BUILD)/libbaton.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libbaton.so.$(VERSION)
	ln -sfn libbaton.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libbaton.so
	$(INSTALL) -m 644 $(BUILD)/libbaton.a $(DESTDIR)$(LIBDIR)/libbaton.a
	$(INSTALL) -m 644 $(BUILD)/libbaton.pc $(DESTDIR)$(PKGCONFIGDIR)/libbaton.pc
	$(INSTALL) -m 644 include/baton.h $(DESTDIR)$(INCLUDEDIR)/baton.h
	$(INSTALL) -m 644 include/baton_handover_wire.h $(DESTDIR)$(INCLUDEDIR)/baton_handover_wire.h
	$(INSTALL) -m 644 man/baton.1 $(DESTDIR)$(MANDIR)/man1/baton.1
	$(INSTALL) -m 644 man/baton.3 $(DESTDIR)$(MANDIR)/man3/baton.3
	$(INSTALL) -m 644 completion/baton.bash $(DESTDIR)$(COMPLETIONDIR)/baton
	@# the dynamic linker finds the new libbaton.so.0 without another step
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; \
		ldconfig -p | grep -qF "$(LIBDIR)/$(SONAME)" || echo "make install: $(LIBDIR) is not in the dynamic linker's path: add it to /etc/ld.so.conf.d/ and run ldconfig, or run programs with LD_LIBRARY_PATH=$(LIBDIR)" >&2; fi

# Removes what install put there, the shim's directory once empty, and the
# folders install created (listed, or with DESTDIR those under it) once empty.
uninstall:
	@dirs=$$(cat $(INSTALLED_DIRS) 2>/dev/null); rm -f $(INSTALLED_DIRS); \
	rm -f $(DESTDIR)$(BINDIR)/baton $(DESTDIR)$(PRELOADDIR)/libbaton-preload.so \
		$(DESTDIR)$(LIBDIR)/libbaton.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libbaton.so \
		$(DESTDIR)$(LIBDIR)/libbaton.a $(DESTDIR)$(PKGCONFIGDIR)/libbaton.pc $(DESTDIR)$(INCLUDEDIR)/baton.h \
		$(DESTDIR)$(INCLUDEDIR)/baton_handover_wire.h $(DESTDIR)$(MANDIR)/man1/baton.1 $(DESTDIR)$(MANDIR)/man3/baton.3 \
		$(DESTDIR)$(COMPLETIONDIR)/baton; \
	if [ -d $(DESTDIR)$(PRELOADDIR) ]; then rmdir $(DESTDIR)$(PRELOADDIR) 2>/dev/null || true; fi; \
	if [ -n "$(DESTDIR)" ] && [ "$(DESTDIR)" != / ]; then for d in $(INSTALL_DIRLIST); do p="$(DESTDIR)$$d"; \
		while [ "$$p" != "$(DESTDIR)" ] && [ "$$p" != / ] && rmdir "$$p" 2>/dev/null; do p=$$(dirname "$$p"); done; done; \
	else for p in $$(printf '%s\n' $$dirs | sort -ru); do rmdir "$$p" 2>/dev/null || true; done; fi

clean:
	rm -rf build
