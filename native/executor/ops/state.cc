// iOS18 state ops: read_state, write_state and coreml_update_state (what coremltools serialises for
// an in-place update: write the value, return it). The cells live in the Graph (one per state input)
// and persist between runs; see Graph::reset_state.
#include "common.h"

namespace cmo::exec {
namespace {

StateCell& cell_of(OpContext& c, const char* param) {
  const Tensor& t = c.in(param);
  if (!t.state) c.fail(std::string("input '") + param + "' must be a state");
  return *t.state;
}

// Stores v into the cell after checking it against the wrapped type; returns what was stored.
Tensor store(OpContext& c, StateCell& cell, const Tensor& v) {
  if (v.shape != cell.shape)
    c.fail("value of shape " + shape_str(v.shape) + " does not match the state's shape " + shape_str(cell.shape));
  DType ct = compute_dtype(cell.dtype);
  Tensor t = ct == DType::F32 ? as_f32(v) : as_i32(v);
  if (ct == DType::Bool) t.dtype = DType::Bool;
  t.declared = cell.dtype;
  cell.value = t;
  return t;
}

void k_read_state(OpContext& c) { c.set(0, cell_of(c, "input").value); }

void k_write_state(OpContext& c) {
  const char* sp = c.has("state") ? "state" : "input";
  const char* vp = c.has("value") ? "value" : "data";
  store(c, cell_of(c, sp), c.in(vp));
}

void k_coreml_update_state(OpContext& c) {
  Tensor t = store(c, cell_of(c, "state"), c.in("value"));
  if (c.num_outputs() > 0) c.set(0, std::move(t));
}

}  // namespace

void register_state_ops() {
  register_kernel("read_state", k_read_state);
  register_kernel("write_state", k_write_state);
  register_kernel("coreml_update_state", k_coreml_update_state);
}

}  // namespace cmo::exec
