# SPDX-License-Identifier: Apache-2.0
# switchyard — build, test, demo. Everything built lands in $(OUT) (git-ignored).
#   make            daemon, CLI, BPF objects and skeletons
#   make test       deps, build, unit tests (ASan+UBSan), fuzz corpus replay, system tests
#   make demo       deps, build, a local cutover with live telemetry
#   make fuzz       libFuzzer harnesses for FUZZ_SECONDS each
#   make format     clang-format every C source

OUT ?= build
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

WARN := -Wall -Wextra -Werror
CFLAGS ?= -O2 -g
BASE_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -Iagent -I/usr/include/lua5.4 -I$(OUT)/gen -I$(OUT)/skel
LDLIBS := -lbpf -lelf -lz -lprotobuf-c -lnghttp2 -lyaml -lhiredis -lm -lmicrohttpd -ljson-c -llua5.4 -lpthread -lssl -lcrypto
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUT)/skel/%.skel.h,$(BPF_SRCS))

PROTOS := $(shell find proto -name '*.proto' | sort)
PB_SRCS := $(patsubst proto/%.proto,$(OUT)/gen/%.pb-c.c,$(PROTOS))
PB_HDRS := $(PB_SRCS:.c=.h)

# agent/ is grouped by subsystem (docs/architecture.md); every folder but syctl/ goes
# into the library that the daemon, the CLI, the tests and the fuzzers link.
AGENT_SRCS := $(filter-out agent/switchyardd.c agent/syctl/%,$(sort $(wildcard agent/*.c agent/*/*.c)))
SYCTL_SRCS := $(wildcard agent/syctl/*.c)
LIB_SRCS := $(AGENT_SRCS) $(PB_SRCS)

# The dashboard (agent/web/): its files are embedded in the library by assets.S.
WEB_FILES := $(filter-out agent/web/assets.S,$(wildcard agent/web/*))
WEB_OBJ := $(OUT)/obj/agent/web/assets.o

OBJS := $(patsubst %.c,$(OUT)/obj/%.o,$(LIB_SRCS:$(OUT)/%=%)) $(WEB_OBJ)
ASAN_OBJS := $(patsubst %.c,$(OUT)/asan/%.o,$(LIB_SRCS:$(OUT)/%=%)) $(WEB_OBJ)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))

TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(OUT)/tools/%,$(TOOL_SRCS))

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz/%,$(FUZZ_SRCS))
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz-replay/%,$(FUZZ_SRCS))

.PHONY: all deps test unit fuzz-replay system demo fuzz bench format clean
.SECONDARY:

all: $(OUT)/switchyardd $(OUT)/syctl $(BPF_OBJS) $(SKELS) $(TOOL_BINS)

deps:
	@./packaging/deps.sh

# --- BPF: vmlinux.h → .bpf.o → skeleton -------------------------------------------
$(OUT)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(OUT)/vmlinux.h $(wildcard bpf/lib/*.h) $(wildcard include/switchyard/*.h)
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -D__BPF__ $(WARN) -Wno-unused-function \
		-I$(OUT) -Iinclude -Ibpf -c $< -o $@

$(OUT)/skel/%.skel.h: $(OUT)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# --- protobuf-c -------------------------------------------------------------------
$(OUT)/gen/%.pb-c.c $(OUT)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(OUT)/gen
	protoc-c --proto_path=proto --c_out=$(OUT)/gen $<

# --- agent objects (normal and sanitized) -----------------------------------------
GEN_HDRS := $(PB_HDRS) $(SKELS)

$(OUT)/obj/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/obj/gen/%.o: $(OUT)/gen/%.c $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g -I$(OUT)/gen -c $< -o $@

$(OUT)/asan/%.o: %.c $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS) -MMD -MP -c $< -o $@

$(OUT)/asan/gen/%.o: $(OUT)/gen/%.c $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -g $(SAN_FLAGS) -I$(OUT)/gen -c $< -o $@

$(WEB_OBJ): agent/web/assets.S $(WEB_FILES)
	@mkdir -p $(@D)
	$(CC) -Wa,-Iagent/web -c $< -o $@

$(OUT)/libagent.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/libagent-asan.a: $(ASAN_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(OUT)/switchyardd: $(OUT)/obj/agent/switchyardd.o $(OUT)/libagent.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/syctl: $(patsubst %.c,$(OUT)/obj/%.o,$(SYCTL_SRCS)) $(OUT)/libagent.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(OUT)/obj $(OUT)/asan -name '*.d' 2>/dev/null)

# --- tests ------------------------------------------------------------------------
$(OUT)/tests/%: tests/unit/%.c $(OUT)/libagent-asan.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS) -o $@ $< $(OUT)/libagent-asan.a $(LDLIBS) -lcmocka

# Test tools: small programs over the agent's library that the system tests and
# benchmarks drive (tests/tools/sy_drain.c runs one drain).
$(OUT)/tools/%: tests/tools/%.c $(OUT)/libagent.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< $(OUT)/libagent.a $(LDLIBS)

# Fuzz harnesses: replay binaries (plain main over the corpus, sanitized, gcc) for make
# test; libFuzzer binaries (clang) for make fuzz.
# Harness-specific libraries (fuzz_resp uses hiredis's reader as its oracle).
FUZZ_LIBS_fuzz_resp := -lhiredis
FUZZ_LIBS_fuzz_resp_reply := -lhiredis

$(OUT)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay_main.c $(OUT)/libagent-asan.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS) -o $@ $< tests/fuzz/replay_main.c $(OUT)/libagent-asan.a $(LDLIBS) \
		$(FUZZ_LIBS_$*)

$(OUT)/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(GEN_HDRS) $(WEB_OBJ)
	@mkdir -p $(@D)
	$(CLANG) $(BASE_CFLAGS) -Wno-unused-command-line-argument -O1 -g -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(LIB_SRCS) $(WEB_OBJ) $(LDLIBS) $(FUZZ_LIBS_$*)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t; done

fuzz-replay: $(FUZZ_REPLAY)
	@set -e; for t in $(FUZZ_REPLAY); do n=$$(basename $$t); \
		echo "== replay $$n"; $$t tests/fuzz/corpus/$$n; done

system: all
	cd tests/system && OUT=$(abspath $(OUT)) $(PYTHON) -m pytest -ra $(PYTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-replay
	@$(MAKE) --no-print-directory system

fuzz: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_BINS); do n=$$(basename $$t); mkdir -p $(OUT)/fuzz-corpus/$$n; \
		echo "== fuzz $$n for $(FUZZ_SECONDS)s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(OUT)/fuzz-corpus/$$n tests/fuzz/corpus/$$n; done

demo: deps
	@$(MAKE) --no-print-directory all
	./packaging/demo.sh

bench: all
	./bench/steer.sh

# --- Debian package: $(OUT)/switchyard_VERSION_ARCH.deb (packaging/mkdeb.sh) -------
# DEB_VERSION overrides the package version (the binaries keep SY_VERSION).
VERSION := $(shell sed -n 's/^\#define SY_VERSION "\(.*\)"/\1/p' agent/core/daemon.h)
DEB_VERSION ?= $(VERSION)

.PHONY: deb
deb: all
	OUT=$(OUT) ./packaging/mkdeb.sh $(DEB_VERSION)

format:
	clang-format -i $$(find agent include bpf tests -name '*.[ch]')

clean:
	rm -rf $(OUT)
