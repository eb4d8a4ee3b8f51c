#include "profile.h"

#include <algorithm>

namespace cmo::exec {
namespace {

double tensor_bytes(const Tensor& t) {
  if (t.dtype == DType::Str) return 0;
  return static_cast<double>(t.size()) * (t.is_half_backed() ? 2.0 : 4.0);
}

const Tensor* input(const Node& node, const OpContext& ctx, const char* param) {
  for (size_t k = 0; k < node.inputs.size(); ++k)
    if (node.inputs[k].first == param && !ctx.args()[k].empty()) return ctx.args()[k][0];
  return nullptr;
}

double elems(const Tensor* t) { return t ? static_cast<double>(t->size()) : 0.0; }

// Two-operand einsum: every letter's size multiplied once = the multiply-adds of the contraction.
double einsum_macs(const Node& node, const OpContext& ctx) {
  const Tensor* eqt = input(node, ctx, "equation");
  const std::vector<const Tensor*>* vals = nullptr;
  for (size_t k = 0; k < node.inputs.size(); ++k)
    if (node.inputs[k].first == "values") vals = &ctx.args()[k];
  if (!eqt || eqt->dtype != DType::Str || eqt->s->size() != 1 || !vals || vals->size() != 2) return 0;
  const std::string& eq = (*eqt->s)[0];
  size_t comma = eq.find(','), arrow = eq.find("->");
  if (comma == std::string::npos || arrow == std::string::npos || comma > arrow) return 0;
  std::map<char, int64_t> size;
  auto note = [&](const std::string& letters, const Tensor& t) {
    size_t axis = 0;
    for (char ch : letters) {
      if (ch == ' ') continue;
      if (axis >= t.shape.size()) return;
      int64_t d = t.shape[axis++];
      int64_t& s = size[ch];
      s = std::max(s, d);
    }
  };
  note(eq.substr(0, comma), *(*vals)[0]);
  note(eq.substr(comma + 1, arrow - comma - 1), *(*vals)[1]);
  double macs = 1;
  for (auto& kv : size) macs *= static_cast<double>(kv.second);
  return macs;
}

}  // namespace

OpCost op_cost(const Node& node, const OpContext& ctx) {
  OpCost c;
  const auto& args = ctx.args();
  for (size_t k = 0; k < args.size(); ++k) {
    const std::string& param = k < node.inputs.size() ? node.inputs[k].first : std::string();
    if (param == "weight_packed_n") continue;  // the executor's own bookkeeping, not a model value
    for (const Tensor* t : args[k]) {
      if (!t) continue;
      // A packed linear weight counts as the [D_out, D_in] fp32 weight it holds (not its NR padding).
      const Tensor* n = param == "weight_packed" ? input(node, ctx, "weight_packed_n") : nullptr;
      c.bytes += n && t->rank() == 2 ? 4.0 * static_cast<double>(t->shape[0]) * n->at(0) : tensor_bytes(*t);
    }
  }
  for (const Tensor& t : ctx.outputs()) c.bytes += tensor_bytes(t);
  const Tensor* y = ctx.outputs().empty() ? nullptr : &ctx.outputs()[0];
  const std::string& type = node.type;
  double macs = 0;
  if (type == "conv") {
    // Each output element: C_in/groups · prod(kernel) multiply-adds.
    const Tensor* w = input(node, ctx, "weight");
    if (w && y && w->rank() >= 2) macs = elems(y) * static_cast<double>(w->size() / std::max<int64_t>(w->shape[0], 1));
  } else if (type == "conv_transpose") {
    // Each input element scatters into C_out/groups · prod(kernel) outputs.
    const Tensor* x = input(node, ctx, "x");
    const Tensor* w = input(node, ctx, "weight");
    if (x && w && w->rank() >= 2) macs = elems(x) * static_cast<double>(w->size() / std::max<int64_t>(w->shape[0], 1));
  } else if (type == "linear") {
    const Tensor* w = input(node, ctx, "weight");
    const Tensor* wt = input(node, ctx, "weight_t");  // the executor's transposed copy, [D_in, D_out]
    if (!wt) wt = input(node, ctx, "weight_packed");  // or its packed copy, [D_in, D_out padded]
    if (w && y && w->rank() == 2) macs = elems(y) * static_cast<double>(w->shape[1]);
    else if (wt && y && wt->rank() == 2) macs = elems(y) * static_cast<double>(wt->shape[0]);
  } else if (type == "matmul") {
    const Tensor* x = input(node, ctx, "x");
    const Tensor* t = input(node, ctx, "transpose_x");
    if (x && y && x->rank() >= 1) {
      bool tx = t && t->size() == 1 && t->at(0) != 0 && x->rank() >= 2;
      int64_t k = tx ? x->shape[x->shape.size() - 2] : x->shape.back();
      macs = elems(y) * static_cast<double>(k);
    }
  } else if (type == "einsum") {
    macs = einsum_macs(node, ctx);
  } else if (type == "scaled_dot_product_attention" || type == "fused_attention") {
    // Q·K^T (L·S·E per batch) and P·V (L·S·Ev): both are rows(Q or output) · S.
    const Tensor* q = input(node, ctx, "query");
    const Tensor* k = input(node, ctx, "key");
    const Tensor* kt = input(node, ctx, "key_transposed");  // fused_attention: key given as [E, S]
    if (q && k && y && k->rank() >= 2) {
      const bool transposed = kt && kt->size() == 1 && kt->at(0) != 0;
      double s = static_cast<double>(transposed ? k->shape.back() : k->shape[k->shape.size() - 2]);
      macs = elems(q) * s + elems(y) * s;
    }
  }
  c.flops = 2 * macs;
  return c;
}

void Profiler::add(const Node& node, const OpContext& ctx, double ms) {
  OpCost cost = op_cost(node, ctx);
  ProfileRow& r = by_type_[node.type];
  r.type = node.type;
  r.calls += 1;
  r.ms += ms;
  r.flops += cost.flops;
  r.bytes += cost.bytes;
}

std::vector<ProfileRow> Profiler::rows() const {
  std::vector<ProfileRow> out;
  for (const auto& kv : by_type_) out.push_back(kv.second);
  std::sort(out.begin(), out.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.ms > b.ms; });
  return out;
}

}  // namespace cmo::exec
