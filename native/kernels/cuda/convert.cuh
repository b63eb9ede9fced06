// SPDX-License-Identifier: MIT
// CUDA dtype conversion (built only with -DWEIGHTSMITH_CUDA=ON). The per-element rules are the WS_HD
// functions of weightsmith/float-bits.h, the same code the CPU reference runs, so the CPU tests cover the
// arithmetic executed on the GPU.
#pragma once

#include <cstddef>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

// Converts n elements between device buffers on `stream` (a cudaStream_t, or nullptr for the default
// stream). Supported pairs: f32 <-> f16, f32 <-> bf16, f16 <-> bf16; others give kDtype. Launch and
// runtime failures give kCuda with the CUDA error string; never aborts.
Status convert_cuda(const void* src, DType src_dtype, void* dst, DType dst_dtype, size_t n, void* stream);

}  // namespace ws
