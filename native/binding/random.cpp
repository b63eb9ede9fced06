// SPDX-License-Identifier: MIT
// Binding of the seeded Gaussian generator (randomizedSvd's test matrix).
#include "common.h"
#include "weightsmith/random.h"

namespace ws::binding {

// gaussianFillSync(seed: number (integer in [0, 2^53)), out: Float32Array)
Napi::Value GaussianFillSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw_type(env, "The \"seed\" argument must be a number");
  const double seed = info[0].As<Napi::Number>().DoubleValue();
  if (!(seed >= 0 && seed <= 9007199254740991.0) || seed != static_cast<double>(static_cast<uint64_t>(seed)))
    throw_range(env, "The \"seed\" argument must be an integer in [0, 2^53)");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(env, "The \"out\" argument must be a Float32Array");
  Bytes out = get_bytes(info[1], "out");
  Status s = gaussian_fill(static_cast<uint64_t>(seed), reinterpret_cast<float*>(out.data), out.length / 4, nullptr);
  if (!s.is_ok()) throw_status(env, s);
  return env.Undefined();
}

}  // namespace ws::binding
