// SPDX-License-Identifier: MIT
// Fuzz target for the safetensors parser (whole file image in, Status out; must never crash, hang or leak).
// With clang: clang++ -fsanitize=fuzzer,address,undefined ... (LLVMFuzzerTestOneInput).
// Without clang (g++ only), build with -DWS_FUZZ_STANDALONE for a deterministic mutation driver:
//   scripts/fuzz.sh [iterations] [seed files...]
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "weightsmith/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ws::StLimits limits;
  limits.max_tensors = 4096;
  ws::StHeader header;
  const ws::Status s = ws::st_parse_file(data, size, limits, &header);
  if (s.is_ok()) {
    // Every accepted table must be internally consistent.
    uint64_t expected = 0;
    for (const auto& t : header.tensors) {
      if (t.begin != expected || t.end < t.begin) __builtin_trap();
      expected = t.end;
    }
    if (header.data_start() + expected != size) __builtin_trap();
  }
  return 0;
}

#ifdef WS_FUZZ_STANDALONE
namespace {

uint64_t g_state = 0x9E3779B97F4A7C15ull;
uint64_t next() {
  g_state ^= g_state << 13;
  g_state ^= g_state >> 7;
  g_state ^= g_state << 17;
  return g_state;
}

const char* const kTokens[] = {"{", "}", "[", "]", ",", ":", "\"", "\\u", "\\ud800", "-1", "1e5", "0.5",
                               "18446744073709551616", "9007199254740993", "\"F4\"", "\"BF16\"", "\"__metadata__\"",
                               "\"dtype\"", "\"shape\"", "\"data_offsets\"", "null", "true", "\x00", "\xff"};

void mutate(std::vector<uint8_t>& d) {
  const int ops = 1 + static_cast<int>(next() % 4);
  for (int k = 0; k < ops; ++k) {
    const uint64_t r = next();
    const size_t pos = d.empty() ? 0 : static_cast<size_t>(next() % d.size());
    switch (r % 6) {
      case 0: if (!d.empty()) d[pos] ^= static_cast<uint8_t>(1u << (next() % 8)); break;
      case 1: if (!d.empty()) d[pos] = static_cast<uint8_t>(next()); break;
      case 2: if (!d.empty()) d.erase(d.begin() + pos); break;
      case 3: {
        const char* t = kTokens[next() % (sizeof(kTokens) / sizeof(kTokens[0]))];
        d.insert(d.begin() + pos, t, t + (t[0] ? std::strlen(t) : 1));
        break;
      }
      case 4: d.resize(static_cast<size_t>(next() % (d.size() + 1))); break;
      default:
        // Rewrite the length prefix to agree with a mutated header, so the JSON stage gets exercised.
        if (d.size() >= 8) {
          uint64_t n = d.size() - 8 - (d.size() > 8 ? next() % (d.size() - 8) : 0);
          for (int i = 0; i < 8; ++i) d[i] = static_cast<uint8_t>(n >> (8 * i));
        }
        break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 100000;
  std::vector<std::vector<uint8_t>> seeds;
  for (int i = 2; i < argc; ++i) {
    FILE* f = std::fopen(argv[i], "rb");
    if (!f) continue;
    std::vector<uint8_t> buf;
    uint8_t chunk[65536];
    size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) buf.insert(buf.end(), chunk, chunk + n);
    std::fclose(f);
    seeds.push_back(std::move(buf));
  }
  if (seeds.empty()) {
    const char json[] = "{\"__metadata__\":{\"a\":\"b\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    std::vector<uint8_t> s(8 + sizeof(json) - 1 + 8, 0);
    const uint64_t n = sizeof(json) - 1;
    for (int i = 0; i < 8; ++i) s[i] = static_cast<uint8_t>(n >> (8 * i));
    std::memcpy(s.data() + 8, json, n);
    seeds.push_back(s);
  }
  long accepted = 0;
  for (long it = 0; it < iterations; ++it) {
    std::vector<uint8_t> d = seeds[static_cast<size_t>(next() % seeds.size())];
    mutate(d);
    ws::StLimits limits;
    ws::StHeader header;
    if (ws::st_parse_file(d.data(), d.size(), limits, &header).is_ok()) ++accepted;
    LLVMFuzzerTestOneInput(d.data(), d.size());
  }
  std::printf("%ld inputs, %ld accepted, no crash\n", iterations, accepted);
  return 0;
}
#endif
