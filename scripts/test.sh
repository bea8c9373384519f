#!/usr/bin/env bash
# Every test: sets up (system packages, .venv with real PyTorch and TensorFlow), then runs
#   1. the C++ unit tests and CLI tests on the release build (warnings are errors),
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the Python package: built once as a wheel, installed into .venv (and, by a test, into a fresh venv),
#   4. the Python suites: emitted code, to_keras and the randomized differential suite against real PyTorch and
#      TensorFlow, plus the trap, rejection and package tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-frameworks

echo "== C++ unit and CLI tests (release) =="
ctest --test-dir build --output-on-failure -j2

echo "== C++ unit and CLI tests (ASan + UBSan) =="
cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCONVBRIDGE_SANITIZE=ON \
  -DCONVBRIDGE_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build build-sanitize
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-sanitize --output-on-failure -j2

# ---- Fuzzing, short and bounded -----------------------------------------------------------------------------------
# Every libFuzzer target (layer text, whole pipeline, --input-shape, command line; see fuzz/README.md) for 30 s, two
# at a time, built with clang + ASan + UBSan in build-fuzz (fuzz.sh installs clang and libclang-rt-14-dev if
# missing). Fails on any crash, leak, timeout (10 s per input) or out-of-memory (2 GiB). Longer runs:
# scripts/fuzz.sh 600.
echo "== Fuzz targets (30 s each) =="
scripts/fuzz.sh 30

echo "== Python package =="
rm -rf build/dist
.venv/bin/python -m pip wheel -q --no-deps -w build/dist .
wheel=$(ls build/dist/convbridge-*.whl)
.venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheel"

echo "== Python suites against real PyTorch and TensorFlow =="
CONVBRIDGE_BIN="$PWD/build/convbridge" CONVBRIDGE_WHEEL="$PWD/$wheel" \
  .venv/bin/python -m pytest tests/python -q -p no:cacheprovider
