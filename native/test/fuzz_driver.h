// The loop the seeded mutation fuzzers (blob_fuzz, safetensors_fuzz) share: command line
// `--seconds N [--seed S] <seed dir>...`, then until time is up: pick a seed, mutate a copy with a
// generator seeded from the main one (the iteration seed, printed on failure so it can be replayed),
// write it to a temp file and exercise the reader on it. A cmo::Error with the expected code and a
// message that starts with the file's path is a rejection; any other error is a failure.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "blob_test_util.h"
#include "util/error.h"

namespace cmo::test {

struct FuzzArgs {
  double seconds = 10;
  uint64_t seed = 0;
  std::vector<std::string> dirs;
};

inline FuzzArgs parse_fuzz_args(int argc, char** argv, uint64_t default_seed) {
  FuzzArgs out;
  out.seed = default_seed;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) out.seconds = std::atof(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) out.seed = std::strtoull(argv[++i], nullptr, 10);
    else out.dirs.push_back(a);
  }
  return out;
}

// pick(rng) → const Seed& (with .name and .bytes); mutate(seed, bytes, local); exercise(path, local) throws on
// rejection; after(local, iteration_seed) → false on a failure it has reported (extra per-iteration checks).
// Returns the process exit code.
template <class Pick, class Mutate, class Exercise, class After>
int run_fuzz_loop(const char* tool, const char* error_code, const std::string& mutant_path, double seconds,
                  std::mt19937_64& rng, Pick pick, Mutate mutate, Exercise exercise, After after) {
  uint64_t iterations = 0, accepted = 0, rejected = 0;
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    const auto& seed = pick(rng);
    std::vector<uint8_t> mutant = seed.bytes;
    uint64_t iteration_seed = rng();
    std::mt19937_64 local(iteration_seed);
    mutate(seed, mutant, local);
    write_all(mutant_path, mutant);
    try {
      exercise(mutant_path, local);
      ++accepted;
    } catch (const cmo::Error& e) {
      if (e.code() != error_code || std::string(e.what()).rfind(mutant_path, 0) != 0) {
        std::fprintf(stderr, "%s: error without the file name or code (seed %s, iteration seed %llu): [%s] %s\n", tool,
                     seed.name.c_str(), static_cast<unsigned long long>(iteration_seed), e.code().c_str(), e.what());
        return 1;
      }
      ++rejected;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: unexpected exception (seed %s, iteration seed %llu): %s\n", tool, seed.name.c_str(),
                   static_cast<unsigned long long>(iteration_seed), e.what());
      return 1;
    }
    if (!after(local, iteration_seed)) return 1;
    ++iterations;
  }
  std::printf("%s: %llu iterations (%llu files accepted, %llu rejected with a typed error)\n", tool,
              static_cast<unsigned long long>(iterations), static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(rejected));
  return 0;
}

}  // namespace cmo::test
