# SPDX-License-Identifier: MIT
# -ffp-contract=off: no fused multiply-add contraction anywhere (GCC contracts by default in C++, even with
# -std=c++17), so every kernel rounds exactly as its reference and as ggml's C code.
# CPU addon, built by node-gyp on `npm install` when no prebuild matches. CMakeLists.txt lists the same CPU
# sources (test/unit/build-files.test.ts checks it) and adds CUDA when asked.
{
  "targets": [
    {
      "target_name": "weightsmith",
      "sources": [
        "native/core/status.cpp",
        "native/core/dtype.cpp",
        "native/core/cpu.cpp",
        "native/core/thread-pool.cpp",
        "native/core/mapped-file.cpp",
        "native/core/safetensors.cpp",
        "native/core/gguf.cpp",
        "native/kernels/compare.cpp",
        "native/kernels/convert.cpp",
        "native/kernels/fp8-quant.cpp",
        "native/kernels/ggml.cpp",
        "native/kernels/int-quant.cpp",
        "native/kernels/gemm.cpp",
        "native/kernels/random.cpp",
        "native/kernels/qr.cpp",
        "native/kernels/svd.cpp",
        "native/kernels/dgemm.cpp",
        "native/kernels/factor.cpp",
        "native/kernels/sparse-formats.cpp",
        "native/kernels/sparsity.cpp",
        "native/kernels/bnb4.cpp",
        "native/kernels/calib.cpp",
        "native/kernels/ref/bnb4-ref.cpp",
        "native/kernels/ref/calib-ref.cpp",
        "native/kernels/ref/convert-ref.cpp",
        "native/kernels/ref/sparsity-ref.cpp",
        "native/kernels/ref/fp8-quant-ref.cpp",
        "native/kernels/ref/ggml-dequant-ref.cpp",
        "native/kernels/ref/ggml-quant-ref.cpp",
        "native/kernels/ref/int-quant-ref.cpp",
        "native/kernels/cpu/convert-cpu.cpp",
        "native/kernels/cpu/arch/x86/bnb4-avx2.cpp",
        "native/kernels/cpu/arch/x86/bnb4-avx512.cpp",
        "native/kernels/cpu/arch/x86/calib-avx2.cpp",
        "native/kernels/cpu/arch/x86/calib-avx512.cpp",
        "native/kernels/cpu/scale-quant-cpu.cpp",
        "native/kernels/cpu/arch/x86/convert-avx2.cpp",
        "native/kernels/cpu/arch/x86/convert-avx512.cpp",
        "native/kernels/cpu/arch/x86/gemm-avx512.cpp",
        "native/kernels/cpu/arch/x86/svd-avx512.cpp",
        "native/kernels/cpu/arch/x86/factor-avx2.cpp",
        "native/kernels/cpu/arch/x86/factor-avx512.cpp",
        "native/kernels/cpu/arch/x86/ggml-kquant-avx2.cpp",
        "native/kernels/cpu/arch/x86/ggml-kquant-avx512.cpp",
        "native/kernels/cpu/arch/x86/ggml-quant-avx2.cpp",
        "native/kernels/cpu/arch/x86/ggml-quant-avx512.cpp",
        "native/kernels/cpu/arch/x86/sparsity-avx512.cpp",
        "native/kernels/cpu/arch/x86/scale-quant-avx2.cpp",
        "native/kernels/cpu/arch/x86/scale-quant-avx512.cpp",
        "native/binding/common.cpp",
        "native/binding/file.cpp",
        "native/binding/bnb4.cpp",
        "native/binding/calib.cpp",
        "native/binding/convert.cpp",
        "native/binding/quant.cpp",
        "native/binding/linalg.cpp",
        "native/binding/random.cpp",
        "native/binding/svd.cpp",
        "native/binding/factor.cpp",
        "native/binding/sparsity.cpp",
        "native/binding/addon.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-ffp-contract=off", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O3", "-ffp-contract=off", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "OTHER_CFLAGS": ["-O3", "-ffp-contract=off", "-Wall", "-Wextra"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] }
      }
    }
  ]
}
