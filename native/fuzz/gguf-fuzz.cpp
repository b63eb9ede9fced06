// SPDX-License-Identifier: MIT
// Fuzz target for the GGUF parser (a whole file image in, Status out; must never crash, hang or leak).
// With clang: libFuzzer (LLVMFuzzerTestOneInput). With g++: -DWS_FUZZ_STANDALONE gives a deterministic
// mutation driver (scripts/fuzz.sh gguf).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "weightsmith/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ws::GgufFile file;
  if (ws::gguf_parse_bytes(data, size, &file).is_ok()) {
    // Every accepted table must describe data inside the image, in ggml's sequential layout.
    uint64_t expected = 0;
    for (const auto& t : file.tensors) {
      if (t.offset != expected || file.data_start + t.offset + t.nbytes > size) __builtin_trap();
      expected += (t.nbytes + file.alignment - 1) / file.alignment * file.alignment;
    }
  }
  return 0;
}

#ifdef WS_FUZZ_STANDALONE
namespace {
uint64_t g_state = 0x2545F4914F6CDD1Dull;
uint64_t next() {
  g_state ^= g_state << 13;
  g_state ^= g_state >> 7;
  g_state ^= g_state << 17;
  return g_state;
}
void mutate(std::vector<uint8_t>& d) {
  const int ops = 1 + static_cast<int>(next() % 4);
  for (int k = 0; k < ops; ++k) {
    const size_t pos = d.empty() ? 0 : static_cast<size_t>(next() % d.size());
    switch (next() % 6) {
      case 0: if (!d.empty()) d[pos] ^= static_cast<uint8_t>(1u << (next() % 8)); break;
      case 1: if (!d.empty()) d[pos] = static_cast<uint8_t>(next()); break;
      case 2: if (!d.empty()) d.erase(d.begin() + pos); break;
      case 3: d.insert(d.begin() + pos, static_cast<uint8_t>(next())); break;
      case 4: d.resize(static_cast<size_t>(next() % (d.size() + 1))); break;
      default: {
        // Overwrite a little-endian u64 or u32 with an interesting value (counts, lengths, dims, offsets).
        static const uint64_t kVals[] = {0, 1, 2, 3, 4, 8, 13, 32, 63, 64, 255, 0xFFFFFFFFull, 0x7FFFFFFFFFFFFFFFull,
                                         0xFFFFFFFFFFFFFFFFull, 1ull << 30, (1ull << 30) + 1, 1ull << 62};
        const uint64_t v = kVals[next() % (sizeof(kVals) / sizeof(kVals[0]))];
        const size_t w = next() % 2 ? 8 : 4;
        if (d.size() >= w && pos + w <= d.size()) std::memcpy(d.data() + pos, &v, w);
        break;
      }
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
  if (seeds.empty()) seeds.push_back(std::vector<uint8_t>{'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  long accepted = 0;
  for (long it = 0; it < iterations; ++it) {
    std::vector<uint8_t> d = seeds[static_cast<size_t>(next() % seeds.size())];
    mutate(d);
    ws::GgufFile file;
    if (ws::gguf_parse_bytes(d.data(), d.size(), &file).is_ok()) ++accepted;
    LLVMFuzzerTestOneInput(d.data(), d.size());
  }
  std::printf("%ld inputs, %ld accepted, no crash\n", iterations, accepted);
  return 0;
}
#endif
