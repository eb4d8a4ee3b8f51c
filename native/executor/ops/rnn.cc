// gru (iOS15 definition + iOS18 reset_after / input_bias) and rnn. Gate layout of gru weights is
// [r | o | z] (reset, output/new, update). As in coremltools' reference (ops/tests test_recurrent.py),
// direction = "reverse" walks the sequence backwards and emits the outputs in processing order.
#include <cmath>

#include "common.h"
#include "gemm.h"

namespace cmo::exec {
namespace {

using Act = float (*)(float);

Act rnn_activation(OpContext& c, const char* param, const char* dflt) {
  std::string a = c.str(param, dflt);
  if (a == "sigmoid") return [](float v) { return static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(v)))); };
  if (a == "tanh" || a == "scaled_tanh") return [](float v) { return std::tanh(v); };  // scaled_tanh defaults: alpha = beta = 1
  if (a == "relu") return [](float v) { return v > 0 ? v : 0.f; };
  if (a == "linear") return [](float v) { return v; };
  if (a == "sigmoid_hard" || a == "hard_sigmoid") return [](float v) { return std::min(1.f, std::max(0.f, 0.2f * v + 0.5f)); };
  c.fail(std::string(param) + " '" + a + "' is not supported (sigmoid, tanh, scaled_tanh, relu, linear, sigmoid_hard)");
}

struct Seq {
  Tensor x;
  int64_t S, B, I, H;
  bool reverse, output_sequence;
};

Seq sequence(OpContext& c, int64_t gates) {
  Seq s;
  s.x = as_f32(c.in("x"));
  if (s.x.rank() != 3) c.fail("x must be [seq, batch, input]");
  s.S = s.x.shape[0], s.B = s.x.shape[1], s.I = s.x.shape[2];
  const Tensor& whh = c.in("weight_hh");
  s.H = whh.rank() == 2 ? whh.shape[1] : 0;
  if (c.in("weight_ih").shape != Shape{gates * s.H, s.I} || whh.shape != Shape{gates * s.H, s.H})
    c.fail("weights must be weight_ih [" + std::to_string(gates) + "H, I] and weight_hh [" + std::to_string(gates) + "H, H]");
  std::string dir = c.str("direction", "forward");
  if (dir != "forward" && dir != "reverse") c.fail("direction must be forward or reverse, got '" + dir + "'");
  s.reverse = dir == "reverse";
  s.output_sequence = c.flag("output_sequence", false);
  if (c.in("initial_h").size() != s.B * s.H) c.fail("initial_h must be [batch, H]");
  return s;
}

std::vector<float> vec_or_zero(OpContext& c, const char* param, int64_t n) {
  if (!c.has(param)) return std::vector<float>(static_cast<size_t>(n), 0.f);
  Tensor t = as_f32(c.in(param));
  if (t.size() != n) c.fail(std::string(param) + " must have " + std::to_string(n) + " elements");
  return std::vector<float>(t.fdata(), t.fdata() + n);
}

void emit(OpContext& c, const Seq& s, Tensor& ys, const std::vector<float>& h) {
  Tensor h_last = Tensor::f32({s.B, s.H});
  std::copy(h.begin(), h.end(), h_last.fdata());
  if (s.output_sequence) c.set(0, std::move(ys));
  else c.set(0, h_last.reshaped({1, s.B, s.H}));
  if (c.num_outputs() > 1) c.set(1, std::move(h_last));
}

void k_gru(OpContext& c) {
  Seq s = sequence(c, 3);
  const int64_t S = s.S, B = s.B, I = s.I, H = s.H;
  Tensor wih = as_f32(c.in("weight_ih")), whh = as_f32(c.in("weight_hh"));
  std::vector<float> bias = vec_or_zero(c, "bias", 3 * H), in_bias = vec_or_zero(c, "input_bias", 3 * H);
  const bool reset_after = c.flag("reset_after", false);
  Act rec = rnn_activation(c, "recurrent_activation", "sigmoid");
  Act act = rnn_activation(c, "activation", "tanh");
  Tensor h0 = as_f32(c.in("initial_h"));
  std::vector<float> h(h0.fdata(), h0.fdata() + B * H);
  std::vector<float> gx(static_cast<size_t>(B * 3 * H)), gh(static_cast<size_t>(B * 3 * H)), rh(static_cast<size_t>(B * H));
  Tensor ys = Tensor::f32({S, B, H});
  for (int64_t step = 0; step < S; ++step) {
    const int64_t t = s.reverse ? S - 1 - step : step;
    // gx = x_t W_ih^T + input_bias; gh = h W_hh^T + bias (r and z rows; o handled below).
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < 3 * H; ++g) gx[b * 3 * H + g] = in_bias[g], gh[b * 3 * H + g] = bias[g];
    gemm(c.threads(), false, true, B, 3 * H, I, 1.f, s.x.fdata() + t * B * I, I, wih.fdata(), I, 1.f, gx.data(), 3 * H);
    gemm(c.threads(), false, true, B, 3 * H, H, 1.f, h.data(), H, whh.fdata(), H, 1.f, gh.data(), 3 * H);
    std::vector<float> r(static_cast<size_t>(B * H));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < H; ++k) {
        r[b * H + k] = rec(gx[b * 3 * H + k] + gh[b * 3 * H + k]);
        rh[b * H + k] = r[b * H + k] * h[b * H + k];
      }
    std::vector<float> ho(static_cast<size_t>(B * H));  // the o-gate's recurrent term
    if (reset_after) {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < H; ++k) ho[b * H + k] = r[b * H + k] * gh[b * 3 * H + H + k];
    } else {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < H; ++k) ho[b * H + k] = bias[H + k];
      gemm(c.threads(), false, true, B, H, H, 1.f, rh.data(), H, whh.fdata() + H * H, H, 1.f, ho.data(), H);
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < H; ++k) {
        float z = rec(gx[b * 3 * H + 2 * H + k] + gh[b * 3 * H + 2 * H + k]);
        float o = act(gx[b * 3 * H + H + k] + ho[b * H + k]);
        float hn = (1 - z) * o + z * h[b * H + k];
        h[b * H + k] = hn;
        ys.fdata()[(step * B + b) * H + k] = hn;
      }
  }
  emit(c, s, ys, h);
}

void k_rnn(OpContext& c) {
  Seq s = sequence(c, 1);
  const int64_t S = s.S, B = s.B, I = s.I, H = s.H;
  Tensor wih = as_f32(c.in("weight_ih")), whh = as_f32(c.in("weight_hh"));
  std::vector<float> bias = vec_or_zero(c, "bias", H);
  Act act = rnn_activation(c, "activation", "tanh");
  Tensor h0 = as_f32(c.in("initial_h"));
  std::vector<float> h(h0.fdata(), h0.fdata() + B * H), g(static_cast<size_t>(B * H));
  Tensor ys = Tensor::f32({S, B, H});
  for (int64_t step = 0; step < S; ++step) {
    const int64_t t = s.reverse ? S - 1 - step : step;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < H; ++k) g[b * H + k] = bias[k];
    gemm(c.threads(), false, true, B, H, I, 1.f, s.x.fdata() + t * B * I, I, wih.fdata(), I, 1.f, g.data(), H);
    gemm(c.threads(), false, true, B, H, H, 1.f, h.data(), H, whh.fdata(), H, 1.f, g.data(), H);
    for (int64_t k = 0; k < B * H; ++k) h[k] = act(g[k]);
    std::copy(h.begin(), h.end(), ys.fdata() + step * B * H);
  }
  emit(c, s, ys, h);
}

}  // namespace

void register_rnn_ops() {
  register_kernel("gru", k_gru);
  register_kernel("rnn", k_rnn);
}

}  // namespace cmo::exec
