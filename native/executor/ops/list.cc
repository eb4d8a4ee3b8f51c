// MIL list ops (iOS15 control_flow.py): make_list, list_length, list_read, list_write, list_gather,
// list_scatter. TensorFlow-converted recurrent models (TensorArray inside while_loop) carry lists
// through loop variables. A list value is immutable: list_write / list_scatter return a new list that
// shares the unchanged element tensors, so a list captured by an earlier iteration stays intact.
#include <algorithm>
#include <cstring>

#include "common.h"

namespace cmo::exec {
namespace {

const ListValue& list_of(OpContext& c, const char* param) {
  const Tensor& t = c.in(param);
  if (!t.list) c.fail(std::string("input '") + param + "' must be a list");
  return *t.list;
}

Tensor list_tensor(std::shared_ptr<const ListValue> l) {
  Tensor t;
  t.shape = {static_cast<int64_t>(l->items.size())};
  t.list = std::move(l);
  return t;
}

Tensor zeros_of(const std::string& dtype, const Shape& shape) {
  DType ct = compute_dtype(dtype);
  Tensor t = ct == DType::F32 ? Tensor::f32(shape) : ct == DType::Bool ? Tensor::boolean(shape) : Tensor::i32(shape);
  t.declared = dtype;
  return t;
}

// Converts a value written into the list to the list's compute dtype (fp16/fp32 -> F32, ints -> I32).
Tensor as_elem(OpContext& c, const ListValue& l, const Tensor& v, const Shape& shape) {
  if (l.elem_known && shape != l.elem_shape)
    c.fail("value of shape " + shape_str(shape) + " does not match the list's element shape " + shape_str(l.elem_shape));
  DType ct = compute_dtype(l.dtype);
  Tensor out = ct == DType::F32 ? as_f32(v) : as_i32(v);
  if (ct == DType::Bool) {
    Tensor b = Tensor::boolean(out.shape);
    for (int64_t k = 0; k < out.size(); ++k) b.idata()[k] = out.idata()[k] != 0;
    out = std::move(b);
  }
  out = out.reshaped(shape);
  out.declared = l.dtype;
  return out;
}

// Element k, or zeros of the element shape for a slot that was never written.
Tensor element(OpContext& c, const ListValue& l, int64_t k) {
  if (k < 0 || k >= static_cast<int64_t>(l.items.size()))
    c.fail("index " + std::to_string(k) + " is outside the list of length " + std::to_string(l.items.size()));
  const Tensor& t = l.items[static_cast<size_t>(k)];
  if (t.produced()) return t;
  if (!l.elem_known) c.fail("element " + std::to_string(k) + " was never written and the element shape is unknown");
  return zeros_of(l.dtype, l.elem_shape);
}

// Makes room for index k (dynamic lists grow; fixed-length lists refuse).
void ensure_index(OpContext& c, ListValue& l, int64_t k) {
  if (k < 0) c.fail("negative list index " + std::to_string(k));
  if (k < static_cast<int64_t>(l.items.size())) return;
  if (!l.dynamic_length)
    c.fail("index " + std::to_string(k) + " is outside the fixed-length list of length " + std::to_string(l.items.size()));
  l.items.resize(static_cast<size_t>(k) + 1);
}

void k_make_list(OpContext& c) {
  auto l = std::make_shared<ListValue>();
  l->dtype = c.str("dtype", "fp32");
  l->dynamic_length = c.flag("dynamic_length", true);
  int64_t n = static_cast<int64_t>(c.num("init_length", 1));
  if (n < 0) c.fail("init_length must be >= 0");
  // elem_shape is a tuple of scalars: int32 (known) or string (a symbolic dimension).
  l->elem_known = c.has("elem_shape");
  for (const Tensor* d : c.list("elem_shape")) {
    if (d->dtype == DType::Str || d->size() != 1) {
      l->elem_known = false;
      continue;
    }
    l->elem_shape.push_back(static_cast<int64_t>(d->at(0)));
  }
  if (!l->elem_known) l->elem_shape.clear();
  l->items.resize(static_cast<size_t>(n));
  c.set(0, list_tensor(std::move(l)));
}

void k_list_length(OpContext& c) {
  c.set(0, Tensor::scalar_i32(static_cast<int32_t>(list_of(c, "ls").items.size())));
}

void k_list_read(OpContext& c) {
  const ListValue& l = list_of(c, "ls");
  c.set(0, element(c, l, static_cast<int64_t>(c.num("index"))));
}

void k_list_write(OpContext& c) {
  const ListValue& src = list_of(c, "ls");
  const Tensor& v = c.in("value");
  auto l = std::make_shared<ListValue>(src);
  int64_t k = static_cast<int64_t>(c.num("index"));
  ensure_index(c, *l, k);
  if (!l->elem_known) {  // the first write fixes a symbolic element shape
    l->elem_shape = v.shape;
    l->elem_known = true;
  }
  l->items[static_cast<size_t>(k)] = as_elem(c, *l, v, v.shape);
  c.set(0, list_tensor(std::move(l)));
}

void k_list_gather(OpContext& c) {
  const ListValue& l = list_of(c, "ls");
  std::vector<int64_t> idx = c.ints("indices");
  std::vector<Tensor> parts;
  for (int64_t k : idx) parts.push_back(element(c, l, k));
  Shape elem = parts.empty() ? l.elem_shape : parts[0].shape;
  for (const Tensor& p : parts)
    if (p.shape != elem) c.fail("list elements have different shapes (" + shape_str(elem) + ", " + shape_str(p.shape) + ")");
  Shape os{static_cast<int64_t>(idx.size())};
  os.insert(os.end(), elem.begin(), elem.end());
  Tensor out = zeros_of(l.dtype, os);
  const int64_t n = numel(elem);
  for (size_t j = 0; j < parts.size(); ++j) {
    if (out.dtype == DType::F32) std::memcpy(out.fdata() + j * n, parts[j].fdata(), static_cast<size_t>(n) * 4);
    else std::memcpy(out.idata() + j * n, parts[j].idata(), static_cast<size_t>(n) * 4);
  }
  c.set(0, std::move(out));
}

void k_list_scatter(OpContext& c) {
  const ListValue& src = list_of(c, "ls");
  std::vector<int64_t> idx = c.ints("indices");
  const Tensor& v = c.in("value");
  if (v.rank() < 1 || v.shape[0] != static_cast<int64_t>(idx.size()))
    c.fail("value must have one row per index: " + std::to_string(idx.size()) + " indices, value shape " + shape_str(v.shape));
  Shape elem(v.shape.begin() + 1, v.shape.end());
  auto l = std::make_shared<ListValue>(src);
  if (!l->elem_known) {
    l->elem_shape = elem;
    l->elem_known = true;
  }
  const int64_t n = numel(elem);
  const Tensor vf = v.is_float() ? as_f32(v) : Tensor();
  for (size_t j = 0; j < idx.size(); ++j) {
    ensure_index(c, *l, idx[j]);
    Tensor row;
    if (v.is_float()) {
      row = Tensor::f32(elem);
      std::memcpy(row.fdata(), vf.fdata() + j * n, static_cast<size_t>(n) * 4);
    } else {
      row = Tensor::i32(elem);
      row.dtype = v.dtype;
      std::memcpy(row.idata(), v.idata() + j * n, static_cast<size_t>(n) * 4);
    }
    l->items[static_cast<size_t>(idx[j])] = as_elem(c, *l, row, elem);
  }
  c.set(0, list_tensor(std::move(l)));
}

}  // namespace

void register_list_ops() {
  register_kernel("make_list", k_make_list);
  register_kernel("list_length", k_list_length);
  register_kernel("list_read", k_list_read);
  register_kernel("list_write", k_list_write);
  register_kernel("list_gather", k_list_gather);
  register_kernel("list_scatter", k_list_scatter);
}

}  // namespace cmo::exec
