// Winograd F(2×2, 3×3) / F(4×4, 3×3) convolution (native/executor/ops/winograd.cc) against a float64
// direct convolution, on every micro-kernel this CPU runs, both tile sizes, odd image sizes, every
// padding, channel counts that are not multiples of MR / NR, batch > 1, one thread and the pool, one
// block and many; then the conv op end to end (cached transformed weights, no large allocation in
// warm runs), the DerivedCache budget, and the output buffers recycled without zero-fill.
//
// Accuracy bound: the error of an output is measured against its float64 value, relative to
// Σ|x·w| + |b| over its 9·C terms (the scale of any fp32 summation's error). Observed maxima on
// x, w uniform in [-1, 1]: 2.1e-7 for m = 2 (like direct fp32 summation: the F(2,3) transforms are
// additions only) and 1.8e-6 for m = 4 (its transforms multiply by up to 8 and 1/24). The checks allow 1e-6 / 6e-6.
#include "alloc_counter.h"  // first: it replaces the global operator new
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "../executor/derived_cache.h"
#include "../executor/ops/winograd.h"
#include "../linalg/sgemm_kernels.h"
#include "../util/thread_pool.h"
#include "check.h"
#include "executor_test_util.h"

using namespace cmo::exec;
using namespace cmo::exec::testing;
using cmo::linalg::detail::GemmKernel;

namespace {

struct Case {
  int64_t N, C, H, W, O;
  int64_t pt, pb, pl, pr;  // padding: top, bottom, left, right
};

// Direct convolution in float64; `scale` gets Σ|x·w| + |b| per output.
std::vector<double> direct_conv(const Case& k, const std::vector<float>& x, const std::vector<float>& w,
                                const std::vector<float>& b, int64_t OH, int64_t OW, std::vector<double>& scale) {
  std::vector<double> y(static_cast<size_t>(k.N * k.O * OH * OW));
  scale.assign(y.size(), 0.0);
  for (int64_t n = 0; n < k.N; ++n)
    for (int64_t o = 0; o < k.O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double acc = b[static_cast<size_t>(o)], mag = std::fabs(acc);
          for (int64_t c = 0; c < k.C; ++c)
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 3; ++kx) {
                const int64_t iy = i - k.pt + ky, ix = j - k.pl + kx;
                if (iy < 0 || iy >= k.H || ix < 0 || ix >= k.W) continue;
                const double t = static_cast<double>(x[static_cast<size_t>(((n * k.C + c) * k.H + iy) * k.W + ix)]) *
                                 w[static_cast<size_t>(((o * k.C + c) * 3 + ky) * 3 + kx)];
                acc += t;
                mag += std::fabs(t);
              }
          const size_t at = static_cast<size_t>(((n * k.O + o) * OH + i) * OW + j);
          y[at] = acc;
          scale[at] = mag;
        }
  return y;
}

// Largest error relative to each output's term scale.
double winograd_error(const Case& k, const GemmKernel& kern, int m, unsigned threads, size_t block_bytes, uint32_t seed) {
  const int64_t OH = k.H + k.pt + k.pb - 2, OW = k.W + k.pl + k.pr - 2;
  auto x = random_floats(static_cast<size_t>(k.N * k.C * k.H * k.W), seed);
  auto w = random_floats(static_cast<size_t>(k.O * k.C * 9), seed + 1);
  auto b = random_floats(static_cast<size_t>(k.O), seed + 2);
  std::vector<double> scale;
  const std::vector<double> want = direct_conv(k, x, w, b, OH, OW, scale);
  winograd::Weights u;
  winograd::transform_weights(w.data(), k.O, k.C, m, kern, u, threads);
  const winograd::Geometry g{k.N, k.C, k.H, k.W, k.O, OH, OW, k.pt, k.pl};
  // Guard values around y: every output written, nothing past it.
  std::vector<float> y(want.size() + 64, std::nanf(""));
  for (size_t i = want.size(); i < y.size(); ++i) y[i] = 12345.0f;
  winograd::conv3x3(g, x.data(), u, b.data(), y.data(), threads, block_bytes);
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(static_cast<double>(y[i]) - want[i]) / scale[i];
    worst = std::isnan(e) ? 1e30 : std::max(worst, e);
  }
  for (size_t i = want.size(); i < y.size(); ++i) CHECK_EQ(y[i], 12345.0f);
  return worst;
}

}  // namespace

TEST(winograd_matches_float64_direct_conv_on_every_kernel) {
  const Case cases[] = {
      {1, 3, 7, 6, 4, 1, 1, 1, 1},      // odd sizes, 'same' padding, channels below MR / NR
      {2, 5, 9, 11, 7, 1, 1, 1, 1},     // batch 2: tiles of two images share micro-panels
      {1, 17, 10, 13, 33, 0, 0, 0, 0},  // 'valid'
      {1, 8, 8, 9, 13, 2, 0, 0, 2},     // asymmetric padding, wider than the kernel's reach on one side
      {3, 6, 5, 4, 5, 1, 2, 2, 1},      // images smaller than a 6×6 input tile
      {1, 1, 3, 3, 1, 0, 0, 0, 0},      // one output
      {2, 20, 21, 19, 24, 1, 1, 1, 1},  // many tiles: several micro-panels per block
      {1, 64, 32, 32, 64, 1, 1, 1, 1},  // past the one-thread threshold (8 M multiply-adds): the parallel paths
  };
  double worst2 = 0, worst4 = 0;
  const unsigned pool = cmo::ThreadPool::global()->size();
  for (const GemmKernel* kern : cmo::linalg::detail::runnable_kernels()) {
    uint32_t seed = 100;
    for (const Case& k : cases)
      for (int m : {2, 4})
        for (unsigned threads : {1u, pool}) {
          const double e = winograd_error(k, *kern, m, threads, 0, seed += 3);
          (m == 2 ? worst2 : worst4) = std::max(m == 2 ? worst2 : worst4, e);
          if (e > (m == 2 ? 1e-6 : 6e-6))
            std::fprintf(stderr, "  %s m=%d threads=%u case N%lld C%lld %lldx%lld O%lld: error %.3g\n", kern->name, m, threads,
                         static_cast<long long>(k.N), static_cast<long long>(k.C), static_cast<long long>(k.H),
                         static_cast<long long>(k.W), static_cast<long long>(k.O), e);
        }
  }
  std::printf("  winograd error / Σ|x·w|: F(2,3) %.3g, F(4,3) %.3g\n", worst2, worst4);
  CHECK(worst2 < 1e-6);
  CHECK(worst4 < 6e-6);
}

TEST(winograd_many_blocks_and_threads_agree_with_one_block) {
  // A tiny block budget: one micro-panel per block, so the conv runs dozens of blocks — serially,
  // phase-parallel (fewer blocks than 2× threads) or block-parallel (more). Same error bound.
  // (Big enough to pass the one-thread threshold of 8 M multiply-adds, so 2 and 3 threads split it.)
  const Case k{2, 64, 23, 17, 64, 1, 1, 1, 1};
  for (const GemmKernel* kern : cmo::linalg::detail::runnable_kernels())
    for (int m : {2, 4})
      for (unsigned threads : {1u, 2u, 3u}) CHECK(winograd_error(k, *kern, m, threads, 1, 7) < (m == 2 ? 1e-6 : 6e-6));
}

TEST(choose_tile_prefers_winograd_only_where_it_pays) {
  const GemmKernel& kern = winograd::default_kernel();
  // SD's ResNet convs at a 16×16 latent and a VAE's at 64×64: Winograd.
  CHECK(winograd::choose_tile({1, 320, 16, 16, 320, 16, 16, 1, 1}, kern) != 0);
  CHECK(winograd::choose_tile({1, 512, 64, 64, 512, 64, 64, 1, 1}, kern) != 0);
  CHECK_EQ(winograd::choose_tile({1, 3, 64, 64, 64, 64, 64, 1, 1}, kern), 0);  // RGB in: the transforms cost more than they save
  CHECK_EQ(winograd::choose_tile({1, 2, 8, 8, 2, 8, 8, 1, 1}, kern), 0);
}

namespace {

GraphDesc conv_graph(int64_t C, int64_t O, int64_t H, int64_t W, const std::vector<float>& w, const std::vector<float>& b) {
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"x", {"fp32", {1, C, H, W}, true}}};
  d.block.ops.push_back(const_op("w", floats({O, C, 3, 3}, w)));
  d.block.ops.push_back(const_op("b", floats({O}, b)));
  d.block.ops.push_back(make_op("conv", "y",
                                {{"x", {name_of("x")}},
                                 {"weight", {name_of("w")}},
                                 {"bias", {name_of("b")}},
                                 {"pad_type", {val(string_value("same"))}}}));
  d.block.outputs = {"y"};
  return d;
}

}  // namespace

TEST(conv_op_runs_winograd_with_weights_transformed_once) {
  if (!winograd::enabled()) return;  // COREML_OPTIMIZE_WINOGRAD=0
  const int64_t C = 64, O = 64, H = 20, W = 20;
  auto w = random_floats(static_cast<size_t>(O * C * 9), 31);
  auto b = random_floats(static_cast<size_t>(O), 32);
  auto x = random_floats(static_cast<size_t>(C * H * W), 33);
  const winograd::Geometry g{1, C, H, W, O, H, W, 1, 1};
  const GemmKernel& kern = winograd::default_kernel();
  const int m = winograd::choose_tile(g, kern);
  CHECK(m != 0);
  if (m == 0) return;
  // What the op must produce, bit for bit, if it takes the Winograd path (im2col sums differently).
  winograd::Weights u;
  winograd::transform_weights(w.data(), O, C, m, kern, u, 1);
  std::vector<float> want(static_cast<size_t>(O * H * W));
  winograd::conv3x3(g, x.data(), u, b.data(), want.data(), 1);
  auto graph = Graph::build(conv_graph(C, O, H, W, w, b));
  RunOptions opts;
  opts.threads = 1;
  const std::vector<FeatureValue> in{{"x", input_f32({1, C, H, W}, x)}};
  for (int run = 0; run < 3; ++run) {
    const long before = g_big_allocs.load();
    std::vector<FeatureValue> out = graph->run(in, opts);
    const long made = g_big_allocs.load() - before;
    const Tensor& y = out.at(0).tensor;
    CHECK((y.shape == Shape{1, O, H, W}));
    size_t same = 0;
    for (size_t i = 0; i < want.size(); ++i) same += y.fdata()[i] == want[i];
    CHECK_EQ(same, want.size());
    // Run 0 transforms the weights (and grows the block buffers); from run 2 on nothing large is allocated.
    if (run == 2) CHECK_EQ(made, 0L);
  }
}

TEST(buffer_pool_hands_out_recycled_buffers_for_overwrite_without_zeroing) {
  // conv's output (Tensor::f32_for_overwrite) skips the zero-fill of a recycled buffer; plain f32 keeps it.
  auto pool = std::make_shared<BufferPool>();
  const float* first = nullptr;
  {
    std::shared_ptr<float> a = pool->take(5000);
    first = a.get();
    a.get()[7] = 3.5f;
  }  // back to the pool
  {
    std::shared_ptr<float> b = pool->take(5000, false);
    CHECK(b.get() == first);
    CHECK_EQ(b.get()[7], 3.5f);
  }
  std::shared_ptr<float> c = pool->take(5000);
  CHECK(c.get() == first);
  CHECK_EQ(c.get()[7], 0.0f);
}

TEST(derived_cache_builds_once_within_its_budget) {
  auto budget = std::make_shared<DerivedBudget>(1000);
  DerivedCache a(budget), b(budget);
  int built = 0;
  auto make = [&] {
    ++built;
    return std::make_shared<int>(built);
  };
  auto first = a.get<int>("k", 600, make);
  auto again = a.get<int>("k", 600, make);
  CHECK(first && again && first.get() == again.get());
  CHECK_EQ(built, 1);
  CHECK(b.get<int>("k", 600, make) == nullptr);  // 600 + 600 > 1000: the second tensor's entry does not fit
  CHECK_EQ(built, 1);
  CHECK(b.get<int>("other", 400, make) != nullptr);
  CHECK_EQ(built, 2);
  // A failed build gives its bytes back.
  auto budget2 = std::make_shared<DerivedBudget>(100);
  DerivedCache c(budget2);
  bool threw = false;
  try {
    c.get<int>("x", 100, []() -> std::shared_ptr<int> { throw std::runtime_error("no"); });
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CHECK(threw);
  CHECK(c.get<int>("x", 100, [] { return std::make_shared<int>(7); }) != nullptr);
  // A cache without a budget (none attached) never stores.
  DerivedCache none(nullptr);
  CHECK(none.get<int>("x", 1, [] { return std::make_shared<int>(1); }) == nullptr);
}

CMO_TEST_MAIN()
