// Seeded mutation fuzzer for the safetensors reader (no libFuzzer needed):
//   safetensors_fuzz --seconds N [--seed S] <seed dir>...
// Seeds: small synthetic files plus every *.safetensors under the seed dirs. Each iteration mutates
// a seed — bytes of the JSON header replaced with JSON-significant characters or digits, the header
// length field set to boundary values, numbers rewritten, the file truncated or extended — then
// opens it and converts every tensor it accepts to fp32 and fp16. A cmo::Error (EMODELFORMAT naming
// the file, or EUNSUPPORTED for an integer dtype) is an accepted outcome; any other exception, a
// crash or a sanitizer report is a failure.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "blob_test_util.h"
#include "fuzz_driver.h"
#include "util/error.h"
#include "util/safetensors.h"

namespace {

struct Seed {
  std::string name;
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data) {
  // Sized once and filled with memcpy (GCC 12 misreports vector::insert after a resize as out of bounds).
  std::vector<uint8_t> b(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  std::memcpy(b.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(b.data() + 8 + header.size(), data.data(), data.size());
  return b;
}

std::vector<Seed> synthetic_seeds(std::mt19937_64& rng) {
  const char* dtypes[] = {"F32", "F16", "BF16", "I8", "U8", "F64", "I64", "BOOL"};
  const int widths[] = {4, 2, 2, 1, 1, 8, 8, 1};
  std::vector<Seed> seeds;
  for (int s = 0; s < 16; ++s) {
    std::string header = s % 3 == 0 ? "{\"__metadata__\":{\"format\":\"pt\"}," : "{";
    uint64_t at = 0;
    int tensors = 1 + s % 4;
    for (int t = 0; t < tensors; ++t) {
      int k = static_cast<int>(rng() % 8);
      uint64_t a = 1 + rng() % 5, b = 1 + rng() % 7;
      uint64_t bytes = a * b * static_cast<uint64_t>(widths[k]);
      header += (t ? "," : "") + std::string("\"layer.") + std::to_string(t) + ".weight\":{\"dtype\":\"" + dtypes[k] +
                "\",\"shape\":[" + std::to_string(a) + "," + std::to_string(b) + "],\"data_offsets\":[" + std::to_string(at) +
                "," + std::to_string(at + bytes) + "]}";
      at += bytes;
    }
    header += "}";
    std::vector<uint8_t> data(at);
    for (auto& x : data) x = static_cast<uint8_t>(rng());
    seeds.push_back({"synthetic#" + std::to_string(s), make_file(header, data)});
  }
  return seeds;
}

void mutate(std::vector<uint8_t>& f, std::mt19937_64& rng) {
  const char specials[] = "{}[]\",:0123456789-.eE\\u tfn";
  uint64_t header_len = 0;
  for (int i = 7; i >= 0 && f.size() >= 8; --i) header_len = (header_len << 8) | f[i];
  const uint64_t header_end = f.size() >= 8 ? std::min<uint64_t>(f.size(), 8 + header_len) : f.size();
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < rounds; ++k) {
    switch (rng() % 6) {
      case 0:
      case 1:  // a header byte → a JSON-significant character
        if (header_end > 8) f[8 + rng() % (header_end - 8)] = static_cast<uint8_t>(specials[rng() % (sizeof specials - 1)]);
        break;
      case 2: {  // the header length → a boundary value
        const uint64_t values[] = {0, 1, 2, header_len - 1, header_len + 1, f.size() - 8, f.size() - 7, f.size(),
                                   100ull << 20, (100ull << 20) + 1, UINT64_MAX, 0x8000000000000000ull};
        uint64_t v = values[rng() % (sizeof values / sizeof values[0])];
        for (int i = 0; i < 8 && i < static_cast<int>(f.size()); ++i) f[i] = static_cast<uint8_t>(v >> (8 * i));
        break;
      }
      case 3:  // truncate
        if (!f.empty()) f.resize(rng() % f.size());
        break;
      case 4:  // extend
        f.resize(f.size() + 1 + rng() % 16, static_cast<uint8_t>(rng()));
        break;
      default:  // a digit run in the header → a huge or different number
        if (header_end > 8) {
          uint64_t at = 8 + rng() % (header_end - 8);
          while (at < header_end && !(f[at] >= '0' && f[at] <= '9')) ++at;
          for (int i = 0; i < 3 && at < header_end && f[at] >= '0' && f[at] <= '9'; ++i, ++at)
            f[at] = static_cast<uint8_t>('0' + rng() % 10);
        }
    }
  }
}

void exercise(const std::string& path) {
  cmo::safetensors::File file(path);
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  for (const auto& t : file.tensors()) {
    if (t.element_count > (64u << 20)) continue;  // valid but large: the header said so and the data is there
    f32.resize(t.element_count);
    f16.resize(t.element_count);
    try {
      file.read_fp32(t, f32.data());
      file.read_fp16(t, f16.data());
      file.release(t);
    } catch (const cmo::Error& e) {
      if (e.code() != "EUNSUPPORTED") throw;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  cmo::test::TempDirCleanup cleanup;
  const cmo::test::FuzzArgs args = cmo::test::parse_fuzz_args(argc, argv, 20261207);
  std::mt19937_64 rng(args.seed);
  std::vector<Seed> seeds = synthetic_seeds(rng);
  const size_t synthetic = seeds.size();
  for (const std::string& dir : args.dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec) && it->path().extension() == ".safetensors" && it->file_size(ec) < (16u << 20))
        seeds.push_back({it->path().string(), cmo::test::read_all(it->path().string())});
    }
  }
  std::printf("safetensors_fuzz: %zu seeds (%zu files), seed %llu, %.0f s\n", seeds.size(), seeds.size() - synthetic,
              static_cast<unsigned long long>(args.seed), args.seconds);
  return cmo::test::run_fuzz_loop(
      "safetensors_fuzz", "EMODELFORMAT", cmo::test::temp_path("mutant.safetensors"), args.seconds, rng,
      // Mostly the small synthetic seeds: real files cost a multi-MB write per iteration.
      [&](std::mt19937_64& r) -> const Seed& { return r() % 8 ? seeds[r() % synthetic] : seeds[r() % seeds.size()]; },
      [](const Seed&, std::vector<uint8_t>& f, std::mt19937_64& local) { mutate(f, local); },
      [](const std::string& path, std::mt19937_64&) { exercise(path); },
      [](std::mt19937_64&, uint64_t) { return true; });
}
