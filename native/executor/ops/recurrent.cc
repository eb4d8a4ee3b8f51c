// lstm (iOS15 definition): gates in [input, forget, output, cell] order ("ifoz"), optional peephole
// (ifo), forward / reverse / bidirectional, output_sequence, clip (of the cell state, as coremltools'
// numpy reference does). One time step at a time: gates = x_t·W_ih^T + h·W_hh^T + bias through sgemm,
// then the elementwise cell update. Output order follows coremltools' tests (test_recurrent.py):
// "reverse" emits steps in processing order; the backward half of "bidirectional" in time order.
#include <cmath>

#include "common.h"
#include "gemm.h"

namespace cmo::exec {
namespace {

using Act = float (*)(float);

Act activation(OpContext& c, const char* param, const char* dflt) {
  std::string a = c.str(param, dflt);
  if (a == "sigmoid") return [](float v) { return static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(v)))); };
  if (a == "tanh" || a == "scaled_tanh") return [](float v) { return std::tanh(v); };  // scaled_tanh: alpha = beta = 1
  if (a == "sigmoid_hard" || a == "hard_sigmoid") return [](float v) { return std::min(1.f, std::max(0.f, 0.2f * v + 0.5f)); };
  if (a == "relu") return [](float v) { return v > 0 ? v : 0.f; };
  if (a == "linear") return [](float v) { return v; };
  c.fail(std::string(param) + " '" + a + "' is not supported (sigmoid, tanh, scaled_tanh, relu, linear, sigmoid_hard)");
}

struct Direction {
  Tensor w_ih, w_hh, bias, peep;
  bool has_bias = false, has_peep = false;
};

// Runs one direction over the sequence; writes h_t into y[t, :, offset : offset + H] when y is set.
void run_direction(OpContext& c, const Tensor& x, const Direction& d, bool reverse, bool time_order, int64_t H, int64_t offset,
                   int64_t out_width, const float* h0, const float* c0, float* y, float* h_last, float* c_last) {
  const int64_t S = x.shape[0], B = x.shape[1], I = x.shape[2];
  Act rec = activation(c, "recurrent_activation", "sigmoid");
  Act cell = activation(c, "cell_activation", "tanh");
  Act out_act = activation(c, "activation", "tanh");
  const bool clip = c.has("clip");
  const float clip_v = clip ? static_cast<float>(c.num("clip")) : 0.f;
  std::vector<float> h(h0, h0 + B * H), cs(c0, c0 + B * H), gates(static_cast<size_t>(B * 4 * H));
  for (int64_t step = 0; step < S; ++step) {
    int64_t t = reverse ? S - 1 - step : step;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < 4 * H; ++g) gates[b * 4 * H + g] = d.has_bias ? d.bias.fdata()[g] : 0.f;
    gemm(c.threads(), false, true, B, 4 * H, I, 1.f, x.fdata() + t * B * I, I, d.w_ih.fdata(), I, 1.f, gates.data(), 4 * H);
    gemm(c.threads(), false, true, B, 4 * H, H, 1.f, h.data(), H, d.w_hh.fdata(), H, 1.f, gates.data(), 4 * H);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < H; ++k) {
        float* gb = gates.data() + b * 4 * H;
        float cp = cs[b * H + k];
        float gi = gb[k], gf = gb[H + k], go = gb[2 * H + k], gz = gb[3 * H + k];
        if (d.has_peep) {
          gi += d.peep.fdata()[k] * cp;
          gf += d.peep.fdata()[H + k] * cp;
        }
        float i_t = rec(gi), f_t = rec(gf), z_t = cell(gz);
        float c_t = f_t * cp + i_t * z_t;
        if (clip) c_t = std::min(std::max(c_t, -clip_v), clip_v);
        if (d.has_peep) go += d.peep.fdata()[2 * H + k] * c_t;
        float h_t = rec(go) * out_act(c_t);
        cs[b * H + k] = c_t;
        h[b * H + k] = h_t;
        if (y) y[((time_order ? t : step) * B + b) * out_width + offset + k] = h_t;
      }
  }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < H; ++k) {
      h_last[b * out_width + offset + k] = h[b * H + k];
      c_last[b * out_width + offset + k] = cs[b * H + k];
    }
}

void k_lstm(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() != 3) c.fail("x must be [seq, batch, input]");
  const int64_t S = x.shape[0], B = x.shape[1], I = x.shape[2];
  std::string dir = c.str("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional") c.fail("unknown direction '" + dir + "'");
  const int64_t D = dir == "bidirectional" ? 2 : 1;
  auto load = [&](const char* wih, const char* whh, const char* bias, const char* peep) {
    Direction d;
    d.w_ih = as_f32(c.in(wih));
    d.w_hh = as_f32(c.in(whh));
    if (c.has(bias)) d.bias = as_f32(c.in(bias)), d.has_bias = true;
    if (c.has(peep)) d.peep = as_f32(c.in(peep)), d.has_peep = true;
    return d;
  };
  Direction fwd = load("weight_ih", "weight_hh", "bias", "peephole");
  const int64_t H = fwd.w_hh.rank() == 2 ? fwd.w_hh.shape[1] : 0;
  auto check = [&](const Direction& d) {
    if (d.w_ih.shape != Shape{4 * H, I} || d.w_hh.shape != Shape{4 * H, H} || (d.has_bias && d.bias.size() != 4 * H) ||
        (d.has_peep && d.peep.size() != 3 * H))
      c.fail("weights must be weight_ih [4H, I], weight_hh [4H, H], bias [4H], peephole [3H]");
  };
  check(fwd);
  Tensor h0 = as_f32(c.in("initial_h")), c0 = as_f32(c.in("initial_c"));
  if (h0.size() != B * D * H || c0.size() != B * D * H) c.fail("initial_h/initial_c must be [batch, directions*H]");
  const bool seq = c.flag("output_sequence", false);
  const int64_t W = D * H;
  Tensor y_all = Tensor::f32({S, B, W});
  Tensor h_last = Tensor::f32({B, W}), c_last = Tensor::f32({B, W});
  // Per-direction initial state slices ([b, :H] forward, [b, H:] backward).
  auto slice = [&](const Tensor& t, int64_t off) {
    std::vector<float> v(static_cast<size_t>(B * H));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < H; ++k) v[b * H + k] = t.fdata()[b * W + off + k];
    return v;
  };
  auto h0f = slice(h0, 0), c0f = slice(c0, 0);
  run_direction(c, x, fwd, dir == "reverse", false, H, 0, W, h0f.data(), c0f.data(), y_all.fdata(), h_last.fdata(), c_last.fdata());
  if (D == 2) {
    Direction bwd = load("weight_ih_back", "weight_hh_back", "bias_back", "peephole_back");
    check(bwd);
    auto h0b = slice(h0, H), c0b = slice(c0, H);
    run_direction(c, x, bwd, true, true, H, H, W, h0b.data(), c0b.data(), y_all.fdata(), h_last.fdata(), c_last.fdata());
  }
  if (seq) {
    c.set(0, std::move(y_all));
  } else {
    // The final step of each direction: forward at t = S-1, backward at t = 0 (= h_last).
    c.set(0, h_last.reshaped({1, B, W}));
  }
  if (c.num_outputs() > 1) c.set(1, h_last);
  if (c.num_outputs() > 2) c.set(2, std::move(c_last));
}

}  // namespace

void register_recurrent_ops() { register_kernel("lstm", k_lstm); }

}  // namespace cmo::exec
