# UnMoGrowP - the two commands a newcomer needs are `make run` and `make test`.
# meson + ninja do the building; this file wraps them and the scripts.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
DATA       ?= ./data
LISTEN     ?= 127.0.0.1:8080
FUZZ_SECONDS ?= 300

.PHONY: all build deps web run test unit integration asan fuzz fuzz-build bench fmt fmt-check clean

all: build

deps:
	@scripts/deps.sh build

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The web dashboard (web/, Svelte + Vite) built into web/dist, which the daemon serves at /.
web:
	@scripts/deps.sh web
	scripts/build-web.sh

# A dashboard that cannot be built (no Node.js 20.19+) leaves the daemon serving the API only.
run: build
	-@$(MAKE) --no-print-directory web || echo "make run: the dashboard was not built; the daemon serves the API only" >&2
	DATA=$(DATA) LISTEN=$(LISTEN) scripts/run-demo.sh

test:
	@scripts/deps.sh test
	@scripts/test.sh

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

asan: $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

$(BUILD_FUZZ)/build.ninja:
	CC=clang CXX=clang++ meson setup $(BUILD_FUZZ) --buildtype=debug -Dfuzz=true \
	  -Db_sanitize=address,undefined -Db_lundef=false

fuzz-build: $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ)

fuzz:
	@scripts/deps.sh test
	$(MAKE) fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

bench: build
	@scripts/deps.sh bench
	bench/ingest.sh all

fmt:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'src/*.cpp' 'tests/*.c' 'bench/*.c')

fmt-check:
	clang-format --dry-run --Werror $$(git ls-files 'src/*.c' 'src/*.h' 'src/*.cpp' 'tests/*.c' 'bench/*.c')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) web/dist
