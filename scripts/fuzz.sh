#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs each one for a bounded time, at most
# FUZZ_JOBS at a time, then reports executions, coverage and crashes per target. Idempotent.
#   scripts/fuzz.sh                      every target for 600 s
#   scripts/fuzz.sh 30                   every target for 30 s (what scripts/test.sh runs)
#   scripts/fuzz.sh 3600 fuzz_cli        one target for an hour
# Environment: FUZZ_JOBS (targets in parallel, default 2), FUZZ_NICE (default 10), FUZZ_RSS_LIMIT_MB (2048),
# FUZZ_TIMEOUT (seconds per input, 10). Each target grows its working corpus in build-fuzz/corpus/<target>
# (seeded from the checked-in fuzz/corpus/<target>, which is never written) and writes crashing inputs to
# build-fuzz/artifacts/<target>/. Exits 1 when any target found a crash, a leak, a timeout or an out-of-memory.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
all_targets=(fuzz_pytorch_layer fuzz_pipeline fuzz_input_shape fuzz_keras_layer fuzz_tf_nn_call fuzz_op_layer fuzz_model_graph
             fuzz_keras_model fuzz_torch_checkpoint fuzz_safetensors fuzz_npz fuzz_port
             fuzz_cli)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
jobs=${FUZZ_JOBS:-2}
niceness=${FUZZ_NICE:-10}
rss_limit=${FUZZ_RSS_LIMIT_MB:-2048}
input_timeout=${FUZZ_TIMEOUT:-10}

# clang with libFuzzer's runtime, and the libraries convbridge builds against (scripts/setup.sh --with-fuzzers
# installs the same, and builds the release build too).
sudo=""
[[ $(id -u) -ne 0 ]] && sudo=sudo
packages=(clang libclang-rt-14-dev ninja-build pkg-config libfmt-dev nlohmann-json3-dev libcli11-dev libzip-dev
          libopenblas-dev)
command -v cmake >/dev/null 2>&1 || packages+=(cmake)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "fuzz: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build=build-fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCONVBRIDGE_BUILD_FUZZERS=ON -DCONVBRIDGE_BUILD_TESTS=OFF -DCONVBRIDGE_BUILD_CLI=ON >/dev/null
nice -n "$niceness" cmake --build "$build" --target "${targets[@]}"

run_target() {
  local target=$1
  local corpus=$build/corpus/$target artifacts=$build/artifacts/$target log=$build/logs/$target.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  # The first corpus directory receives new inputs; the checked-in seeds are only read.
  nice -n "$niceness" "$build/fuzz/$target" -dict=fuzz/convbridge.dict -max_total_time="$seconds" \
    -rss_limit_mb="$rss_limit" -timeout="$input_timeout" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" "fuzz/corpus/$target" >"$log" 2>&1
}

echo "== fuzzing ${targets[*]}: ${seconds}s each, ${jobs} at a time =="
declare -A status
running=()
for target in "${targets[@]}"; do
  while ((${#running[@]} >= jobs)); do
    wait -n || true
    still=()
    for pid in "${running[@]}"; do kill -0 "$pid" 2>/dev/null && still+=("$pid"); done
    running=("${still[@]}")
  done
  run_target "$target" &
  running+=($!)
  status[$target]=$!
done
failed=0
declare -A exit_code
for target in "${targets[@]}"; do
  if wait "${status[$target]}"; then exit_code[$target]=0; else exit_code[$target]=$?; fi
done

# One line per target from libFuzzer's final statistics.
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
printf '%-20s %8s %12s %9s %7s %8s %9s  %s\n' target seconds executions exec/s cov features rss_mb result
for target in "${targets[@]}"; do
  log=$build/logs/$target.log
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
  result=ok
  if [[ ${exit_code[$target]} -ne 0 ]] || ! grep -q 'DONE' "$log"; then
    result="FAILED (exit ${exit_code[$target]}): $(grep -m1 -E '^==[0-9]+== ?ERROR|SUMMARY|invariant violated' "$log" || echo "see $log")"
    failed=1
  fi
  printf '%-20s %8s %12s %9s %7s %8s %9s  %s\n' "$target" "$seconds" "$(stat number_of_executed_units "$log")" \
    "$(stat average_exec_per_sec "$log")" "${cov:-?}" "${ft:-?}" "$(stat peak_rss_mb "$log")" "$result"
  if [[ $result != ok ]]; then
    for artifact in $(grep -oE 'Test unit written to [^ ]+' "$log" | sed 's/Test unit written to //'); do
      echo "    reproduce: $build/fuzz/$target $artifact"
    done
  fi
done
echo "logs: $build/logs/, working corpora: $build/corpus/, crashing inputs: $build/artifacts/"
exit "$failed"
