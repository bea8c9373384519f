#!/usr/bin/env bash
# `convbridge weights` end to end on the catalogue make_hostile_files.py wrote into $1: every hostile file makes
# `weights inspect` and `weights convert` exit 2 within 10 s and 1 GiB with one "convbridge: error:" line that
# names the file and contains the entry's fragment, nothing on stdout, no output or temporary file, and never the
# marker file a hostile pickle would create if anything ran it (inspect is run on every fifth entry: it opens
# files as convert does); every valid file inspects (also as JSON) and
# converts to both formats. The HDF5 files in $2 (tests/hostile/hdf5: libhdf5 itself crashes on them) are refused
# the same way, through inspect, convert and port --into. Plus the command line's own errors. Run by ctest, also
# under the sanitizer build.
#   CONVBRIDGE=build/convbridge bash tests/cli/weights_cli_test.sh build/tests/weight_files tests/hostile/hdf5
set -u
bin=${CONVBRIDGE:?set CONVBRIDGE to the convbridge binary}
files=${1:?give the directory make_hostile_files.py wrote}
hdf5_crashes=${2:?give tests/hostile/hdf5}
python=${PYTHON:-python3}
time_limit=10
memory_limit_mb=1024
if [[ ${CONVBRIDGE_SANITIZED:-} == 1 ]] || grep -q AddressSanitizer "$bin" 2>/dev/null; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}hard_rss_limit_mb=$memory_limit_mb:max_allocation_size_mb=$memory_limit_mb"
else
  ulimit -v $((memory_limit_mb * 1024 + 512 * 1024))
fi

passed=0
failed=0
work=$(mktemp -d)
out=$work/stdout err=$work/stderr outputs=$work/outputs
mkdir -p "$outputs"
trap 'rm -rf "$work"' EXIT
marker=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["marker"])' "$files/catalogue.json")

fail() {
  failed=$((failed + 1))
  echo "FAIL: $1"
  echo "  stderr: $(head -c 600 "$err")"
  echo "  stdout: $(head -c 200 "$out")"
}

# refused NAME FRAGMENT ARGS...: exit 2, one error line with the fragment, nothing else left behind.
refused() {
  local name=$1 fragment=$2
  shift 2
  timeout "$time_limit" "$bin" "$@" >"$out" 2>"$err"
  local status=$? first
  first=$(head -n 1 "$err")
  if [[ $status -ne 2 ]]; then
    fail "$name: convbridge $* -> exit $status (want 2; 124 is the time limit)"
  elif [[ -s $out ]]; then
    fail "$name: stdout is not empty"
  elif [[ $first != "convbridge: error: "* || $(grep -c '^convbridge: error:' "$err") -ne 1 ]]; then
    fail "$name: not exactly one 'convbridge: error:' line"
  elif [[ $first != *"$fragment"* ]]; then
    fail "$name: the error lacks '$fragment'"
  elif [[ -n $(ls -A "$outputs") ]]; then
    fail "$name: left $(ls -A "$outputs" | head -3 | tr '\n' ' ')"
  else
    passed=$((passed + 1))
  fi
  rm -rf "${outputs:?}"/* "${outputs:?}"/.[!.]* 2>/dev/null
}

# accepted NAME ARGS...: exit 0, nothing on stderr but notes.
accepted() {
  local name=$1
  shift
  timeout "$time_limit" "$bin" "$@" >"$out" 2>"$err"
  local status=$?
  if [[ $status -ne 0 ]] || grep -qv '^convbridge: note:' "$err"; then
    fail "$name: convbridge $* -> exit $status (want 0)"
  else
    passed=$((passed + 1))
  fi
}

# inspect and convert open a file the same way: convert for every entry, inspect for every fifth.
count=0
while IFS=$'\t' read -r name file fragment; do
  if ((count++ % 5 == 0)); then refused "$name (inspect)" "$fragment" weights inspect "$files/$file"; fi
  refused "$name (convert)" "$fragment" weights convert "$files/$file" -o "$outputs/out.safetensors"
done < <("$python" -c '
import json, sys
for e in json.load(open(sys.argv[1]))["hostile"]:
    print(e["name"], e["file"], e["fragment"], sep="\t")' "$files/catalogue.json")

while IFS=$'\t' read -r name file numpy_ok; do
  accepted "$name (inspect)" weights inspect "$files/$file"
  accepted "$name (inspect --json)" weights inspect "$files/$file" --json
  if ! "$python" -c 'import json, sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null; then
    fail "$name: --json output is not JSON"
  fi
  accepted "$name (convert)" weights convert "$files/$file" -o "$outputs/$name.safetensors"
  accepted "$name (convert back)" weights inspect "$outputs/$name.safetensors"
  rm -rf "${outputs:?}"/*
  if [[ $numpy_ok == 1 ]]; then
    accepted "$name (convert npz)" weights convert "$files/$file" -o "$outputs/$name.npz"
  else
    refused "$name (convert npz)" "numpy has no dtype" weights convert "$files/$file" -o "$outputs/$name.npz"
  fi
  rm -rf "${outputs:?}"/*
done < <("$python" -c '
import json, sys
for e in json.load(open(sys.argv[1]))["valid"]:
    ok = all(t["dtype"] not in ("bfloat16", "float8_e4m3fn", "float8_e5m2") for t in e["tensors"])
    print(e["name"], e["file"], int(ok), sep="\t")' "$files/catalogue.json")

# libhdf5 crashes in convbridge's reader process: the CLI reports it (the file and the signal), exit 2.
crash_files=0
for file in "$hdf5_crashes"/*.h5 "$hdf5_crashes"/*.keras; do
  [[ -e $file ]] || continue
  crash_files=$((crash_files + 1))
  name="libhdf5 crash $(basename "$file")"
  refused "$name (inspect)" "$file: " weights inspect "$file"
  refused "$name (convert)" "$file: " weights convert "$file" -o "$outputs/out.safetensors"
  refused "$name (port --into)" "$file: " port "$files/valid/torch_state_dict.pt" --into "$file" -o "$outputs/out.weights.h5"
  # The same HDF5 as a .keras archive's model.weights.h5 (stored: read in place from memory, where libhdf5 1.10.8
  # happens to refuse this one at open instead of crashing; refused either way).
  "$python" -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w") as z:
    z.writestr("config.json", "{\"class_name\": \"Functional\", \"config\": {\"name\": \"m\", \"layers\": []}}")
    z.write(sys.argv[1], "model.weights.h5")' "$file" "$work/crash.keras"
  refused "$name as .keras (inspect)" "crash.keras: " weights inspect "$work/crash.keras"
  refused "$name as .keras (convert MODEL.keras)" "crash.keras: " convert "$work/crash.keras" -o "$outputs/model"
done
((crash_files > 0)) || fail "no libhdf5 crash files in $hdf5_crashes"

valid=$files/valid/torch_state_dict.pt
refused "no such file" "cannot open: No such file" weights inspect "$files/does-not-exist.pt"
refused "a directory" "not a regular file" weights inspect "$files"
refused "output extension" "must end in .safetensors, .npz or .weights.h5" weights convert "$valid" -o "$outputs/out.h5"
refused "missing -o" "--output is required" weights convert "$valid"
refused "no subcommand" "A subcommand is required" weights
refused "unknown subcommand" "A subcommand is required" weights frobnicate x
refused "output directory missing" "cannot create a temporary file" weights convert "$valid" -o "$outputs/no/such/x.safetensors"
accepted "weights --help" weights --help
grep -q 'weights convert checkpoint.pt -o model.safetensors' "$out" || fail "weights --help lacks the examples"
accepted "top-level --help lists weights" --help
grep -q 'weights' "$out" || fail "convbridge --help does not list weights"

if [[ -e $marker ]]; then
  fail "the marker file $marker exists: something executed a hostile pickle"
fi
echo "weights CLI: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
