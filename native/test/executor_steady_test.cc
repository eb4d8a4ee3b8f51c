// Steady state: after two warm-up runs, a single-threaded run of a small conv / GEMM / softmax / reduce
// network makes no large heap allocation (intermediates come back from the graph's BufferPool; im2col, packing and
// attention buffers are reused per thread). Counted by replacing the global operator new.
#include "alloc_counter.h"  // first: it replaces the global operator new
#include <atomic>
#include <cstdlib>
#include <new>

#include "check.h"
#include "executor_test_util.h"

using namespace cmo::exec;
using namespace cmo::exec::testing;

TEST(warm_runs_make_no_large_allocation) {
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"x", {"fp32", {1, 16, 24, 24}, true}}};
  d.block.ops.push_back(const_op("w", floats({32, 16, 3, 3}, random_floats(32 * 16 * 9, 1))));
  d.block.ops.push_back(const_op("lw", floats({64, 576}, random_floats(64 * 576, 2))));
  d.block.ops.push_back(make_op("conv", "c",
                                {{"x", {name_of("x")}}, {"weight", {name_of("w")}}, {"pad_type", {val(string_value("same"))}}}));
  d.block.ops.push_back(make_op("silu", "s", {{"x", {name_of("c")}}}));
  d.block.ops.push_back(make_op("reshape", "r", {{"x", {name_of("s")}}, {"shape", {val(ints1({1, 32, 576}))}}}));
  d.block.ops.push_back(make_op("linear", "l", {{"x", {name_of("r")}}, {"weight", {name_of("lw")}}}));
  d.block.ops.push_back(make_op("softmax", "p", {{"x", {name_of("l")}}, {"axis", {val(scalar_i(-1))}}}));
  d.block.ops.push_back(make_op("reduce_mean", "m", {{"x", {name_of("p")}}, {"axes", {val(ints1({1}))}}}));
  d.block.outputs = {"m"};
  auto g = Graph::build(d);
  std::vector<FeatureValue> in{{"x", input_f32({1, 16, 24, 24}, random_floats(16 * 24 * 24, 3))}};
  double first = 0;
  for (int run = 0; run < 4; ++run) {
    const long before = g_big_allocs.load();
    // One thread: the per-thread buffers belong to this thread only. (With a pool, a worker that
    // first gets a GEMM or im2col chunk in a later run grows its own buffer then: bounded, once per
    // thread, but not deterministic enough to count.)
    RunOptions opts;
    opts.threads = 1;
    std::vector<FeatureValue> out = g->run(in, opts);
    const long made = g_big_allocs.load() - before;
    CHECK((out.at(0).tensor.shape == Shape{1, 64}));
    if (run == 0) {
      first = out[0].tensor.fdata()[0];
      CHECK(made > 0);  // the counter works: the first run allocates its buffers
    } else {
      CHECK_EQ(out[0].tensor.fdata()[0], first);
    }
    if (run >= 2) CHECK_EQ(made, 0L);
  }
}

CMO_TEST_MAIN()
