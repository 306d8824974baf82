# SPDX-License-Identifier: MIT
# evring: plain GNU Make, no configure step.
#   make                 library (shared + static), the evring command, tests, benchmarks, examples
#   make check           build and run every test (quick tier); SAN=thread or SAN=address,undefined
#   make check-long      soaks: the stress oracles for minutes, longer fuzzing
#   make check-controls  the must-fail builds: the suite must catch each deliberate bug
#   make bench           benchmarks (one BENCH line per figure)
#   make demo            build and run examples/demo
#   make fuzz            libFuzzer targets (clang), FUZZ_SECONDS per target
#   make install PREFIX=/usr/local DESTDIR=
#   O=dir for an out-of-tree build, V=1 for verbose commands.

VERSION_MAJOR := 0
VERSION := $(VERSION_MAJOR).1.0

CC ?= cc
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SAN ?=
ifeq ($(SAN),)
O ?= build
else
O ?= build-$(subst $(comma),-,$(SAN))
endif
comma := ,

ifeq ($(V),1)
Q :=
else
Q := @
endif

OPT ?= -O2
BASE_CFLAGS := -std=gnu11 -g $(OPT) -Wall -Wextra -Wshadow -Wno-unused-parameter \
	-fvisibility=hidden -fPIC -Iinclude -Isrc -Itests/common
ifneq ($(SAN),)
BASE_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer
SAN_LDFLAGS := -fsanitize=$(SAN)
endif
ALL_CFLAGS := $(BASE_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(SAN_LDFLAGS) $(LDFLAGS)
LIBS := -lpthread

LIB_SRCS := $(sort $(wildcard src/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
SONAME := libevring.so.$(VERSION_MAJOR)
SOLIB := $(O)/libevring.so.$(VERSION)
ALIB := $(O)/libevring.a

TEST_SRCS := $(sort $(wildcard tests/*.c))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(O)/tests/%)
TEST_COMMON := $(wildcard tests/common/*.c)
# script tests (models, end-to-end CLI checks): tests/t-*.sh, run by the same runner
TEST_SCRIPTS := $(sort $(wildcard tests/t-*.sh))
BENCH_SRCS := $(sort $(wildcard bench/*.c))
# the peer benchmarks need the peers' headers (bench/run-peers.sh installs them); without them
# plain `make` still builds everything else
BENCH_SKIP := $(if $(and $(wildcard /usr/include/ck_ring.h),$(wildcard /usr/include/urcu/wfcqueue.h)),,w3-multi) \
	$(if $(wildcard /usr/include/lttng/tracepoint.h),,w1-ts)
BENCH_BINS := $(filter-out $(addprefix $(O)/bench/,$(BENCH_SKIP)),$(BENCH_SRCS:bench/%.c=$(O)/bench/%))
# peers the benchmarks compare with (Debian: libck-dev liburcu-dev liblttng-ust-dev)
BENCH_LIBS_w3-multi := -lck -lurcu-common
BENCH_LIBS_w1-ts := -llttng-ust -ldl
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(O)/examples/%)
TOOL_SRCS := $(sort $(wildcard tools/evring/*.c))
TOOL := $(O)/evring

all: $(SOLIB) $(ALIB) $(TOOL) $(TEST_BINS) $(BENCH_BINS) $(EXAMPLE_BINS) $(O)/evring.pc

$(O)/%.o: %.c $(wildcard include/*.h include/evring/*.h src/*.h tests/common/*.h bench/*.h) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# the replay tests compile the fuzz targets' sources in
$(patsubst tests/%.c,$(O)/tests/%.o,$(wildcard tests/fuzz-replay-*.c)): $(wildcard fuzz/*.c)

$(SOLIB): $(LIB_OBJS) src/libevring.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libevring.map \
		-Wl,-z,defs $(ALL_LDFLAGS) -o $@ $(LIB_OBJS) $(LIBS)
	$(Q)ln -sf $(notdir $@) $(O)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(O)/libevring.so

$(ALIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

TEST_COMMON_OBJS := $(TEST_COMMON:%.c=$(O)/%.o)

$(O)/tests/%: $(O)/tests/%.o $(TEST_COMMON_OBJS) $(ALIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_COMMON_OBJS) $(ALIB) $(LIBS)

$(O)/bench/%: $(O)/bench/%.o $(ALIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(ALIB) $(LIBS) $(BENCH_LIBS_$*)

$(O)/examples/%: $(O)/examples/%.o $(TEST_COMMON_OBJS) $(ALIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_COMMON_OBJS) $(ALIB) $(LIBS)

$(TOOL): $(TOOL_SRCS:%.c=$(O)/%.o) $(ALIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(TOOL_SRCS:%.c=$(O)/%.o) $(ALIB) $(LIBS)

# regenerated every time: PREFIX and the directories may differ between make and make install
$(O)/evring.pc: evring.pc.in Makefile FORCE
	@mkdir -p $(O)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# ---- tests ----------------------------------------------------------------------------------
EVR_SEED ?=
TEST_TIMEOUT ?= 120

check: $(TEST_BINS) $(TOOL)
	$(Q)O=$(O) SAN=$(SAN) EVR_SEED=$(EVR_SEED) TEST_TIMEOUT=$(TEST_TIMEOUT) tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS)

check-long: $(TEST_BINS)
	$(Q)EVR_LONG=1 O=$(O) TEST_TIMEOUT=1800 tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS)

# Must-fail controls: the same sources with one deliberate bug each.
#  - the pre-1b038c6 commit order must be caught by the stress oracle (exit 1);
#  - an outer fast path that gives back bytes it took past the room with a plain store (a
#    handler may have reserved after them) must be caught by ring-step (exit 1);
#  - a relaxed data_head store must be reported by ThreadSanitizer (exit 66);
#  - multi-producer ring: a relaxed commit store must be reported by ThreadSanitizer (exit 66),
#    and a reader that does not zero what it consumed must be caught by mpsc-stress (exit 1).
#  - flight ring: a reader swap that does not require the HEAD flag, and a head search that
#    ignores the writer's push count, must each be caught by flight-stress (exit 1).
CTRL_NEST_O := $(O)/ctl-nest
CTRL_RELAX_O := $(O)/ctl-relaxed
CTRL_GIVEBACK_O := $(O)/ctl-give-back
CTRL_MPSC_RELAX_O := $(O)/ctl-mpsc-relaxed
CTRL_MPSC_NOZERO_O := $(O)/ctl-mpsc-nozero
CTRL_FLIGHT_O := $(O)/ctl-flight-swap
CTRL_FLIGHT_PUSH_O := $(O)/ctl-flight-push
check-controls:
	$(Q)$(MAKE) --no-print-directory O=$(CTRL_NEST_O) SAN= CFLAGS="$(CFLAGS) -DEVR_BROKEN_NEST_ORDER" \
		$(CTRL_NEST_O)/tests/ring-stress
	$(Q)$(MAKE) --no-print-directory O=$(CTRL_RELAX_O) SAN=thread CFLAGS="$(CFLAGS) -DEVR_BROKEN_RELAXED_HEAD" \
		$(CTRL_RELAX_O)/tests/ring-stress
	$(Q)$(MAKE) --no-print-directory O=$(CTRL_GIVEBACK_O) SAN= CFLAGS="$(CFLAGS) -DEVR_BROKEN_FAST_GIVE_BACK" \
		$(CTRL_GIVEBACK_O)/tests/ring-step
	$(Q)$(MAKE) --no-print-directory O=$(CTRL_MPSC_RELAX_O) SAN=thread \
		CFLAGS="$(CFLAGS) -DEVR_BROKEN_MPSC_RELAXED_COMMIT" $(CTRL_MPSC_RELAX_O)/tests/mpsc-stress
	$(Q)$(MAKE) --no-print-directory O=$(CTRL_MPSC_NOZERO_O) SAN= \
		CFLAGS="$(CFLAGS) -DEVR_BROKEN_MPSC_NO_ZERO" $(CTRL_MPSC_NOZERO_O)/tests/mpsc-stress
	$(Q)$(MAKE) --no-print-directory O=$(CTRL_FLIGHT_O) SAN= \
		CFLAGS="$(CFLAGS) -DEVR_BROKEN_FLIGHT_SWAP" $(CTRL_FLIGHT_O)/tests/flight-stress
	$(Q)$(MAKE) --no-print-directory O=$(CTRL_FLIGHT_PUSH_O) SAN= \
		CFLAGS="$(CFLAGS) -DEVR_BROKEN_FLIGHT_NO_PUSH_COUNT" $(CTRL_FLIGHT_PUSH_O)/tests/flight-stress
	$(Q)st=0; tests/controls.sh $(CTRL_NEST_O)/tests/ring-stress $(CTRL_RELAX_O)/tests/ring-stress \
			$(CTRL_GIVEBACK_O)/tests/ring-step || st=1; \
		tests/controls-mpsc.sh $(CTRL_MPSC_RELAX_O)/tests/mpsc-stress \
			$(CTRL_MPSC_NOZERO_O)/tests/mpsc-stress || st=1; \
		tests/controls-flight.sh $(CTRL_FLIGHT_O)/tests/flight-stress \
			$(CTRL_FLIGHT_PUSH_O)/tests/flight-stress || st=1; exit $$st

check-abi: $(SOLIB)
	$(Q)nm -D --defined-only $(SOLIB) | awk '$$2 ~ /^[TDB]$$/ {print $$3}' | sed 's/@.*//' | sort -u > $(O)/abi.exported
	$(Q)sed -n 's/^[[:space:]]*\(evr_[a-z0-9_]*\);/\1/p' src/libevring.map | sort -u > $(O)/abi.map
	$(Q)diff -u $(O)/abi.map $(O)/abi.exported && echo "check-abi: exports match src/libevring.map"

# ---- fuzzing (clang + libFuzzer) ------------------------------------------------------------
FUZZ_CC ?= clang
FUZZ_FLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Iinclude -Isrc
FUZZ_SRCS := $(sort $(wildcard fuzz/*.c))
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(O)/fuzz/%)
FUZZ_SECONDS ?= 60

$(O)/fuzz/%: fuzz/%.c $(LIB_SRCS) $(wildcard src/*.h include/*.h include/evring/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(LIBS)

fuzz-build: $(FUZZ_BINS)

# Each target runs FUZZ_SECONDS on a scratch corpus seeded from fuzz/corpus/<name>; a crash fails
# the target (its input lands in $(O)/fuzz/, never in the tree).
fuzz: $(FUZZ_BINS)
	$(Q)fail=0; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(O)/fuzz/corpus-$$n; \
		echo "fuzz $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			-artifact_prefix=$(O)/fuzz/$$n- $(O)/fuzz/corpus-$$n fuzz/corpus/$$n \
			> $(O)/fuzz/$$n.log 2>&1 || { fail=1; echo "FUZZ FAIL $$n"; tail -n 30 $(O)/fuzz/$$n.log; }; \
		tail -n 2 $(O)/fuzz/$$n.log; done; exit $$fail

# ---- benchmarks, demo -----------------------------------------------------------------------
bench: $(BENCH_BINS)
	$(Q)bench/run.sh $(O)

demo: $(O)/examples/demo
	$(Q)$(O)/examples/demo

# ---- install --------------------------------------------------------------------------------
install: $(SOLIB) $(ALIB) $(TOOL) $(O)/evring.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/evring $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	install -m 644 include/evring.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 include/evring/abi.h $(DESTDIR)$(INCLUDEDIR)/evring/
	install -m 755 $(SOLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libevring.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libevring.so
	install -m 644 $(ALIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(O)/evring.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 755 $(TOOL) $(DESTDIR)$(BINDIR)/
	for m in $(wildcard man/*.1); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/; done
	for m in $(wildcard man/*.3); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man3/; done
	for m in $(wildcard man/*.7); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man7/; done

# clang-format (.clang-format: kernel style, tabs, 100 columns) on the lines changed since
# FORMAT_BASE, as the kernel applies it to new code; the tree written before the file is left
# as it is (a whole-tree run rewraps hand-laid tables).
FORMAT_BASE ?= HEAD
format:
	git diff -U0 --no-color $(FORMAT_BASE) -- '*.c' '*.h' | clang-format-diff -p1 -i

clean:
	rm -rf build build-*

.PHONY: all check check-long check-controls check-abi fuzz fuzz-build bench demo install format clean FORCE
FORCE:
.SECONDARY:
