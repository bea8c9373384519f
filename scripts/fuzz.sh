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
             fuzz_keras_model fuzz_torch_checkpoint fuzz_safetensors fuzz_npz fuzz_keras_weights fuzz_port
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
packages=(clang libclang-rt-14-dev ninja-build pkg-config libfmt-dev nlohmann-json3-dev libcli11-dev libzip-dev libhdf5-dev
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

# Targets whose inputs reach libhdf5 (fuzz_port's .keras inputs too): they get the handling explained below.
uses_libhdf5() { [[ $1 == fuzz_keras_weights || $1 == fuzz_port ]]; }

run_target() {
  local target=$1
  local corpus=$build/corpus/$target artifacts=$build/artifacts/$target log=$build/logs/$target.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  local extra=()
  if uses_libhdf5 "$target"; then
    # These targets run libhdf5 in their own process (set_hdf5_isolation(in_process)), so that coverage feedback
    # sees the walk; the product runs it in a reader process (src/io/child_process.cpp), which is why the crashes
    # below are errors there (tests/hostile/hdf5/ keeps some).
    # libhdf5 1.10.8 (Debian's, not instrumented) is not safe on corrupt files: within seconds the fuzzer finds
    # its own crashes (a free of an uninitialized pointer after a bad link message version in
    # H5G__compact_get_name_by_idx, a memcpy to the NULL of a failed malloc in H5F__accum_read, 2 GiB allocations
    # for a 30 kB file), small leaks on its error paths (LeakSanitizer: 32 bytes calloc'ed inside
    # libhdf5_serial.so, nothing of ours on the stack) and mallocs of terabytes that glibc would refuse. h5py's
    # libhdf5 1.14.6 refuses the same inputs cleanly. So this target runs in fork mode (its exit status then
    # counts crashes), keeps going after a crash, lets huge mallocs return NULL as glibc's do, detects no leaks,
    # and fails only on inputs whose first frame outside the sanitizer runtime and libc is ours
    # (triage_libhdf5 below); libhdf5's are listed in the log.
    extra+=(-detect_leaks=0 -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  fi
  # The first corpus directory receives new inputs; the checked-in seeds are only read.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}$(target_asan_options "$target")" \
  nice -n "$niceness" "$build/fuzz/$target" -dict=fuzz/convbridge.dict -max_total_time="$seconds" \
    -rss_limit_mb="$rss_limit" -timeout="$input_timeout" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "${extra[@]}" "$corpus" "fuzz/corpus/$target" >"$log" 2>&1 || uses_libhdf5 "$target" || return
  if uses_libhdf5 "$target"; then triage_libhdf5 "$target" "$artifacts" "$log"; fi
}

target_asan_options() {
  uses_libhdf5 "$1" && echo "allocator_may_return_null=1:detect_leaks=0"
  return 0
}

# Re-runs every crashing input of a fork-mode run; fails when one crashes in convbridge's code (or violates an
# invariant) rather than inside libhdf5. Frames of the sanitizer runtime are skipped, ASan's interceptors of the C
# string and memory functions too (they sit in the fuzz binary: `#0 in strdup (fuzz_keras_weights+0x...)` above
# H5MM_xstrdup is libhdf5's overflow, found in CI).
triage_libhdf5() {
  local target=$1 artifacts=$2 log=$3 ours=0 theirs=0 artifact report first
  for artifact in "$artifacts"/crash-* "$artifacts"/oom-* "$artifacts"/timeout-*; do
    [[ -s $artifact ]] || continue
    report=$(ASAN_OPTIONS=$(target_asan_options "$target") timeout 120 "$build/fuzz/$target" \
             -rss_limit_mb="$rss_limit" -timeout="$input_timeout" "$artifact" 2>&1) && continue  # no longer fails
    first=$(grep -E '^ +#[0-9]+ ' <<<"$report" | grep -vE 'libclang_rt|__asan|__interceptor|__sanitizer|libc\.so|/sysdeps/|in (malloc|calloc|realloc|free|operator new|operator delete|abort|raise|str[a-z]*|mem[a-z]*|wcs[a-z]*)( |$)|fuzzer::| in main |__libc_start|in _start ' | head -1 || true)
    if [[ $first == *libhdf5* ]]; then
      theirs=$((theirs + 1))
      echo "triage: inside libhdf5: $artifact: $(grep -m1 -E 'ERROR|out-of-memory' <<<"$report" || true)" >>"$log"
    else
      ours=$((ours + 1))
      echo "triage: IN CONVBRIDGE: $artifact: ${first:-no stack} $(grep -m1 -E 'ERROR|invariant|runtime error' <<<"$report" || true)" >>"$log"
    fi
  done
  echo "triage: $theirs failing input(s) inside libhdf5 (not counted), $ours in convbridge" >>"$log"
  local last
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
  echo "${last/:/ DONE} (fork mode, triaged)" >>"$log"  # the summary's DONE line
  ((ours == 0))
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
