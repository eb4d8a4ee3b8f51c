// Seeded mutation fuzzer for the blob storage reader (no libFuzzer needed):
//   blob_fuzz --seconds N [--seed S] <seed dir>...
// Seeds are every weight.bin found recursively under the seed dirs plus small synthetic files
// written by StorageWriter. Each iteration mutates a seed (bit flips, truncation, extension, header
// and metadata fields overwritten with boundary values), writes it to a temp file, opens it with
// StorageReader and walks/reads every record, unpacking sub-byte data. A cmo::Error is an accepted
// outcome; any other exception, a crash or a sanitizer report is a failure. Also cross-checks the
// fast sub-byte unpack against the reference on random bytes.
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "blob/blob.h"
#include "blob_test_util.h"
#include "fuzz_driver.h"
#include "util/error.h"

using namespace cmo::blob;

namespace {

struct Seed {
  std::string name;
  std::vector<uint8_t> bytes;
  std::vector<uint64_t> metadata_offsets;  // where records are in the unmutated file
};

std::vector<uint64_t> record_offsets(const std::string& path) {
  std::vector<uint64_t> out;
  try {
    StorageReader r(path);
    for (const Record& rec : r.records()) out.push_back(rec.metadata_offset);
  } catch (const cmo::Error&) {
  }
  return out;
}

std::vector<Seed> synthetic_seeds(std::mt19937_64& rng) {
  std::vector<Seed> seeds;
  const DType types[] = {DType::Float16, DType::Float32, DType::UInt8, DType::Int8, DType::BFloat16, DType::Int16,
                         DType::UInt16, DType::Int4, DType::UInt1, DType::UInt2, DType::UInt4, DType::UInt3,
                         DType::UInt6, DType::Int32, DType::UInt32, DType::Float8E4M3FN, DType::Float8E5M2};
  for (int s = 0; s < 24; ++s) {
    std::string path = cmo::test::temp_path("synthetic.bin");
    {
      StorageWriter w(path);
      int records = s % 5;
      for (int i = 0; i < records; ++i) {
        DType t = types[rng() % (sizeof types / sizeof types[0])];
        uint64_t n = rng() % 70;
        if (bits_of(t) <= 8) {
          std::vector<uint8_t> values(n);
          for (auto& v : values) {
            unsigned r = static_cast<unsigned>(rng() % (1u << bits_of(t)));
            v = t == DType::Int4 ? static_cast<uint8_t>(static_cast<int>(r) - 8) : static_cast<uint8_t>(r);
          }
          w.append_unpacked(t, values.data(), n);
        } else {
          std::vector<uint8_t> data(packed_size(t, n));
          for (auto& b : data) b = static_cast<uint8_t>(rng());
          w.append(t, data.data(), data.size(), n);
        }
      }
      w.close();
    }
    seeds.push_back({"synthetic#" + std::to_string(s), cmo::test::read_all(path), record_offsets(path)});
  }
  return seeds;
}

uint64_t boundary_value(std::mt19937_64& rng, uint64_t file_size) {
  const uint64_t values[] = {0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 63, 64, 65, 127, 128, 192,
                             file_size - 1, file_size, file_size + 1, file_size - 64, file_size / 2,
                             0x7FFFFFFFull, 0xFFFFFFFFull, 0x100000000ull, 0x8000000000000000ull,
                             UINT64_MAX, UINT64_MAX - 7, UINT64_MAX - 63, UINT64_MAX / 8 + 1, 0xDEADBEEFull};
  if (rng() % 8 == 0) return rng();
  return values[rng() % (sizeof values / sizeof values[0])];
}

void put(std::vector<uint8_t>& f, uint64_t at, uint64_t v, int width) {
  for (int i = 0; i < width && at + i < f.size(); ++i) f[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

void mutate(const Seed& seed, std::vector<uint8_t>& f, std::mt19937_64& rng) {
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < rounds; ++k) {
    uint64_t size = f.size();
    auto pick_record = [&]() -> uint64_t {
      if (!seed.metadata_offsets.empty() && rng() % 4 != 0) return seed.metadata_offsets[rng() % seed.metadata_offsets.size()];
      return 64 * (1 + rng() % (size / 64 + 1));
    };
    switch (rng() % 8) {
      case 0:  // bit flip anywhere
        if (size) f[rng() % size] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1: {  // bit flip in a header or metadata field
        uint64_t at = (rng() % 3 == 0 ? 0 : pick_record()) + rng() % 64;
        if (at < size) f[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      }
      case 2: {  // truncate, often near a record boundary
        uint64_t to = rng() % 2 ? rng() % (size + 1) : pick_record() + (rng() % 130) - 65;
        if (to < size) f.resize(to);
        break;
      }
      case 3:  // header count / version with boundary values
        put(f, rng() % 2 ? 0 : 4, rng() % 3 == 0 ? boundary_value(rng, size)
                                                 : (rng() % 2 ? seed.metadata_offsets.size() + rng() % 3 - 1 : 2),
            4);
        break;
      case 4: {  // metadata field with a boundary value
        static const uint64_t fields[][2] = {{0, 4}, {4, 4}, {8, 8}, {16, 8}, {24, 8}, {32, 8}};
        const auto& fld = fields[rng() % 6];
        uint64_t v = boundary_value(rng, size);
        if (fld[0] == 4 && rng() % 2) v = rng() % 20;  // dtype codes around the known range
        if (fld[0] == 24 && rng() % 2) v = rng() % 10;  // padding around the limit
        put(f, pick_record() + fld[0], v, static_cast<int>(fld[1]));
        break;
      }
      case 5: {  // random bytes overwritten
        uint64_t at = size ? rng() % size : 0;
        for (uint64_t n = rng() % 16; n > 0 && at < size; --n) f[at++] = static_cast<uint8_t>(rng());
        break;
      }
      case 6:  // grow with zeros or junk
        for (uint64_t n = rng() % 200; n > 0; --n) f.push_back(rng() % 2 ? 0 : static_cast<uint8_t>(rng()));
        break;
      default: {  // copy a metadata record over another place (misplaced but plausible records)
        uint64_t from = pick_record(), to = pick_record() + (rng() % 2 ? 0 : rng() % 64);
        for (int i = 0; i < 64 && from + i < size && to + i < size; ++i) f[to + i] = f[from + i];
        break;
      }
    }
  }
}

// Opens and reads everything; returns true when the whole file was accepted.
bool exercise(const std::string& path, std::mt19937_64& rng, std::vector<uint8_t>& scratch) {
  StorageReader r(path);
  uint64_t checksum = 0;
  for (const Record& rec : r.records()) {
    const uint8_t* p = r.data(rec);
    for (uint64_t i = 0; i < rec.size_in_bytes; ++i) checksum += p[i];
    if (bits_of(rec.dtype) <= 8) {
      uint64_t n = rec.element_count < 65536 ? rec.element_count : 65536;
      scratch.resize(n);
      unpack_sub_byte(rec.dtype, p, n, scratch.data());
    }
  }
  // Arbitrary offsets, including unaligned ones and ones past the end.
  for (int i = 0; i < 4; ++i) {
    uint64_t off = rng() % 2 ? rng() % (r.file_size() + 256) : boundary_value(rng, r.file_size());
    try {
      Record rec = r.record(off);
      checksum += r.data(rec)[0 < rec.size_in_bytes ? rec.size_in_bytes - 1 : 0] * (rec.size_in_bytes > 0);
    } catch (const cmo::Error&) {
    }
  }
  volatile uint64_t sink = checksum;
  (void)sink;
  return true;
}

bool check_unpack_paths(std::mt19937_64& rng) {
  const DType types[] = {DType::Int4, DType::UInt1, DType::UInt2, DType::UInt3, DType::UInt4, DType::UInt6, DType::UInt8};
  DType t = types[rng() % 7];
  uint64_t n = rng() % 300;
  std::vector<uint8_t> bytes(packed_size(t, n)), a(n), b(n);
  for (auto& x : bytes) x = static_cast<uint8_t>(rng());
  unpack_sub_byte(t, bytes.data(), n, a.data());
  unpack_sub_byte_ref(t, bytes.data(), n, b.data());
  if (a != b) return false;
  std::vector<uint8_t> p1(bytes.size()), p2(bytes.size());
  pack_sub_byte(t, a.data(), n, p1.data());
  pack_sub_byte_ref(t, a.data(), n, p2.data());
  return p1 == p2;
}

}  // namespace

int main(int argc, char** argv) {
  cmo::test::TempDirCleanup cleanup;
  const cmo::test::FuzzArgs args = cmo::test::parse_fuzz_args(argc, argv, 20261126);
  std::mt19937_64 rng(args.seed);
  std::vector<Seed> seeds = synthetic_seeds(rng);
  size_t fixture_seeds = 0;
  for (const std::string& dir : args.dirs) {
    for (const std::string& path : cmo::test::find_weight_files(dir)) {
      seeds.push_back({path, cmo::test::read_all(path), record_offsets(path)});
      ++fixture_seeds;
    }
  }
  std::printf("blob_fuzz: %zu seeds (%zu weight.bin files), seed %llu, %.0f s\n", seeds.size(), fixture_seeds,
              static_cast<unsigned long long>(args.seed), args.seconds);

  std::vector<uint8_t> scratch;
  return cmo::test::run_fuzz_loop(
      "blob_fuzz", "EWEIGHTS", cmo::test::temp_path("mutant.bin"), args.seconds, rng,
      // Small seeds most of the time: they are where most iterations are cheap.
      [&](std::mt19937_64& r) -> const Seed& { return r() % 2 ? seeds[r() % seeds.size()] : seeds[r() % 24]; },
      [](const Seed& seed, std::vector<uint8_t>& f, std::mt19937_64& local) { mutate(seed, f, local); },
      [&](const std::string& path, std::mt19937_64& local) { exercise(path, local, scratch); },
      [](std::mt19937_64& local, uint64_t iteration_seed) {
        if (check_unpack_paths(local)) return true;
        std::fprintf(stderr, "blob_fuzz: fast and reference sub-byte paths disagree (iteration seed %llu)\n",
                     static_cast<unsigned long long>(iteration_seed));
        return false;
      });
}
