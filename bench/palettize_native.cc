// Micro-benchmark (not a test): CPU time of palettize_tensor on synthetic fp16 weights at SDXL
// sizes, single thread. Build (from the repo root):
//   g++ -O3 -std=c++17 -ffp-contract=off -fno-trapping-math -Inative bench/palettize_native.cc native/kernels/{kmeans1d,kmeans1d_penalized,kmeans1d_streams,kmeans_sklearn,palettize,lut_modes,vector_kmeans,synthetic,fp16_histogram_simd}.cc native/util/*.cc -lpthread -o /tmp/palettize_native
//   /tmp/palettize_native [rows cols nbits group_size cluster_dim]...
// Prints CPU ns per weight (getrusage: the machine may be shared), the SSE and a hash of the indices
// and LUT (equal hashes before and after a change: the same output). PALETTIZE_REPEAT=N: best of N.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/palettize.h"
#include "kernels/synthetic.h"
#include "util/thread_pool.h"

using namespace cmo::kernels;

static double cpu_seconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static void run(int64_t rows, int64_t cols, int nbits, int64_t gs, int cd) {
  std::vector<uint16_t> w(static_cast<size_t>(rows * cols));
  SyntheticParams sp;
  sp.fan_in = static_cast<uint64_t>(cols);
  sp.seed = static_cast<uint64_t>(rows * 31 + cols);
  synthetic_fp16(sp, 0, w.size(), w.data());
  WeightView v;
  v.data = w.data();
  v.shape = {rows, cols};
  PalettizeParams p;
  p.nbits = nbits;
  p.group_size = gs;
  p.cluster_dim = cd;
  p.threads = 1;
  // PALETTIZE_REPEAT=N: best of N runs (and a longer profile of the kernel alone).
  const char* rep_env = std::getenv("PALETTIZE_REPEAT");
  const int repeat = rep_env ? std::max(1, std::atoi(rep_env)) : 1;
  PalettizeResult r;
  double t = 1e300;
  for (int rep = 0; rep < repeat; ++rep) {
    double t0 = cpu_seconds();
    r = palettize_tensor(v, p);
    t = std::min(t, cpu_seconds() - t0);
  }
  // FNV-1a over indices and LUT: equal outputs before and after a change (exactness check).
  uint64_t hash = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t bytes) {
    for (size_t i = 0; i < bytes; ++i) hash = (hash ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
  };
  mix(r.indices.data(), r.indices.size());
  mix(r.lut_f16.data(), r.lut_f16.size() * 2);
  std::printf("%6lld x %-6lld nbits %d gs %-5lld cd %d: %8.2f ns/weight (%.3f s cpu)  sse/signal %.6e  sse %.9g  hash %016llx\n",
              (long long)rows, (long long)cols, nbits, (long long)gs, cd, 1e9 * t / static_cast<double>(w.size()), t,
              r.sse / r.signal, r.sse, (unsigned long long)hash);
}

int main(int argc, char** argv) {
  cmo::ThreadPool::resize_global(1);
  if (argc >= 6) {
    for (int a = 1; a + 4 < argc; a += 5)
      run(std::atoll(argv[a]), std::atoll(argv[a + 1]), std::atoi(argv[a + 2]), std::atoll(argv[a + 3]), std::atoi(argv[a + 4]));
    return 0;
  }
  run(1280, 1280, 4, 0, 1);
  run(1280, 1280, 8, 0, 1);
  run(1280, 1280, 4, 16, 1);
  run(10240, 1280, 4, 16, 1);
  run(1280, 5120, 4, 16, 1);
  run(3072, 768, 8, 16, 1);
  return 0;
}
