#!/usr/bin/env bash
# The hostile-input catalogue through the command line: for every entry of catalogue.json (format in catalogue.py),
# `convbridge translate <layer> [--input-shape <shape>] [--filters-shape <shape>]` must exit 2 within 10 s and
# 1 GiB, print nothing on stdout, and print one "convbridge: error:" line that contains the entry's fragment (a
# syntax error adds an excerpt and a caret line). Run by ctest with CONVBRIDGE pointing at the binary, also under
# the sanitizer build.
#   CONVBRIDGE=build/convbridge bash tests/hostile/cli_catalogue_test.sh [catalogue.json]
set -u
bin=${CONVBRIDGE:?set CONVBRIDGE to the convbridge binary}
here=$(cd "$(dirname "$0")" && pwd)
catalogue=${1:-}  # default: every catalogue file (catalogue.py)
python=${PYTHON:-python3}
time_limit=10
memory_limit_mb=1024

# Bounded memory: an address-space limit for a normal build; sanitizer builds reserve terabytes of shadow address
# space, so there the sanitizer's own RSS watchdog enforces the limit.
if [[ ${CONVBRIDGE_SANITIZED:-} == 1 ]] || grep -q AddressSanitizer "$bin" 2>/dev/null; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}hard_rss_limit_mb=$memory_limit_mb:max_allocation_size_mb=$memory_limit_mb"
else
  ulimit -v $((memory_limit_mb * 1024 + 512 * 1024))
fi

passed=0
failed=0
skipped=0
out=$(mktemp) err=$(mktemp) records=$(mktemp)
trap 'rm -f "$out" "$err" "$records"' EXIT

if ! "$python" "$here/catalogue.py" argv ${catalogue:+"$catalogue"} >"$records"; then
  echo "FAIL: cannot read the catalogue ${catalogue:-files}"
  exit 1
fi

# check NAME FRAGMENT STATUS SECONDS: the result of one run against the contract.
check() {
  local name=$1 fragment=$2 status=$3 seconds=$4 problem=""
  local first_line
  first_line=$(head -n 1 "$err")
  if [[ $status -ne 2 ]]; then
    problem="exit status $status (want 2; 124 is the $time_limit s time limit)"
  elif [[ -s $out ]]; then
    problem="stdout is not empty"
  elif [[ $first_line != "convbridge: error: "* ]]; then
    problem="stderr does not start with 'convbridge: error: '"
  elif [[ $(grep -c '^convbridge: error:' "$err") -ne 1 ]]; then
    problem="more than one 'convbridge: error:' line"
  elif [[ $first_line != *"$fragment"* ]]; then
    problem="the error line lacks the fragment"
  elif [[ $(wc -l <"$err") -gt 3 ]]; then
    problem="the message has more than 3 lines"
  fi
  if [[ -z $problem ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name: $problem (${seconds}s)"
    echo "  want: $fragment"
    echo "  stderr: $(head -c 600 "$err")"
    echo "  stdout: $(head -c 200 "$out")"
  fi
}

while IFS= read -r -d '' name && IFS= read -r -d '' fragment && IFS= read -r -d '' skip &&
  IFS= read -r -d '' count; do
  arguments=()
  for ((i = 0; i < count; i++)); do
    IFS= read -r -d '' argument
    arguments+=("$argument")
  done
  if [[ -n $skip ]]; then
    skipped=$((skipped + 1))
    continue
  fi
  start=$SECONDS
  timeout "$time_limit" "$bin" "${arguments[@]}" >"$out" 2>"$err"
  status=$?
  check "$name" "$fragment" "$status" $((SECONDS - start))
done <"$records"

# Beyond the catalogue: 100000 stray command-line arguments are a usage error (exit 2, nothing on stdout).
stray=()
for ((i = 0; i < 100000; i++)); do stray+=(x); done
timeout 20 "$bin" translate "nn.Conv2d(3, 16, 3)" "${stray[@]}" >"$out" 2>"$err"
status=$?
if [[ $status -eq 2 && ! -s $out && -s $err ]]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAIL: 100000 stray arguments: exit status $status (want 2), stdout $(wc -c <"$out") bytes"
fi

# A flag value out of range made CLI11 throw std::out_of_range past the CLI (abort); found by fuzz/fuzz_cli. A flag
# takes no value at all now.
timeout "$time_limit" "$bin" translate "nn.Conv2d(3, 16, 3)" --no-verify=99999999999999999999 >"$out" 2>"$err"
check "flag-value-out-of-range" "--no-verify takes no value" $? 0

echo "hostile catalogue (cli): $passed passed, $failed failed, $skipped skipped (not passable as arguments)"
[[ $failed -eq 0 ]]
