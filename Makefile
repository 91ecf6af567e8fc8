# sff - Serverless-For-Frontend gateway.
#
#   make          build build/sff and build/functions/*.so
#   make run      install what is missing, build, start sff (see README.md)
#   make test     install test dependencies, build, run every test, also under ASan+UBSan
#   make bench    the benchmarks (tests/bench)
#   make fuzz     build and run the fuzzers for a short while (FUZZ_SECONDS each)
#   make asan     build the sanitizer build into build-asan/
#   make format   check formatting with clang-format (make format FIX=1 rewrites)

.PHONY: all run test unit integration bench fuzz asan format clean install deps deps-test

CC ?= gcc
ifeq ($(CC),cc)
CC := gcc
endif
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT := -O1
else
BUILD ?= build
SANFLAGS :=
OPT := -O2
endif

PREFIX ?= /usr/local
WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
CPPFLAGS := -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -I. -Igateway -Ibaas -Ifunctions -I/usr/include/postgresql
CFLAGS := -std=c11 $(OPT) -g -fno-omit-frame-pointer -fstack-clash-protection $(WARN) $(SANFLAGS) -MMD -MP
LDFLAGS := $(SANFLAGS)
LIBS := -lh2o-evloop -lpq -lhiredis -ljwt -ljansson -lssl -lcrypto -lz -lsodium -lpthread -ldl -lm

GW_SRC := $(sort $(wildcard gateway/*.c gateway/*.S baas/*.c))
GW_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(GW_SRC))
LIB_OBJ := $(filter-out $(BUILD)/obj/gateway/main.c.o,$(GW_OBJ))

MODULES := $(notdir $(patsubst %/,%,$(dir $(wildcard functions/*/*.c))))
MODULES := $(sort $(MODULES))
MODULE_SO := $(patsubst %,$(BUILD)/functions/%.so,$(MODULES))

TEST_MODULES := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/functions/*/*.c)))))
TEST_MODULE_SO := $(patsubst %,$(BUILD)/tests/functions/%.so,$(TEST_MODULES))

UNIT_SRC := $(sort $(shell find tests/unit -name '*.c' 2>/dev/null))
UNIT_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TLIB_SRC := $(sort $(wildcard tests/lib/*.c))
TLIB_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(TLIB_SRC))
INT_SRC := $(sort $(wildcard tests/integration/*.c))
INT_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(INT_SRC))
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TOOL_SRC))
BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
BENCH_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(BENCH_SRC))

all: $(BUILD)/sff $(MODULE_SO)

# Objects are kept, not deleted as intermediates of the test programs.
.SECONDARY: $(GW_OBJ) $(TLIB_OBJ)

$(BUILD)/sff: $(GW_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/obj/%.c.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SANFLAGS) -c -o $@ $<

.SECONDEXPANSION:

# A module links against nothing of the gateway: it only sees sff.h and the API table.
MODULE_CFLAGS := -std=c11 $(OPT) -g $(WARN) $(SANFLAGS) -fPIC -fvisibility=hidden -Ifunctions -D_GNU_SOURCE
$(BUILD)/functions/%.so: $$(wildcard functions/%/*.c) functions/sff.h
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -shared -o $@ $(filter %.c,$^)

$(BUILD)/tests/functions/%.so: $$(wildcard tests/functions/%/*.c) functions/sff.h
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_CFLAGS) -shared -o $@ $(filter %.c,$^)

# Unit tests may start real backends with the helpers of tests/lib.
$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB_OBJ) $(TLIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(TLIB_OBJ) $(LIBS) -lnghttp2

$(BUILD)/tests/integration/%: tests/integration/%.c $(TLIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(TLIB_OBJ) -lnghttp2 -lssl -lcrypto -ljansson -lpthread

$(BUILD)/tests/tools/%: tests/tools/%.c $(TLIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(TLIB_OBJ) -lnghttp2 -lssl -lcrypto -ljansson -lpthread

$(BUILD)/tests/bench/%: tests/bench/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LIBS)

$(BUILD)/obj/tests/lib/%.c.o: tests/lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -c -o $@ $<

test-build: all $(TEST_MODULE_SO) $(UNIT_BIN) $(INT_BIN) $(TOOL_BIN)

deps:
	@sh scripts/deps.sh build

deps-test:
	@sh scripts/deps.sh test

run:
	@sh scripts/deps.sh run
	@$(MAKE) --no-print-directory all
	@sh scripts/run.sh

# Everything: unit and integration tests on the normal build, then again on the ASan+UBSan build,
# then the fuzzers for a short while. Ends with "N passed, N failed".
test: deps-test
	@$(MAKE) --no-print-directory test-build
	@$(MAKE) --no-print-directory SAN=1 test-build
	@sh tests/run.sh

unit: test-build
	@SFF_TEST_BUILDS=$(BUILD) sh tests/run.sh unit

integration: test-build
	@SFF_TEST_BUILDS=$(BUILD) sh tests/run.sh integration

asan:
	@$(MAKE) --no-print-directory SAN=1 test-build

bench: deps-test
	@$(MAKE) --no-print-directory all $(TEST_MODULE_SO) $(BENCH_BIN) $(TOOL_BIN) $(TLIB_OBJ)
	@sh tests/bench/run.sh

FUZZ_SECONDS ?= 20
FUZZ_SRC := $(sort $(wildcard tests/fuzz/*.c))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(filter-out gateway/main.c,$(filter %.c,$(GW_SRC)))
build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) $(wildcard gateway/*.h)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $< $(FUZZ_LIB_SRC) $(filter %.S,$(GW_SRC)) $(LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/run.sh fuzz

format:
ifeq ($(FIX),1)
	clang-format -i $$(git ls-files '*.c' '*.h')
else
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
endif

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/sff/functions $(DESTDIR)$(PREFIX)/include/sff
	install -m 755 $(BUILD)/sff $(DESTDIR)$(PREFIX)/bin/sff
	install -m 644 $(MODULE_SO) $(DESTDIR)$(PREFIX)/lib/sff/functions/
	install -m 644 functions/sff.h $(DESTDIR)$(PREFIX)/include/sff/sff.h

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)
