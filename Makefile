# rsocket-c top-level entry points. Every target installs what it needs (scripts/deps).
#   make         release build into build/ (executables in build/bin/)
#   make test    every test, then unit and integration tests again under ASan+UBSan, then a short
#                run of every fuzzer
#   make demo    the main job: see README.md
#   make bench   benchmarks (release build)
#   make fuzz    long fuzz run (FUZZ_SECONDS per target, default 300)
# No "make[N]: Entering directory" lines from the makes cmake runs under us (they would be half
# of what `make demo` prints).
MAKEFLAGS += --no-print-directory
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 10
CMAKE_FLAGS ?=

.PHONY: all build deps test test-release test-asan test-fuzz demo bench fuzz format format-check npm-deps clean

all: build

deps:
	@scripts/deps build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

npm-deps:
	@scripts/npm-deps

test:
	@scripts/deps all
	@$(MAKE) --no-print-directory npm-deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-fuzz
	@echo "make test: all suites passed"

test-release: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRS_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) -L 'unit|integration'

.PHONY: build-fuzz
build-fuzz:
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRS_FUZZ=ON -DRS_TESTS=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

test-fuzz: build-fuzz
	@scripts/run-fuzz build-fuzz $(FUZZ_SMOKE_SECONDS)

fuzz: deps build-fuzz
	@scripts/run-fuzz build-fuzz $(FUZZ_SECONDS)

demo: build
	@scripts/demo

bench: build
	@scripts/bench

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run --Werror

clean:
	rm -rf build build-asan build-fuzz
