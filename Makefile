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
CFLAGS   += $(CPPFLAGS) -std=gnu11 $(WARN) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Ilib -Ibpf -I$(BPFDIR) -Icommon
LDFLAGS  += $(SANFLAGS)
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
TEST_SRC := tests/runner.c tests/helpers.c $(wildcard tests/unit/*.c) $(wildcard tests/integ/*.c)
TEST_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRC))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
SKELS    := $(BPFDIR)/steer.skel.h $(BPFDIR)/sockiter.skel.h $(BPFDIR)/bindhook.skel.h $(BPFDIR)/sigwatch.skel.h
# the renderer of baton ls is tested on recorded fixtures, without the CLI;
# the supervisor's state machine is driven by unit tests without processes,
TEST_OBJ += $(BUILD)/obj/cli/lsfmt.o $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard supervisor/*.c) $(wildcard common/*.c))
# and the shim lookup, on the test binary's own directory

.PHONY: all check bench demo fuzz clean installables install uninstall
.SECONDARY:
.DELETE_ON_ERROR:
# what make install copies (a package build needs only these)
INSTALLABLES := $(BUILD)/baton $(BUILD)/libbaton-preload.so $(BUILD)/libbaton.so.$(VERSION) \
	$(BUILD)/$(SONAME) $(BUILD)/libbaton.so $(BUILD)/libbaton.a $(BUILD)/libbaton.pc
all: $(INSTALLABLES) $(BUILD)/baton-test $(BENCHES) $(BUILD)/refserver $(BUILD)/udpflow $(BUILD)/preload-probe
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

$(LIB_OBJ): $(BUILD)/obj/%.o: %.c include/baton.h include/baton_handover_wire.h lib/internal.h lib/util.h $(SKELS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(sort $(CLI_OBJ) $(TEST_OBJ)): $(BUILD)/obj/%.o: %.c include/baton.h include/baton_handover_wire.h $(wildcard tests/*.h cli/*.h supervisor/*.h common/*.h) lib/util.h lib/cgroup.h bpf/bindhook.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Icli -Isupervisor -c $< -o $@

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
# The example server stands alone: what a server needs for baton is the
# protocol, not this library (the handover protocol is one header).
$(BUILD)/refserver: examples/refserver.c include/baton_handover_wire.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<
# The flow-stateful UDP server of the flow tests and benchmark: libc only.
$(BUILD)/udpflow: examples/udpflow.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<
# The preload shim goes into servers built without sanitizers, so it is
# built without them too, and links only libdl: never the BPF loader.
SHIM_CFLAGS := $(CPPFLAGS) -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -fPIC -fvisibility=hidden
SHIM_SRC := preload/shim.c preload/handoff.c
$(BUILD)/libbaton-preload.so: $(SHIM_SRC) preload/shim.h common/handoff_wire.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -Icommon -shared -Wl,-soname,libbaton-preload.so -o $@ $(SHIM_SRC) -ldl
$(BUILD)/preload-probe: tests/preload_probe.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -o $@ $<
$(BUILD)/bench/%: bench/%.c $(BUILD)/libbaton.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libbaton.a $(LDLIBS)

$(BPFDIR):
	@mkdir -p $@

# TESTS=pattern runs the tests whose names contain it. Under SANITIZE=1 the
# reference server is built with ASan and baton run preloads the (plain) shim
# into it: ASan would refuse to start with a library ahead of its runtime,
# although nothing the shim wraps is intercepted by ASan, so that check is off.
SAN_ENV := $(if $(filter 1,$(SANITIZE)),ASAN_OPTIONS=$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}verify_asan_link_order=0)
check: all
	$(SAN_ENV) BATON_SRCDIR=$(CURDIR) BATON_BIN=$(CURDIR)/$(BUILD)/baton BATON_LIB=$(CURDIR)/$(BUILD)/libbaton.so \
		BATON_REFSERVER=$(CURDIR)/$(BUILD)/refserver BATON_UDPFLOW=$(CURDIR)/$(BUILD)/udpflow BATON_LOADGEN=$(CURDIR)/$(BUILD)/bench/loadgen \
		BATON_PROBE=$(CURDIR)/$(BUILD)/preload-probe BATON_PRELOAD_LIB=$(CURDIR)/$(BUILD)/libbaton-preload.so \
		$(BUILD)/baton-test $(TESTS)

bench: all
	$(BUILD)/bench/accept-rate
	$(BUILD)/bench/ls-scale
	BATON_BIN=$(BUILD)/baton BATON_REFSERVER=$(BUILD)/refserver $(BUILD)/bench/failover

demo: all
	$(BUILD)/baton demo

# libFuzzer targets (clang); FUZZ_SECONDS bounds each run.
FUZZ_SECONDS ?= 20
fuzz:
	@mkdir -p build/fuzz
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Ilib -fsanitize=fuzzer,address,undefined \
		fuzz/spec_fuzz.c lib/spec.c lib/log.c -o build/fuzz/spec_fuzz
	mkdir -p build/fuzz/corpus && cp fuzz/corpus/spec/* build/fuzz/corpus/
	build/fuzz/spec_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=256 build/fuzz/corpus
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -fsanitize=fuzzer,address,undefined \
		fuzz/handover_fuzz.c -o build/fuzz/handover_fuzz
	mkdir -p build/fuzz/corpus-handover && cp fuzz/corpus/handover/* build/fuzz/corpus-handover/
	build/fuzz/handover_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz/corpus-handover
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Isupervisor -fsanitize=fuzzer,address,undefined \
		fuzz/items_fuzz.c supervisor/items.c -o build/fuzz/items_fuzz
	mkdir -p build/fuzz/corpus-items && cp fuzz/corpus/items/* build/fuzz/corpus-items/
	build/fuzz/items_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=512 build/fuzz/corpus-items
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Icommon -fsanitize=fuzzer,address,undefined \
		fuzz/handoff_fuzz.c -o build/fuzz/handoff_fuzz
	mkdir -p build/fuzz/corpus-handoff && cp fuzz/corpus/handoff/* build/fuzz/corpus-handoff/
	build/fuzz/handoff_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4200 build/fuzz/corpus-handoff

# Copies only what `make` built (installables): as root, make install
# rebuilds nothing unless the sources or the directories changed.
install: installables
	@if [ "$(SANITIZE)" = 1 ]; then echo "make install: not with SANITIZE=1 (a sanitizer build is for tests)" >&2; exit 1; fi
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PRELOADDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
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

# Removes what install put there, and the shim's directory once empty.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/baton $(DESTDIR)$(PRELOADDIR)/libbaton-preload.so \
		$(DESTDIR)$(LIBDIR)/libbaton.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libbaton.so \
		$(DESTDIR)$(LIBDIR)/libbaton.a $(DESTDIR)$(PKGCONFIGDIR)/libbaton.pc $(DESTDIR)$(INCLUDEDIR)/baton.h \
		$(DESTDIR)$(INCLUDEDIR)/baton_handover_wire.h $(DESTDIR)$(MANDIR)/man1/baton.1 $(DESTDIR)$(MANDIR)/man3/baton.3
	if [ -d $(DESTDIR)$(PRELOADDIR) ]; then rmdir $(DESTDIR)$(PRELOADDIR) 2>/dev/null || true; fi

clean:
	rm -rf build
