# ferry: plain Makefile with pkg-config.  `make V=1` shows full commands.
#   make            build everything into build/
#   make demo       install deps, build, migrate the simulated guest on loopback
#   make test       the whole test suite (ends with "N passed, N failed")
#   make asan       the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make install    PREFIX=/usr/local DESTDIR=

CC ?= cc
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SANITIZE ?=

ifeq ($(SANITIZE),)
  BUILD ?= build
  SANFLAGS :=
else ifeq ($(SANITIZE),address)
  BUILD ?= build-asan
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
  $(error SANITIZE must be empty or 'address', not '$(SANITIZE)')
endif

PKGS := libevent libevent_openssl openssl liblz4 libxxhash json-c libvirt libxml-2.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-format-truncation -MMD -MP \
	-Isrc/common -Isrc/sender -Isrc/receiver -Iproto $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
LDLIBS += $(PKG_LIBS) -lm

ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n'
endif

COMMON_SRC := $(wildcard src/common/*.c)
SENDER_SRC := $(filter-out src/sender/main.c,$(wildcard src/sender/*.c))
RECV_SRC := $(filter-out src/receiver/main.c,$(wildcard src/receiver/*.c))
GUEST_SRC := $(wildcard tools/ferry-guest/*.c)
TEST_SRC := $(wildcard tests/test_*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIBCOMMON := $(BUILD)/libferry-common.a
LIBSENDER := $(BUILD)/libferry-sender.a
LIBRECV := $(BUILD)/libferry-recv.a

BINS := $(BUILD)/ferry-send $(BUILD)/ferry-recv $(BUILD)/ferry-guest $(BUILD)/ferry-faultproxy \
	$(BUILD)/ferry-inspect
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

.PHONY: all demo test asan clean install deps check
all: $(BINS) $(TESTS)

deps:
	@tools/install-deps

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^
$(LIBSENDER): $(call obj,$(SENDER_SRC))
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^
$(LIBRECV): $(call obj,$(RECV_SRC))
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/ferry-send: $(call obj,src/sender/main.c) $(LIBSENDER) $(LIBCOMMON)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-recv: $(call obj,src/receiver/main.c) $(LIBRECV) $(LIBCOMMON)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-guest: $(call obj,$(GUEST_SRC)) $(LIBCOMMON)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-faultproxy: $(call obj,$(wildcard tools/ferry-faultproxy/*.c)) $(LIBCOMMON)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/ferry-inspect: $(call obj,$(wildcard tools/ferry-inspect/*.c)) $(LIBCOMMON)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIBSENDER) $(LIBRECV) $(LIBCOMMON)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

demo:
	@tools/install-deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tools/demo

test: all
	@BUILD=$(BUILD) tests/run-all

asan:
	@$(MAKE) --no-print-directory SANITIZE=address test

check:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr -Isrc/common -Iproto src/

# Where `make install` puts the rest (under DESTDIR).  The units' paths
# (/usr/bin, /etc/ferry, /usr/share/doc/ferry) are rewritten to these.
SYSCONFDIR ?= /etc
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/ferry
UNITDIR ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(DATADIR)/bash-completion/completions

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BUILD)/ferry-send $(BUILD)/ferry-recv $(BUILD)/ferry-guest \
		$(BUILD)/ferry-inspect $(DESTDIR)$(BINDIR)/
	install -m 0755 tools/ferry-certs $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(COMPLETIONDIR)
	for u in tools/systemd/*.service; do \
		sed -e 's|/usr/bin/|$(BINDIR)/|g' -e 's|/etc/ferry/|$(SYSCONFDIR)/ferry/|g' \
			-e 's|/usr/share/doc/ferry|$(DOCDIR)|g' "$$u" >$(DESTDIR)$(UNITDIR)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 0644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 tools/ferry-recv.conf.sample tools/ferry-send.conf.sample $(DESTDIR)$(DOCDIR)/
	install -m 0644 tools/completion/ferry.bash $(DESTDIR)$(COMPLETIONDIR)/ferry-send
	for c in ferry-recv ferry-guest ferry-inspect; do \
		ln -sf ferry-send $(DESTDIR)$(COMPLETIONDIR)/$$c || exit 1; done

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- fuzzing (fuzz/README.md) ----------------------------------------------
#   make fuzz-build     libFuzzer harnesses (clang) into build-fuzz/
#   make fuzz           run each for FUZZ_SECONDS (default 60) on its corpus;
#                       fails if any crashes.  FUZZ_TARGETS=fuzz_rsess for one.
# `make all` also builds plain replay drivers, $(BUILD)/fuzz-replay/fuzz_*,
# which tests/e2e_fuzz_replay.sh runs over every corpus.
FUZZ_HARNESSES := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_HARNESSES)
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_OUT := build-fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -MMD -MP \
	-Isrc/common -Isrc/sender -Isrc/receiver -Iproto $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_LIB_SRC := $(addprefix src/common/,err.c rd.c wr.c frame.c msg.c msg_domain.c codec_lz4.c units.c \
	pagehash.c bbuf.c resume.c tls.c tls_explain.c domxml.c domcheck.c dumpfmt.c framesplit.c config.c \
	qmp.c qstream.c msg_qemu.c dirtylog.c) \
	src/receiver/rsess.c src/receiver/qrebuild.c src/sender/plan.c
FUZZ_REPLAY := $(patsubst %,$(BUILD)/fuzz-replay/%,$(FUZZ_HARNESSES))

.PHONY: fuzz fuzz-build fuzz-clean
.SECONDARY: $(patsubst %,$(BUILD)/fuzz/%.o,$(FUZZ_HARNESSES) replay_main) \
	$(patsubst %,$(FUZZ_OUT)/obj/fuzz/%.o,$(FUZZ_HARNESSES))
all: $(FUZZ_REPLAY)

$(BUILD)/fuzz-replay/%: $(BUILD)/fuzz/%.o $(BUILD)/fuzz/replay_main.o $(call obj,src/receiver/rsess.c) \
		$(call obj,src/receiver/qrebuild.c) \
		$(call obj,src/sender/plan.c) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(say) FUZZCC $<
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_OUT)/libferry-fuzz.a: $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(FUZZ_LIB_SRC))
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^
$(FUZZ_OUT)/fuzz_%: $(FUZZ_OUT)/obj/fuzz/fuzz_%.o $(FUZZ_OUT)/libferry-fuzz.a
	$(say) LD $@
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm

fuzz-build: $(patsubst %,$(FUZZ_OUT)/%,$(FUZZ_HARNESSES))
fuzz: fuzz-build
	@fuzz/run-fuzz.sh -t $(FUZZ_SECONDS) -b $(FUZZ_OUT) -w $(FUZZ_OUT) $(FUZZ_TARGETS)
fuzz-clean:
	rm -rf $(FUZZ_OUT)

-include $(shell find $(FUZZ_OUT) -name '*.d' 2>/dev/null)

# ---- benchmark (tools/bench/RESULTS.md, issue 7) ----------------------------
#   make bench          the full bench (several minutes): table, PASS/FAIL per
#                       target, tools/bench/RESULTS.md.  Exits 0 even when a
#                       target fails, unless BENCH_STRICT=1.
#   make bench-smoke    the same harness on tiny sizes, one run (< 20 s)
# BENCH_RUNS, BENCH_SCALE, BENCH_ONLY (e.g. W1,W3), BENCH_OUT override.
.PHONY: bench bench-smoke
all: $(BUILD)/bench-components
$(BUILD)/bench-components: $(call obj,tools/bench/components.c) $(LIBCOMMON)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
bench: all
	@python3 tools/bench/bench.py --build $(BUILD)
bench-smoke: all
	@BENCH_RUNS=$${BENCH_RUNS:-1} BENCH_SCALE=$${BENCH_SCALE:-1/64} \
		BENCH_OUT=$${BENCH_OUT:-$(BUILD)/bench-smoke.md} python3 tools/bench/bench.py --build $(BUILD)

# ---- the QEMU test guest (tests/qemu-guest/, issue 6) -------------------------
# A freestanding 32-bit multiboot kernel that QEMU boots with -kernel; the
# e2e_qemu_* tests use it.  Built with the system compiler and ld, never
# sanitized.
GUEST_KERNEL := $(BUILD)/qemu-guest/kernel.elf
GUEST_KCFLAGS := -m32 -std=c11 -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-fno-asynchronous-unwind-tables -nostdlib -O2 -Wall -Wextra -Werror
all: $(GUEST_KERNEL)
$(BUILD)/qemu-guest/%.o: tests/qemu-guest/%.c
	@mkdir -p $(@D)
	$(say) CC32 $<
	$(Q)$(CC) $(GUEST_KCFLAGS) -c -o $@ $<
$(BUILD)/qemu-guest/%.o: tests/qemu-guest/%.S
	@mkdir -p $(@D)
	$(say) AS32 $<
	$(Q)$(CC) -m32 -c -o $@ $<
$(BUILD)/qemu-guest/kernel.o: tests/qemu-guest/pattern.h
$(GUEST_KERNEL): $(BUILD)/qemu-guest/entry.o $(BUILD)/qemu-guest/kernel.o tests/qemu-guest/kernel.ld
	$(say) LD $@
	$(Q)ld -m elf_i386 -z noexecstack --no-warn-rwx-segments -nostdlib \
		-T tests/qemu-guest/kernel.ld -o $@ $(filter %.o,$^)
