#!/usr/bin/env bash
# Build llama-cpp-python once per (version, CPU flags) and install it into a virtual environment.
#
# Why not `pip install llama-cpp-python`: its default build compiles llama.cpp with -march=native, so
# a CPU that *reports* AMX gets AMX kernels even where the VM forbids the AMX tiles (the first decoded
# token dies of SIGILL), and pip's wheel cache does not know CMAKE_ARGS, so a rebuild with other flags
# is silently skipped. Here the flags are explicit and the wheel is cached under a key that includes
# them; pip's own cache is bypassed for this one package.
#
#   scripts/install_llama.sh [VENV]            # profile from CAREERQA_LLAMA_CPU (default: auto)
#   CAREERQA_LLAMA_CPU=avx512 scripts/install_llama.sh .venv
#   CMAKE_ARGS="-DGGML_NATIVE=OFF ..." scripts/install_llama.sh .venv   # any flags of your own
#   scripts/install_llama.sh --wheel-only   # build (or find) the wheel, print its path, install nothing
#
# Profiles (bench/bench_llama_build.py measures them; bench/RESULTS.md has the figures):
#   avx2    runs on any x86-64 CPU with AVX2 + FMA + F16C + BMI2 (Haswell, 2013, and newer; Zen 1+)
#   avx512  adds AVX-512 F/BW/DQ/VL + VNNI + VBMI + BF16 (Ice Lake / Sapphire Rapids / Zen 4+)
#   native  -march=native: only for the machine that built it, and unsafe where AMX is reported
#   auto    avx512 where this machine's CPU reports every AVX-512 extension that profile names, else
#           avx2 (measured: avx512 reads prompts 1.49x faster than avx2 on a 2-core Xeon, output the same)
set -euo pipefail

VENV=${1:-.venv}
PIP=$VENV/bin/pip
if [ "$VENV" = --wheel-only ]; then PIP="python3 -m pip"; fi
VERSION=0.3.36
PROFILE=${CAREERQA_LLAMA_CPU:-auto}
CACHE=${CAREERQA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/careerqa/wheels}

AVX2="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
AVX2="$AVX2 -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
AVX512="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
AVX512="$AVX512 -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON"
AVX512="$AVX512 -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

if [ "$PROFILE" = auto ]; then
  PROFILE=avx512
  FLAGS_SEEN=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
  for f in avx2 fma f16c bmi2 avx512f avx512cd avx512bw avx512dq avx512vl avx512_vnni avx512vbmi avx512_bf16; do
    case " $FLAGS_SEEN " in *" $f "*) ;; *) PROFILE=avx2 ;; esac
  done
fi

if [ -n "${CMAKE_ARGS:-}" ]; then
  PROFILE=custom
  FLAGS=$CMAKE_ARGS
else
  case "$PROFILE" in
    avx2) FLAGS=$AVX2 ;;
    avx512) FLAGS=$AVX512 ;;
    native) FLAGS="-DGGML_NATIVE=ON" ;;
    *) echo "install_llama.sh: unknown CAREERQA_LLAMA_CPU=$PROFILE (choose auto, avx2, avx512 or native," \
            "or set CMAKE_ARGS)" >&2; exit 2 ;;
  esac
fi

KEY=$(printf '%s\n%s\n%s\n' "$VERSION" "$FLAGS" "$(uname -m)" | sha256sum | cut -c1-16)
DIR="$CACHE/llama_cpp_python-$VERSION-$KEY"
if ! ls "$DIR"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION ($PROFILE: $FLAGS); several minutes on 2 cores" >&2
  mkdir -p "$CACHE"
  TMP=$(mktemp -d "$CACHE/.build-XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  CMAKE_ARGS="$FLAGS" FORCE_CMAKE=1 $PIP wheel --no-cache-dir --no-deps \
    --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$TMP" >&2
  printf '{"version": "%s", "profile": "%s", "cmake_args": "%s", "machine": "%s"}\n' \
    "$VERSION" "$PROFILE" "$FLAGS" "$(uname -m)" > "$TMP/build.json"
  rm -rf "$DIR" && mv "$TMP" "$DIR"  # a wheel appears under its key only once complete
  trap - EXIT
else
  echo "llama-cpp-python $VERSION ($PROFILE) from $DIR" >&2
fi
WHEEL=$(ls "$DIR"/llama_cpp_python-"$VERSION"-*.whl)
if [ "$VENV" = --wheel-only ]; then echo "$WHEEL"; exit 0; fi
"$VENV/bin/pip" install --quiet --no-cache-dir --force-reinstall --no-deps "$WHEEL"
"$VENV/bin/pip" install --quiet "$WHEEL"  # its dependencies (numpy, jinja2, diskcache), if missing
# What was built, for `careerqa doctor` and the start-up check's key.
SITE=$("$VENV/bin/python" -c 'import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))')
cp "$DIR/build.json" "$SITE/careerqa-build.json"
