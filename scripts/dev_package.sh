#!/usr/bin/env bash
# Developer loop for the Python package without building a wheel: builds the extension into build-python/ and
# stages build-python/pkg/convbridge (the package sources + _impl), so that
#   PYTHONPATH=build-python/pkg .venv/bin/python -m pytest tests/python/test_ops_pooling.py
# tests this checkout. The wheel (scripts/test.sh) stays the reference build.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=/work/main/.venv/bin/python
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"  # absolute, not resolved (the venv)
"$python" -c "import nanobind" 2>/dev/null || "$python" -m pip install -q "nanobind>=2.4"
if [ ! -f build-python/CMakeCache.txt ]; then
  rm -rf build-python
  cmake -S . -B build-python -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONVBRIDGE_BUILD_PYTHON=ON \
    -DCONVBRIDGE_BUILD_TESTS=OFF -DCONVBRIDGE_WARNINGS_AS_ERRORS=ON -DPython_EXECUTABLE="$python" >/dev/null
fi
cmake --build build-python --target _impl convbridge_cli
rm -rf build-python/pkg && mkdir -p build-python/pkg
cp -r python/convbridge build-python/pkg/
cp build-python/_impl*.so build-python/pkg/convbridge/
echo "staged: PYTHONPATH=$PWD/build-python/pkg CONVBRIDGE_BIN=$PWD/build-python/convbridge"
