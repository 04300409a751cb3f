# baton build: `make` builds the library, BPF skeletons, CLI, tests and
# benchmarks under build/; `make check` runs the tests; `make check
# SANITIZE=1` builds into build/san with ASan+UBSan and runs them there.
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
SANITIZE ?= 0

ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH:= $(shell $(CC) -print-multiarch 2>/dev/null)
BPFDIR   := build/bpf

ifeq ($(SANITIZE),1)
BUILD    := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD    := build
SANFLAGS :=
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Ilib -Ibpf -I$(BPFDIR) -Icommon
LDFLAGS  += $(SANFLAGS)
BPF_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
LDLIBS   := $(BPF_LIBS) -lpthread -lm

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
CLI_SRC  := $(wildcard cli/*.c) $(wildcard supervisor/*.c) $(wildcard common/*.c)
CLI_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC))
TEST_SRC := tests/runner.c tests/helpers.c $(wildcard tests/unit/*.c) $(wildcard tests/integ/*.c)
TEST_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRC))
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
SKELS    := $(BPFDIR)/steer.skel.h $(BPFDIR)/sockiter.skel.h
# the renderer of baton ls is tested on recorded fixtures, without the CLI
TEST_OBJ += $(BUILD)/obj/cli/lsfmt.o

.PHONY: all check bench demo fuzz clean
.SECONDARY:
.DELETE_ON_ERROR:
all: $(BUILD)/libbaton.a $(BUILD)/libbaton.so $(BUILD)/baton $(BUILD)/baton-test $(BENCHES) $(BUILD)/refserver \
	$(BUILD)/libbaton-preload.so $(BUILD)/preload-probe

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
$(BPFDIR)/sockiter.skel.h: $(BPFDIR)/vmlinux.h

$(LIB_OBJ): $(BUILD)/obj/%.o: %.c include/baton.h include/baton_handover_wire.h lib/internal.h lib/util.h $(SKELS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(sort $(CLI_OBJ) $(TEST_OBJ)): $(BUILD)/obj/%.o: %.c include/baton.h include/baton_handover_wire.h $(wildcard tests/*.h cli/*.h supervisor/*.h common/*.h) lib/util.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Icli -Isupervisor -c $< -o $@

$(BUILD)/libbaton.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libbaton.so: $(LIB_OBJ) lib/libbaton.map
	$(CC) $(LDFLAGS) -shared -Wl,--version-script=lib/libbaton.map -Wl,-soname,libbaton.so.0 \
		-o $@ $(LIB_OBJ) $(LDLIBS)
$(BUILD)/baton: $(CLI_OBJ) $(BUILD)/libbaton.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libbaton.a $(LDLIBS)
$(BUILD)/baton-test: $(TEST_OBJ) $(BUILD)/libbaton.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libbaton.a $(LDLIBS)
# The example server stands alone: what a server needs for baton is the
# protocol, not this library (the handover protocol is one header).
$(BUILD)/refserver: examples/refserver.c include/baton_handover_wire.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<
# The preload shim goes into servers built without sanitizers, so it is
# built without them too, and links only libdl: never the BPF loader.
SHIM_CFLAGS := -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -fPIC -fvisibility=hidden
$(BUILD)/libbaton-preload.so: preload/shim.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(SHIM_CFLAGS) -shared -Wl,-soname,libbaton-preload.so -o $@ $< -ldl
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
	$(SAN_ENV) BATON_BIN=$(CURDIR)/$(BUILD)/baton BATON_LIB=$(CURDIR)/$(BUILD)/libbaton.so \
		BATON_REFSERVER=$(CURDIR)/$(BUILD)/refserver BATON_LOADGEN=$(CURDIR)/$(BUILD)/bench/loadgen \
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

clean:
	rm -rf build
