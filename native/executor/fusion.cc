#include "fusion.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <unordered_map>

#include "ops/attention.h"
#include "ops/vecmath.h"

namespace cmo::exec {

bool fusion_enabled() {
  const char* v = std::getenv("COREML_OPTIMIZE_FUSION");
  return !v || (std::strcmp(v, "0") != 0 && std::strcmp(v, "off") != 0);
}

namespace {

void count_uses(const Block& b, std::vector<int>& uses) {
  for (const Node& n : b.nodes) {
    for (const auto& in : n.inputs)
      for (int s : in.second) ++uses[static_cast<size_t>(s)];
    for (const auto& nb : n.blocks) count_uses(*nb, uses);
  }
  for (int s : b.outputs) ++uses[static_cast<size_t>(s)];  // block / function outputs are uses too
}

class Fuser {
 public:
  Fuser(FusionEnv& env, const std::vector<int>& uses) : env_(env), uses_(uses) {}

  int run(Block& b) {
    int fused = 0;
    for (Node& n : b.nodes)
      for (auto& nb : n.blocks) fused += run(*nb);
    // The op that uses each slot in this block (a slot used once has one entry).
    consumer_.clear();
    for (size_t k = 0; k < b.nodes.size(); ++k)
      for (const auto& in : b.nodes[k].inputs)
        for (int s : in.second) consumer_[s] = k;
    removed_.clear();
    replaced_.clear();
    for (size_t k = 0; k < b.nodes.size(); ++k) {
      if (removed_.count(k)) continue;
      const Node& n = b.nodes[k];
      if (n.type == "matmul") fused += try_attention(b, k);
      else if (n.type == "mul") fused += try_quick_gelu(b, k) || try_channel_affine(b, k);
      else if (n.type == "gelu" || n.type == "sigmoid") fused += try_gated(b, k);
      else if (n.type == "batch_norm") fused += try_norm_act(b, k);
      else if (n.type == "reduce_mean") fused += try_group_norm(b, k);
    }
    if (removed_.empty()) return fused;
    std::vector<Node> out;
    out.reserve(b.nodes.size() - removed_.size());
    for (size_t k = 0; k < b.nodes.size(); ++k) {
      auto it = replaced_.find(k);
      if (it != replaced_.end()) out.push_back(std::move(it->second));
      else if (!removed_.count(k)) out.push_back(std::move(b.nodes[k]));
    }
    b.nodes = std::move(out);
    return fused;
  }

 private:
  // ---- lookups ----
  static int input_slot(const Node& n, const char* param) {
    for (const auto& in : n.inputs)
      if (in.first == param && in.second.size() == 1) return in.second[0];
    return -1;
  }
  bool is_plain(const Node& n) const { return n.kernel && n.blocks.empty() && n.outputs.size() == 1 && n.unfused.empty(); }
  // The node index of the single use of slot s in this block, or npos (several uses, an output, none here).
  size_t sole_consumer(const Block& b, int s) const {
    if (s < 0 || uses_[static_cast<size_t>(s)] != 1) return npos;
    auto it = consumer_.find(s);
    if (it == consumer_.end() || removed_.count(it->second)) return npos;
    return is_plain(b.nodes[it->second]) ? it->second : npos;
  }
  // A constant scalar's value (false when s is not a one-element numeric constant).
  bool const_scalar(int s, double& v) const {
    if (s < 0 || !env_.is_const[static_cast<size_t>(s)]) return false;
    const Tensor& t = env_.constants[static_cast<size_t>(s)];
    if (t.size() != 1 || t.dtype == DType::Str || (!t.f && !t.h && !t.i)) return false;
    v = t.at(0);
    return true;
  }
  // A constant bool parameter; absent = dflt. False when it is present but not a constant.
  bool const_flag(const Node& n, const char* param, bool dflt, bool& out) const {
    bool present = false;
    for (const auto& in : n.inputs) present = present || in.first == param;
    if (!present) {
      out = dflt;
      return true;
    }
    double v;
    if (!const_scalar(input_slot(n, param), v)) return false;
    out = v != 0;
    return true;
  }
  // The other operand of a binary op whose operand `s` is given (x or y), or -1.
  static int other_operand(const Node& n, int s) {
    const int x = input_slot(n, "x"), y = input_slot(n, "y");
    if (x == s && y != s) return y;
    if (y == s && x != s) return x;
    return -1;
  }
  int param_const(Tensor t) { return env_.add_constant(std::move(t)); }

  Node make_fused(const Block& b, const std::vector<size_t>& chain, const char* type, Kernel kernel) {
    const Node& last = b.nodes[chain.back()];
    Node f;
    f.type = type;
    f.name = last.name;
    f.kernel = kernel;
    f.outputs = last.outputs;
    f.output_types = last.output_types;
    for (size_t k : chain) f.unfused.push_back(b.nodes[k]);
    return f;
  }
  void commit(std::vector<size_t> chain, Node fused) {
    for (size_t k : chain) removed_.insert(k);
    replaced_.emplace(chain.back(), std::move(fused));
  }

  // ---- attention: matmul → [mul|real_div scalar] → [add mask] → softmax(-1) → matmul ----
  int try_attention(const Block& b, size_t k1) {
    const Node& m1 = b.nodes[k1];
    if (!is_plain(m1)) return 0;
    bool tx = false, ty = false;
    if (!const_flag(m1, "transpose_x", false, tx) || !const_flag(m1, "transpose_y", false, ty) || tx) return 0;
    const int q = input_slot(m1, "x"), kk = input_slot(m1, "y");
    // Attention multiplies activations; a matmul by a constant is a weight layer (calibration watches
    // those by name: they must stay visible as ops).
    if (q < 0 || kk < 0 || env_.is_const[static_cast<size_t>(q)] || env_.is_const[static_cast<size_t>(kk)]) return 0;
    std::vector<size_t> chain{k1};
    int cur = m1.outputs[0];
    double scale = 1.0;
    int mask = -1;
    size_t n = sole_consumer(b, cur);
    if (n == npos) return 0;
    if (b.nodes[n].type == "mul" || b.nodes[n].type == "real_div") {
      const Node& op = b.nodes[n];
      double c;
      const int other = other_operand(op, cur);
      if (op.type == "real_div" && input_slot(op, "x") != cur) return 0;
      if (!const_scalar(other, c) || (op.type == "real_div" && c == 0)) return 0;
      scale = op.type == "mul" ? c : 1.0 / c;
      chain.push_back(n);
      cur = op.outputs[0];
      if ((n = sole_consumer(b, cur)) == npos) return 0;
    }
    if (b.nodes[n].type == "add") {
      mask = other_operand(b.nodes[n], cur);
      if (mask < 0) return 0;
      chain.push_back(n);
      cur = b.nodes[n].outputs[0];
      if ((n = sole_consumer(b, cur)) == npos) return 0;
    }
    const Node& sm = b.nodes[n];
    if (sm.type != "softmax" || input_slot(sm, "x") != cur) return 0;
    double axis = -1;
    bool has_axis = false;
    for (const auto& in : sm.inputs) has_axis = has_axis || in.first == "axis";
    if (has_axis && !const_scalar(input_slot(sm, "axis"), axis)) return 0;
    if (axis != -1) {
      const TypeDesc& t = env_.types[static_cast<size_t>(cur)];
      if (!t.rank_known || axis != static_cast<double>(t.shape.size()) - 1) return 0;
    }
    chain.push_back(n);
    cur = sm.outputs[0];
    if ((n = sole_consumer(b, cur)) == npos) return 0;
    const Node& m2 = b.nodes[n];
    bool tx2 = false, ty2 = false;
    if (m2.type != "matmul" || input_slot(m2, "x") != cur || !const_flag(m2, "transpose_x", false, tx2) ||
        !const_flag(m2, "transpose_y", false, ty2) || tx2)
      return 0;
    const int v = input_slot(m2, "y");
    if (v < 0 || v == cur || env_.is_const[static_cast<size_t>(v)]) return 0;
    chain.push_back(n);
    Node f = make_fused(b, chain, "fused_attention", fused_attention_kernel);
    f.inputs = {{"query", {q}}, {"key", {kk}}, {"value", {v}}};
    if (mask >= 0) f.inputs.push_back({"attn_mask", {mask}});
    f.inputs.push_back({"scale", {param_const(Tensor::scalar_f32(static_cast<float>(scale)))}});
    f.inputs.push_back({"key_transposed", {param_const(Tensor::scalar_i32(ty ? 0 : 1))}});
    f.inputs.push_back({"value_transposed", {param_const(Tensor::scalar_i32(ty2 ? 1 : 0))}});
    // Checked again at run time against the scores' actual rank (the declared one is what matched here).
    f.inputs.push_back({"softmax_axis", {param_const(Tensor::scalar_i32(static_cast<int32_t>(axis)))}});
    commit(std::move(chain), std::move(f));
    return 1;
  }

  Node activation_node(const Block& b, std::vector<size_t> chain, int x, int gate, vec::Act act, double alpha) {
    Node f = make_fused(b, chain, "fused_activation", fused_activation_kernel);
    f.inputs = {{"x", {x}}};
    if (gate >= 0) f.inputs.push_back({"gate", {gate}});
    f.inputs.push_back({"act", {param_const(Tensor::scalar_i32(static_cast<int32_t>(act)))}});
    f.inputs.push_back({"alpha", {param_const(Tensor::scalar_f32(static_cast<float>(alpha)))}});
    return f;
  }

  // ---- quick_gelu: mul(h, c) → sigmoid → mul(h, ·) ----
  int try_quick_gelu(const Block& b, size_t k1) {
    const Node& m1 = b.nodes[k1];
    if (!is_plain(m1)) return 0;
    const int x = input_slot(m1, "x"), y = input_slot(m1, "y");
    double c;
    int h;
    if (const_scalar(y, c) && !env_.is_const[static_cast<size_t>(x)]) h = x;
    else if (const_scalar(x, c) && y >= 0 && !env_.is_const[static_cast<size_t>(y)]) h = y;
    else return 0;
    if (h < 0) return 0;
    const size_t ks = sole_consumer(b, m1.outputs[0]);
    if (ks == npos || b.nodes[ks].type != "sigmoid") return 0;
    const size_t km = sole_consumer(b, b.nodes[ks].outputs[0]);
    if (km == npos || b.nodes[km].type != "mul" || other_operand(b.nodes[km], b.nodes[ks].outputs[0]) != h) return 0;
    std::vector<size_t> chain{k1, ks, km};
    commit(chain, activation_node(b, chain, h, -1, vec::Act::GeluSigmoid, c));
    return 1;
  }

  // ---- gelu(b) → mul(a, ·) and sigmoid(x) → mul(x, ·) ----
  int try_gated(const Block& b, size_t k1) {
    const Node& a = b.nodes[k1];
    if (!is_plain(a)) return 0;
    const int x = input_slot(a, "x");
    if (x < 0) return 0;
    vec::Act act;
    if (a.type == "sigmoid") {
      act = vec::Act::Sigmoid;
    } else {
      std::string mode = "EXACT";
      for (const auto& in : a.inputs)
        if (in.first == "mode") {
          const int s = in.second.empty() ? -1 : in.second[0];
          if (s < 0 || !env_.is_const[static_cast<size_t>(s)]) return 0;
          const Tensor& t = env_.constants[static_cast<size_t>(s)];
          if (t.dtype != DType::Str || t.s->size() != 1) return 0;
          mode = (*t.s)[0];
        }
      if (mode == "EXACT") act = vec::Act::GeluExact;
      else if (mode == "TANH_APPROXIMATION") act = vec::Act::GeluTanh;
      else if (mode == "SIGMOID_APPROXIMATION") act = vec::Act::GeluSigmoid;
      else return 0;
    }
    const size_t km = sole_consumer(b, a.outputs[0]);
    if (km == npos || b.nodes[km].type != "mul") return 0;
    const int gate = other_operand(b.nodes[km], a.outputs[0]);
    if (gate < 0) return 0;
    std::vector<size_t> chain{k1, km};
    if (a.type == "sigmoid") {
      if (gate != x) return 0;  // sigmoid(x)·x = silu(x); any other product stays as it is
      commit(chain, activation_node(b, chain, x, -1, vec::Act::Silu, 1.0));
    } else {
      commit(chain, activation_node(b, chain, x, gate, act, 1.702));
    }
    return 1;
  }

  // ---- batch_norm → silu ----
  int try_norm_act(const Block& b, size_t k1) {
    const Node& bn = b.nodes[k1];
    if (!is_plain(bn)) return 0;
    const size_t ka = sole_consumer(b, bn.outputs[0]);
    if (ka == npos || b.nodes[ka].type != "silu") return 0;
    std::vector<size_t> chain{k1, ka};
    Node f = make_fused(b, chain, "fused_batch_norm_silu", fused_batch_norm_act_kernel);
    f.inputs = bn.inputs;
    f.inputs.push_back({"act", {param_const(Tensor::scalar_i32(static_cast<int32_t>(vec::Act::Silu)))}});
    commit(std::move(chain), std::move(f));
    return 1;
  }

  // Every op of this block that reads slot s (one entry per reading op).
  std::vector<size_t> consumers(const Block& b, int s) const {
    std::vector<size_t> out;
    for (size_t k = 0; k < b.nodes.size(); ++k)
      for (const auto& in : b.nodes[k].inputs)
        if (std::find(in.second.begin(), in.second.end(), s) != in.second.end()) {
          out.push_back(k);
          break;
        }
    return out;
  }
  bool const_ints(int s, std::vector<int64_t>& v) const {
    if (s < 0 || !env_.is_const[static_cast<size_t>(s)]) return false;
    const Tensor& t = env_.constants[static_cast<size_t>(s)];
    if (!t.is_int()) return false;
    v.clear();
    for (int64_t i = 0; i < t.size(); ++i) v.push_back(static_cast<int64_t>(t.at(i)));
    return true;
  }

  // ---- group norm statistics as coremltools (and convert/layers.ts) lower torch's GroupNorm ----
  //   m = reduce_mean(x, axes, keep) → d = sub(x, m) → square(d) → reduce_mean(·, axes, keep)
  //   → add(·, eps) → sqrt → real_div(d, ·)
  // d is read twice (square, real_div), both inside the chain.
  int try_group_norm(const Block& b, size_t k1) {
    const Node& m1 = b.nodes[k1];
    if (!is_plain(m1)) return 0;
    const int x = input_slot(m1, "x");
    std::vector<int64_t> axes, axes2;
    bool keep = false;
    if (x < 0 || !const_ints(input_slot(m1, "axes"), axes) || !const_flag(m1, "keep_dims", false, keep) || !keep) return 0;
    const size_t ks = sole_consumer(b, m1.outputs[0]);
    if (ks == npos || b.nodes[ks].type != "sub" || input_slot(b.nodes[ks], "x") != x || input_slot(b.nodes[ks], "y") != m1.outputs[0]) return 0;
    const int d = b.nodes[ks].outputs[0];
    if (uses_[static_cast<size_t>(d)] != 2) return 0;
    const std::vector<size_t> dc = consumers(b, d);
    if (dc.size() != 2) return 0;
    size_t ksq = npos, kdiv = npos;
    for (size_t c : dc) {
      if (removed_.count(c) || !is_plain(b.nodes[c])) return 0;
      if (b.nodes[c].type == "square" && input_slot(b.nodes[c], "x") == d) ksq = c;
      else if (b.nodes[c].type == "real_div" && input_slot(b.nodes[c], "x") == d) kdiv = c;
    }
    if (ksq == npos || kdiv == npos) return 0;
    const size_t km2 = sole_consumer(b, b.nodes[ksq].outputs[0]);
    if (km2 == npos || b.nodes[km2].type != "reduce_mean" || input_slot(b.nodes[km2], "x") != b.nodes[ksq].outputs[0] ||
        !const_ints(input_slot(b.nodes[km2], "axes"), axes2) || axes2 != axes || !const_flag(b.nodes[km2], "keep_dims", false, keep) || !keep)
      return 0;
    const size_t ka = sole_consumer(b, b.nodes[km2].outputs[0]);
    double eps;
    if (ka == npos || b.nodes[ka].type != "add" || !const_scalar(other_operand(b.nodes[ka], b.nodes[km2].outputs[0]), eps)) return 0;
    const size_t kr = sole_consumer(b, b.nodes[ka].outputs[0]);
    if (kr == npos || b.nodes[kr].type != "sqrt") return 0;
    const size_t kd = sole_consumer(b, b.nodes[kr].outputs[0]);
    if (kd != kdiv || input_slot(b.nodes[kdiv], "y") != b.nodes[kr].outputs[0]) return 0;
    std::vector<size_t> chain{k1, ks, ksq, km2, ka, kr, kdiv};
    std::sort(chain.begin(), chain.end());
    if (chain.back() != kdiv) return 0;  // the output op must come last
    Node f = make_fused(b, chain, "fused_group_norm", fused_group_norm_kernel);
    f.inputs = {{"x", {x}}, {"axes", {input_slot(m1, "axes")}}, {"epsilon", {param_const(Tensor::scalar_f32(static_cast<float>(eps)))}}};
    commit(std::move(chain), std::move(f));
    return 1;
  }

  // ---- per-channel affine (group norm's weight and bias): mul(x, w) → add(·, b) [→ silu] ----
  // w, b constants of C elements shaped [1, C, 1, ...]; the kernel checks that against x at run time.
  int try_channel_affine(const Block& b, size_t k1) {
    const Node& m = b.nodes[k1];
    if (!is_plain(m)) return 0;
    const int x = input_slot(m, "x"), y = input_slot(m, "y");
    int xin, w;
    if (y >= 0 && env_.is_const[static_cast<size_t>(y)] && x >= 0 && !env_.is_const[static_cast<size_t>(x)]) xin = x, w = y;
    else if (x >= 0 && env_.is_const[static_cast<size_t>(x)] && y >= 0 && !env_.is_const[static_cast<size_t>(y)]) xin = y, w = x;
    else return 0;
    if (env_.constants[static_cast<size_t>(w)].size() < 2) return 0;  // a scalar multiply is no channel affine
    const size_t ka = sole_consumer(b, m.outputs[0]);
    if (ka == npos || b.nodes[ka].type != "add") return 0;
    const int bias = other_operand(b.nodes[ka], m.outputs[0]);
    if (bias < 0 || !env_.is_const[static_cast<size_t>(bias)]) return 0;
    std::vector<size_t> chain{k1, ka};
    const size_t ks = sole_consumer(b, b.nodes[ka].outputs[0]);
    const bool act = ks != npos && b.nodes[ks].type == "silu";
    if (act) chain.push_back(ks);
    Node f = make_fused(b, chain, act ? "fused_channel_affine_silu" : "fused_channel_affine", fused_channel_affine_kernel);
    f.inputs = {{"x", {xin}}, {"scale", {w}}, {"bias", {bias}},
                {"act", {param_const(Tensor::scalar_i32(static_cast<int32_t>(act ? vec::Act::Silu : vec::Act::Identity)))}}};
    commit(std::move(chain), std::move(f));
    return 1;
  }

  static constexpr size_t npos = static_cast<size_t>(-1);
  FusionEnv& env_;
  const std::vector<int>& uses_;
  std::unordered_map<int, size_t> consumer_;
  std::set<size_t> removed_;
  std::unordered_map<size_t, Node> replaced_;
};

}  // namespace

int fuse_graph(Block& main, FusionEnv& env) {
  std::vector<int> uses(env.is_const.size(), 0);
  count_uses(main, uses);
  Fuser f(env, uses);
  return f.run(main);
}

}  // namespace cmo::exec
