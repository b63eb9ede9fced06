// SPDX-License-Identifier: MIT
#include "convert.cuh"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "weightsmith/float-bits.h"

namespace ws {

namespace {

template <typename S, typename D, D (*Fn)(S)>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, size_t n) {
  const size_t stride = static_cast<size_t>(blockDim.x) * gridDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = Fn(src[i]);
}

__host__ __device__ inline uint16_t f16_to_bf16_bits(uint16_t h) { return f32_to_bf16(f16_to_f32(h)); }
__host__ __device__ inline uint16_t bf16_to_f16_bits(uint16_t h) { return f32_to_f16(bf16_to_f32(h)); }

template <typename S, typename D, D (*Fn)(S)>
Status launch(const void* src, void* dst, size_t n, cudaStream_t stream) {
  if (n == 0) return Status::ok();
  const int threads = 256;
  const size_t want = (n + threads - 1) / threads;
  const int blocks = static_cast<int>(want < 65535 ? want : 65535);
  convert_kernel<S, D, Fn><<<blocks, threads, 0, stream>>>(static_cast<const S*>(src), static_cast<D*>(dst), n);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return Status(Code::kCuda, std::string("convert kernel launch failed: ") + cudaGetErrorString(err));
  return Status::ok();
}

}  // namespace

Status convert_cuda(const void* src, DType s, void* dst, DType d, size_t n, void* stream_ptr) {
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  if (s == DType::kF32 && d == DType::kBF16) return launch<uint32_t, uint16_t, f32_to_bf16>(src, dst, n, stream);
  if (s == DType::kF32 && d == DType::kF16) return launch<uint32_t, uint16_t, f32_to_f16>(src, dst, n, stream);
  if (s == DType::kBF16 && d == DType::kF32) return launch<uint16_t, uint32_t, bf16_to_f32>(src, dst, n, stream);
  if (s == DType::kF16 && d == DType::kF32) return launch<uint16_t, uint32_t, f16_to_f32>(src, dst, n, stream);
  if (s == DType::kF16 && d == DType::kBF16) return launch<uint16_t, uint16_t, f16_to_bf16_bits>(src, dst, n, stream);
  if (s == DType::kBF16 && d == DType::kF16) return launch<uint16_t, uint16_t, bf16_to_f16_bits>(src, dst, n, stream);
  return Status(Code::kDtype, std::string("no CUDA conversion from ") + dtype_info(s).name + " to " + dtype_info(d).name);
}

}  // namespace ws
