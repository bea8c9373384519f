#!/usr/bin/env bash
# Installs everything convbridge needs on a fresh Debian 12 machine and builds it. Idempotent.
#   scripts/setup.sh                    system packages + release build (no PyTorch/TensorFlow)
#   scripts/setup.sh --with-frameworks  also the .venv with torch, tensorflow-cpu, pytest and hypothesis
#   scripts/setup.sh --with-fuzzers     also clang and libFuzzer's runtime (for scripts/fuzz.sh)
#   scripts/setup.sh --with-benchmarks  also Google Benchmark and BLIS (for bench/, never run by CI)
set -euo pipefail
cd "$(dirname "$0")/.."

with_frameworks=0
with_fuzzers=0
with_benchmarks=0
for argument in "$@"; do
  case $argument in
    --with-frameworks) with_frameworks=1 ;;
    --with-fuzzers) with_fuzzers=1 ;;
    --with-benchmarks) with_benchmarks=1 ;;
    *) echo "setup: unknown option $argument" >&2; exit 2 ;;
  esac
done

sudo=""
[[ $(id -u) -ne 0 ]] && sudo=sudo

# System packages: compiler, build tools and the libraries that are not our core (OpenBLAS: the reference engine's
# dgemm; libzip: torch.save checkpoints and .npz files; libhdf5: Keras .weights.h5 and .keras weights).
packages=(g++ ninja-build pkg-config libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev
          libopenblas-dev libzip-dev libhdf5-dev python3)
command -v cmake >/dev/null 2>&1 || packages+=(cmake)
if ((with_fuzzers)); then
  packages+=(clang libclang-rt-14-dev)  # libFuzzer, ASan and UBSan runtimes for clang 14
fi
if ((with_benchmarks)); then
  packages+=(libbenchmark-dev libblis-dev)  # Google Benchmark; BLIS for -DCONVBRIDGE_BLAS=BLIS
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ((with_frameworks)); then
  # torch is pinned to the CPU build (a plain 'torch' requirement would pull the multi-GB CUDA build).
  stamp=.venv/.requirements-installed
  if [[ ! -f $stamp ]] || ! cmp -s requirements-test.txt "$stamp"; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements-test.txt
    cp requirements-test.txt "$stamp"
  fi
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVBRIDGE_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build build
