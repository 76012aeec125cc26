#!/usr/bin/env bash
# Compile llama.cpp once into the virtualenv (llama-cpp-python ships as source only), and vendor its converter.
#   tools/build_llamacpp.sh VENV
# Never fails the setup: on failure the log stays at VENV/llama-cpp-build.log and the app says why llama.cpp
# levels are missing (the rest of the app works without them).
set -uo pipefail
VENV=${1:-.venv}
PY="$VENV/bin/python"
VERSION=$(sed -n 's/^llama-cpp-python==//p' requirements-llamacpp.txt)
LOG="$VENV/llama-cpp-build.log"
SHARE="$VENV/share/llama.cpp"
# A portable build: GGML_NATIVE=OFF compiles for x86-64 with AVX2/FMA/F16C/BMI2 (any x86 CPU since ~2015), not for
# this machine's exact CPU, so the wheel pip caches (and the Docker image's) runs on another machine too.
export CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
build() {
    "$PY" -m pip install --quiet -r requirements-llamacpp.txt --no-binary llama-cpp-python || return 1
    # The converter (convert_hf_to_gguf.py, its conversion/ package and the gguf-py it pins) is in the source only.
    local scratch
    scratch=$(mktemp -d)
    "$PY" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$scratch" || return 1
    tar -xzf "$scratch"/llama_cpp_python-*.tar.gz -C "$scratch" || return 1
    rm -rf "$SHARE" && mkdir -p "$SHARE"
    local tree=("$scratch"/llama_cpp_python-*/vendor/llama.cpp)
    cp -r "${tree[0]}"/{convert_hf_to_gguf.py,conversion,gguf-py,LICENSE} "$SHARE"/ || return 1
    rm -rf "$scratch"
}
if "$PY" -c "import sys, llama_cpp; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null \
        && [ -f "$SHARE/convert_hf_to_gguf.py" ]; then
    exit 0
fi
echo "Compiling llama.cpp once (llama-cpp-python $VERSION from source: about 5 minutes on 2 cores; pip caches it)..."
if build > "$LOG" 2>&1; then
    rm -f "$LOG"
    echo "llama.cpp built."
else
    echo "llama.cpp did not build (log: $LOG): the app runs without its GGUF levels." >&2
fi
