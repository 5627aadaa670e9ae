# rsocket-c top-level entry points. Every target installs the Debian packages it needs
# (scripts/deps TARGET says which) and configures CMake only with what it needs.
#   make           release build into build/ (programs in build/bin/, libraries in build/lib/)
#   make demo      the main job: the collaborative board running, with a scene (README.md; needs
#                  only the build packages)
#   make cluster   the board past one machine, on this one: Redis, 2 collab-services, 2 gateways,
#                  HAProxy (scripts/cluster, docs/SCALING.md; needs redis-server and haproxy)
#   make tour      a guided tour of the rsocket CLI
#   make test      every test (unit, integration, interop), then unit and integration tests again
#                  under ASan+UBSan, then a short run of every fuzzer
#   make install   PREFIX=/usr/local (default) and DESTDIR: headers, librsocket.so/.a, librsocket.pc,
#                  the CMake package, the programs and their man pages
#   make bench     benchmarks side by side with rsocket-js and node ws (docs/BENCHMARKS.md)
#   make fuzz      long fuzz run (FUZZ_SECONDS per target, default 300)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 10
PREFIX ?= /usr/local
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

# $(call configure,DIR,FLAGS): quiet when it works; on failure, CMake's error (which names the
# missing package and the Debian package to install) and where the whole log is.
define configure
	@mkdir -p $(1)
	@cmake -S . -B $(1) $(2) >$(1)/configure.log 2>&1 || { \
	  sed -n '/CMake Error/,$$p' $(1)/configure.log >&2; \
	  echo "make: configuring $(1) failed (full log: $(1)/configure.log)" >&2; exit 1; }
endef

.PHONY: all build configure test test-release test-asan test-fuzz build-fuzz demo cluster tour bench fuzz install \
	format format-check npm-deps clean

all: build

build:
	@scripts/deps build
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release -DRS_TESTS=OFF $(CMAKE_FLAGS))
	@cmake --build $(BUILD) -j $(JOBS)

install:
	@scripts/deps build
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS))
	@cmake --build $(BUILD) -j $(JOBS)
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

npm-deps:
	@scripts/npm-deps

test:
	@scripts/deps test
	@$(MAKE) npm-deps
	@$(MAKE) format-check
	@$(MAKE) test-release
	@$(MAKE) test-asan
	@$(MAKE) test-fuzz
	@echo "make test: all suites passed"

test-release:
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release -DRS_TESTS=ON $(CMAKE_FLAGS))
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	$(call configure,build-asan,-DCMAKE_BUILD_TYPE=Debug -DRS_SANITIZE=ON -DRS_TESTS=ON)
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) -L 'unit|integration'

build-fuzz:
	$(call configure,build-fuzz,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRS_FUZZ=ON -DRS_TESTS=OFF -DCMAKE_C_COMPILER=clang)
	@cmake --build build-fuzz -j $(JOBS)

test-fuzz: build-fuzz
	@scripts/run-fuzz build-fuzz $(FUZZ_SMOKE_SECONDS)

fuzz:
	@scripts/deps fuzz
	@$(MAKE) build-fuzz
	@scripts/run-fuzz build-fuzz $(FUZZ_SECONDS)

demo:
	@scripts/deps demo
	@$(MAKE) build
	@DEMO_BIN=$(BUILD)/bin scripts/demo

cluster:
	@scripts/deps cluster
	@$(MAKE) build
	@CLUSTER_BIN=$(BUILD)/bin scripts/cluster

tour:
	@scripts/deps build
	@$(MAKE) build
	@scripts/tour

bench:
	@scripts/deps bench
	@$(MAKE) build
	@scripts/bench

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run --Werror

clean:
	rm -rf build build-asan build-fuzz
