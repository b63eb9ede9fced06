#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzes the safetensors parser under AddressSanitizer + UndefinedBehaviorSanitizer.
# With clang++ available: libFuzzer (coverage-guided). Otherwise: the deterministic g++ mutation driver.
# Usage: scripts/fuzz.sh [safetensors|gguf] [iterations or libFuzzer -runs] [seed files...]
set -euo pipefail
cd "$(dirname "$0")/.."
target=safetensors
if [ "${1:-}" = gguf ] || [ "${1:-}" = safetensors ]; then target="$1"; shift; fi
iters="${1:-50000}"
shift || true
seeds=("$@")
out="$(mktemp -d)"
if [ "$target" = gguf ]; then
  [ ${#seeds[@]} -gt 0 ] || seeds=(../shared/realdata/stories260K/gguf/stories260K-F16.gguf)
  srcs=(native/fuzz/gguf-fuzz.cpp native/core/gguf.cpp native/core/mapped-file.cpp native/core/status.cpp native/core/dtype.cpp)
else
  [ ${#seeds[@]} -gt 0 ] || seeds=(examples/stories260K/model.safetensors)
  srcs=(native/fuzz/safetensors-fuzz.cpp native/core/safetensors.cpp native/core/status.cpp native/core/dtype.cpp)
fi
if command -v clang++ >/dev/null; then
  clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Inative/include "${srcs[@]}" -o "$out/fuzz"
  mkdir -p "$out/corpus" && cp "${seeds[@]}" "$out/corpus/"
  "$out/fuzz" -runs="$iters" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=2 "$out/corpus"
else
  g++ -std=c++17 -O1 -g -DWS_FUZZ_STANDALONE -fsanitize=address,undefined -fno-sanitize-recover=all -Inative/include "${srcs[@]}" -o "$out/fuzz"
  "$out/fuzz" "$iters" "${seeds[@]}"
fi
rm -rf "$out"
