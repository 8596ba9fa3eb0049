# qalign: the commands of README.md, and their parts.
#   make demo     - setup, Release build of the CLI and libqalign only, run the main job on
#                   PP-OCRv4 det
#   make install  - the same build, installed into PREFIX (/usr/local)
#   make test     - setup_dev (test packages too), build with the tests, every test with ctest, a
#                   short run of every fuzzer, and the unit tests under ASan+UBSan
#   make fuzz     - the libFuzzer targets of fuzz/, FUZZ_SECONDS (60) each
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 10
DEMO_MODEL ?= .cache/models/ch_PP-OCRv4_det_infer.onnx
PREFIX ?= /usr/local

.PHONY: setup setup-dev build build-dev build-asan demo install test test-release test-asan test-fuzz bench mutate fuzz build-fuzz clean

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup_dev.sh

# The user's build: bin/qalign, libqalign (and the Python module when pybind11 is installed).
build: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DQALIGN_BUILD_TESTS=OFF -DQALIGN_BUILD_BENCH=OFF
	cmake --build $(BUILD) -j $(JOBS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The same build directory with the tests and benchmarks (the objects are shared).
build-dev: setup-dev
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DQALIGN_BUILD_TESTS=ON -DQALIGN_BUILD_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)

build-asan: setup-dev
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DQALIGN_SANITIZE=ON -DQALIGN_BUILD_BENCH=OFF -DQALIGN_UNIT_TESTS_ONLY=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD) $(DEMO_MODEL)

test-release: build-dev
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -L unit

# The short fuzz run of the suite: every target FUZZ_TEST_SECONDS from its seeds, with a fixed
# libFuzzer seed so that it explores what longer runs with that seed have explored (a crash fails).
test-fuzz: build-fuzz
	FUZZ_SEED=1 bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TEST_SECONDS)

test: test-release test-fuzz test-asan

bench: build-dev
	bash bench/run_all.sh $(BUILD)

# Plants each bug of tests/mutants/mutants.txt in a scratch copy and checks a test fails (slow:
# about 20 s a mutant on 2 cores; not part of `make test`).
mutate: setup-dev
	python3 tests/mutants/mutate.py --jobs $(JOBS)

# libFuzzer targets (clang 14, ASan + UBSan), each run for FUZZ_SECONDS from fuzz/corpus/.
build-fuzz: setup-dev
	@command -v clang++-14 >/dev/null || { echo "make fuzz needs clang-14 and libFuzzer: apt-get install clang-14 libclang-rt-14-dev"; exit 1; }
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DQALIGN_SANITIZE=ON -DQALIGN_BUILD_FUZZERS=ON -DQALIGN_BUILD_TESTS=OFF -DQALIGN_BUILD_BENCH=OFF
	cmake --build $(FUZZ_BUILD) --target qalign_fuzzers -j $(JOBS)

fuzz: build-fuzz
	bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-mutants
