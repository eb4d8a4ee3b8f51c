// Data movement: reshape, transpose, expand_dims, squeeze, flatten2d, concat, split, stack,
// slice_by_index, slice_by_size, tile, reverse, pad, shape.
#include <numeric>

#include "common.h"

namespace cmo::exec {
namespace {

std::string where(const OpContext& c) { return "op '" + c.node().name + "' (" + c.node().type + ")"; }

void k_reshape(OpContext& c) {
  const Tensor& x = c.in("x");
  auto shape = c.ints("shape");
  const int64_t r = x.rank(), n = static_cast<int64_t>(shape.size());
  int64_t infer = -1, known = 1;
  for (int64_t i = 0; i < n; ++i) {
    if (shape[i] == 0) {
      if (c.opset() >= 17) {  // iOS17+: zeros are matched to x.shape from the right; unmatched -> 1
        int64_t j = i - (n - r);
        shape[i] = j >= 0 && j < r ? x.shape[j] : 1;
      } else {
        if (n != r) c.fail("a 0 in shape needs len(shape) == rank(x) before iOS17");
        shape[i] = x.shape[i];
      }
    }
    if (shape[i] == -1) {
      if (infer >= 0) c.fail("shape has more than one -1");
      infer = i;
    } else if (shape[i] < 0) {
      c.fail("negative dimension in shape");
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.size() % known != 0) c.fail("cannot infer -1 in " + shape_str(shape) + " from " + shape_str(x.shape));
    shape[infer] = x.size() / known;
  }
  if (numel(shape) != x.size()) c.fail("cannot reshape " + shape_str(x.shape) + " to " + shape_str(shape));
  c.set(0, x.reshaped(shape));
}

void k_transpose(OpContext& c) {
  const Tensor& x = c.in("x");
  auto perm = c.ints("perm");
  if (static_cast<int64_t>(perm.size()) != x.rank()) c.fail("perm must have rank(x) entries");
  auto st = strides_of(x.shape);
  Shape os;
  std::vector<int64_t> ss;
  std::vector<char> seen(perm.size(), 0);
  for (int64_t p : perm) {
    int64_t a = norm_axis(p, x.rank(), where(c));
    if (seen[a]++) c.fail("perm repeats an axis");
    os.push_back(x.shape[a]);
    ss.push_back(st[a]);
  }
  c.set(0, strided_tensor(x, ss, 0, os, c.threads()));
}

void k_expand_dims(OpContext& c) {
  const Tensor& x = c.in("x");
  auto axes = c.ints("axes");
  int64_t out_rank = x.rank() + static_cast<int64_t>(axes.size());
  std::vector<char> is_new(static_cast<size_t>(out_rank), 0);
  for (int64_t a : axes) {
    int64_t n = norm_axis(a, out_rank, where(c));
    if (is_new[n]++) c.fail("axes repeat");
  }
  Shape os;
  size_t src = 0;
  for (int64_t d = 0; d < out_rank; ++d) os.push_back(is_new[d] ? 1 : x.shape[src++]);
  c.set(0, x.reshaped(os));
}

void k_squeeze(OpContext& c) {
  const Tensor& x = c.in("x");
  std::vector<char> drop(static_cast<size_t>(x.rank()), 0);
  if (c.has("axes")) {
    for (int64_t a : c.ints("axes")) {
      int64_t n = norm_axis(a, x.rank(), where(c));
      if (x.shape[n] != 1) c.fail("axis " + std::to_string(a) + " has size " + std::to_string(x.shape[n]) + ", not 1");
      drop[n] = 1;
    }
  } else {
    for (int64_t d = 0; d < x.rank(); ++d) drop[d] = x.shape[d] == 1;
  }
  Shape os;
  for (int64_t d = 0; d < x.rank(); ++d)
    if (!drop[d]) os.push_back(x.shape[d]);
  c.set(0, x.reshaped(os));
}

void k_flatten2d(OpContext& c) {
  const Tensor& x = c.in("x");
  int64_t axis = static_cast<int64_t>(c.num("axis", 1));
  if (axis < 0) axis += x.rank();
  if (axis < 0 || axis > x.rank()) c.fail("axis out of range");
  int64_t a = 1;
  for (int64_t d = 0; d < axis; ++d) a *= x.shape[d];
  c.set(0, x.reshaped({a, a ? x.size() / a : 0}));
}

// Copies `part` into `out` at offset `at` along axis (outer × len × inner blocks).
void place(const Tensor& part, Tensor& out, int64_t axis, int64_t at) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= part.shape[d];
  for (int64_t d = axis + 1; d < part.rank(); ++d) inner *= part.shape[d];
  int64_t len = part.shape[axis], olen = out.shape[axis];
  for (int64_t o = 0; o < outer; ++o) {
    int64_t src = o * len * inner, dst = (o * olen + at) * inner;
    if (out.dtype == DType::F32) std::copy_n(part.fdata() + src, len * inner, out.fdata() + dst);
    else if (out.dtype == DType::Str) std::copy_n(part.s->data() + src, len * inner, out.s->data() + dst);
    else std::copy_n(part.idata() + src, len * inner, out.idata() + dst);
  }
}

Tensor like(const Tensor& proto, Shape shape) {
  if (proto.dtype == DType::F32) return Tensor::f32(std::move(shape));
  if (proto.dtype == DType::Str) return Tensor::str(std::vector<std::string>(static_cast<size_t>(numel(shape))), shape);
  Tensor t = Tensor::i32(std::move(shape));
  t.dtype = proto.dtype;
  return t;
}

// Brings all values to one dtype (float wins over int).
std::vector<Tensor> unify(const std::vector<const Tensor*>& vals) {
  bool any_float = false;
  for (auto* v : vals) any_float = any_float || v->dtype == DType::F32;
  std::vector<Tensor> out;
  for (auto* v : vals) out.push_back(any_float ? as_f32(*v) : *v);
  return out;
}

void k_concat(OpContext& c) {
  auto vals = unify(c.list("values"));
  if (vals.empty()) c.fail("no values");
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis")), vals[0].rank(), where(c));
  bool interleave = c.flag("interleave", false);
  Shape os = vals[0].shape;
  os[axis] = 0;
  for (auto& v : vals) {
    if (v.rank() != vals[0].rank()) c.fail("values have different ranks");
    for (int64_t d = 0; d < v.rank(); ++d)
      if (d != axis && v.shape[d] != vals[0].shape[d]) c.fail("values differ outside the concat axis: " + shape_str(v.shape) + " vs " + shape_str(vals[0].shape));
    os[axis] += v.shape[axis];
  }
  Tensor out = like(vals[0], os);
  if (interleave) {
    // Equal sizes; slices taken round-robin along axis.
    int64_t len = vals[0].shape[axis];
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < len; ++i)
      for (size_t v = 0; v < vals.size(); ++v) {
        auto st = strides_of(vals[v].shape);
        Shape ps = vals[v].shape;
        ps[axis] = 1;
        Tensor piece = strided_tensor(vals[v], st, i * st[axis], ps, 1);
        place(piece, out, axis, i * static_cast<int64_t>(vals.size()) + static_cast<int64_t>(v));
      }
  } else {
    int64_t at = 0;
    for (auto& v : vals) {
      place(v, out, axis, at);
      at += v.shape[axis];
    }
  }
  c.set(0, std::move(out));
}

void k_stack(OpContext& c) {
  auto vals = unify(c.list("values"));
  if (vals.empty()) c.fail("no values");
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", 0)), vals[0].rank() + 1, where(c));
  Shape os = vals[0].shape;
  os.insert(os.begin() + axis, static_cast<int64_t>(vals.size()));
  Tensor out = like(vals[0], os);
  for (size_t v = 0; v < vals.size(); ++v) {
    if (vals[v].shape != vals[0].shape) c.fail("values have different shapes");
    Shape ps = vals[0].shape;
    ps.insert(ps.begin() + axis, 1);
    place(vals[v].reshaped(ps), out, axis, static_cast<int64_t>(v));
  }
  c.set(0, std::move(out));
}

void k_split(OpContext& c) {
  const Tensor& x = c.in("x");
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis")), x.rank(), where(c));
  std::vector<int64_t> sizes;
  if (c.has("split_sizes")) {
    sizes = c.ints("split_sizes");
  } else {
    int64_t n = static_cast<int64_t>(c.num("num_splits", static_cast<double>(c.num_outputs())));
    if (n <= 0) c.fail("num_splits must be positive");
    int64_t each = (x.shape[axis] + n - 1) / n;  // last chunk may be smaller
    for (int64_t k = 0, left = x.shape[axis]; k < n; ++k, left -= each) sizes.push_back(std::min(each, left));
  }
  if (sizes.size() != c.num_outputs()) c.fail("number of splits differs from the number of outputs");
  if (std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != x.shape[axis]) c.fail("split sizes do not add up to the axis size");
  auto st = strides_of(x.shape);
  int64_t at = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    Shape ps = x.shape;
    ps[axis] = sizes[k];
    c.set(k, strided_tensor(x, st, at * st[axis], ps, c.threads()));
    at += sizes[k];
  }
}

// Geometry of x[begin:end:stride] with masks (Python slicing): a base offset and, per kept axis,
// its length and element stride.
struct SliceView {
  int64_t base = 0;
  Shape shape;
  std::vector<int64_t> strides;
};

SliceView slice_view(OpContext& c, const Tensor& x) {
  const int64_t r = x.rank();
  auto begin = c.ints("begin"), end = c.ints("end");
  auto stride = c.ints("stride", std::vector<int64_t>(r, 1));
  auto mask = [&](const char* p) {
    std::vector<int64_t> m = c.ints(p, std::vector<int64_t>(r, 0));
    if (static_cast<int64_t>(m.size()) != r) c.fail(std::string(p) + " must have rank(x) entries");
    return m;
  };
  auto bm = mask("begin_mask"), em = mask("end_mask"), sm = mask("squeeze_mask");
  if (static_cast<int64_t>(begin.size()) != r || static_cast<int64_t>(end.size()) != r || static_cast<int64_t>(stride.size()) != r)
    c.fail("begin/end/stride must have rank(x) entries");
  auto st = strides_of(x.shape);
  SliceView v;
  for (int64_t d = 0; d < r; ++d) {
    int64_t n = x.shape[d], s = stride[d];
    if (s == 0) c.fail("stride 0");
    if (sm[d]) {
      int64_t b = begin[d] < 0 ? begin[d] + n : begin[d];
      if (bm[d]) b = s > 0 ? 0 : n - 1;
      if (b < 0 || b >= n) c.fail("squeezed index out of range");
      v.base += b * st[d];
      continue;
    }
    int64_t start, stop;
    if (bm[d]) start = s > 0 ? 0 : n - 1;
    else {
      start = begin[d] < 0 ? begin[d] + n : begin[d];
      start = s > 0 ? std::clamp<int64_t>(start, 0, n) : std::clamp<int64_t>(start, -1, n - 1);
    }
    if (em[d]) stop = s > 0 ? n : -1;
    else {
      stop = end[d] < 0 ? end[d] + n : end[d];
      stop = s > 0 ? std::clamp<int64_t>(stop, 0, n) : std::clamp<int64_t>(stop, -1, n - 1);
    }
    int64_t len = s > 0 ? std::max<int64_t>(0, (stop - start + s - 1) / s) : std::max<int64_t>(0, (start - stop + (-s) - 1) / (-s));
    if (len > 0) v.base += start * st[d];
    v.shape.push_back(len);
    v.strides.push_back(st[d] * s);
  }
  return v;
}

void k_slice_by_index(OpContext& c) {
  const Tensor& x = c.in("x");
  SliceView v = slice_view(c, x);
  if (numel(v.shape) == 0) {
    c.set(0, like(x, v.shape));
    return;
  }
  c.set(0, strided_tensor(x, v.strides, v.base, v.shape, c.threads()));
}

// slice_update: x with x[begin:end:stride] (same masks as slice_by_index) replaced by `update`.
void k_slice_update(OpContext& c) {
  const Tensor& x = c.in("x");
  const Tensor& upd_in = c.in("update");
  SliceView v = slice_view(c, x);
  if (upd_in.shape != v.shape) c.fail("update shape " + shape_str(upd_in.shape) + " differs from the slice shape " + shape_str(v.shape));
  bool fl = x.dtype == DType::F32 || upd_in.dtype == DType::F32;
  Tensor out = fl ? as_f32(x) : as_i32(x);
  out = strided_tensor(out, strides_of(out.shape), 0, out.shape, c.threads());  // own copy
  Tensor upd = fl ? as_f32(upd_in) : as_i32(upd_in);
  std::vector<int64_t> idx(v.shape.size(), 0);
  for (int64_t k = 0, n = numel(v.shape); k < n; ++k) {
    int64_t off = v.base;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * v.strides[d];
    if (fl) out.fdata()[off] = upd.fdata()[k];
    else out.idata()[off] = upd.idata()[k];
    for (size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < v.shape[d]) break;
      idx[d] = 0;
    }
  }
  c.set(0, std::move(out));
}

void k_slice_by_size(OpContext& c) {
  const Tensor& x = c.in("x");
  auto begin = c.ints("begin"), size = c.ints("size");
  if (static_cast<int64_t>(begin.size()) != x.rank() || static_cast<int64_t>(size.size()) != x.rank())
    c.fail("begin/size must have rank(x) entries");
  auto st = strides_of(x.shape);
  int64_t base = 0;
  Shape os;
  for (int64_t d = 0; d < x.rank(); ++d) {
    int64_t b = begin[d] < 0 ? begin[d] + x.shape[d] : begin[d];
    int64_t len = size[d] == -1 ? x.shape[d] - b : size[d];
    if (b < 0 || len < 0 || b + len > x.shape[d]) c.fail("slice out of range on axis " + std::to_string(d));
    base += b * st[d];
    os.push_back(len);
  }
  c.set(0, strided_tensor(x, st, base, os, c.threads()));
}

void k_tile(OpContext& c) {
  const Tensor& x = c.in("x");
  auto reps = c.ints("reps");
  if (static_cast<int64_t>(reps.size()) != x.rank()) c.fail("reps must have rank(x) entries");
  Shape os;
  for (int64_t d = 0; d < x.rank(); ++d) os.push_back(x.shape[d] * reps[d]);
  // out[i] = x[i mod shape]: iterate element by element (small tensors in practice).
  Tensor out = like(x, os);
  auto st = strides_of(x.shape);
  std::vector<int64_t> idx(static_cast<size_t>(x.rank()), 0);
  for (int64_t k = 0, n = numel(os); k < n; ++k) {
    int64_t off = 0;
    for (int64_t d = 0; d < x.rank(); ++d) off += (idx[d] % x.shape[d]) * st[d];
    if (x.dtype == DType::F32) out.fdata()[k] = x.fdata()[off];
    else if (x.dtype == DType::Str) (*out.s)[k] = (*x.s)[off];
    else out.idata()[k] = x.idata()[off];
    for (int64_t d = x.rank() - 1; d >= 0; --d) {
      if (++idx[d] < os[d]) break;
      idx[d] = 0;
    }
  }
  c.set(0, std::move(out));
}

void k_reverse(OpContext& c) {
  const Tensor& x = c.in("x");
  std::vector<char> rev(static_cast<size_t>(x.rank()), 0);
  if (c.has("axes"))
    for (int64_t a : c.ints("axes")) rev[norm_axis(a, x.rank(), where(c))] = 1;
  else
    std::fill(rev.begin(), rev.end(), 1);
  auto st = strides_of(x.shape);
  int64_t base = 0;
  for (int64_t d = 0; d < x.rank(); ++d)
    if (rev[d] && x.shape[d] > 0) {
      base += (x.shape[d] - 1) * st[d];
      st[d] = -st[d];
    }
  c.set(0, strided_tensor(x, st, base, x.shape, c.threads()));
}

// pad: (before, after) pairs for the last N axes; modes constant / reflect / replicate.
void k_pad(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  auto pad = c.ints("pad");
  std::string mode = c.str("mode", "constant");
  float cval = static_cast<float>(c.num("constant_val", 0.0));
  if (pad.size() % 2 || static_cast<int64_t>(pad.size()) > 2 * x.rank()) c.fail("pad must hold (before, after) pairs for at most rank(x) axes");
  const int64_t r = x.rank(), first = r - static_cast<int64_t>(pad.size()) / 2;
  std::vector<int64_t> pb(r, 0), pa(r, 0);
  Shape os = x.shape;
  for (int64_t d = first; d < r; ++d) {
    pb[d] = pad[2 * (d - first)];
    pa[d] = pad[2 * (d - first) + 1];
    if (mode == "reflect" && (pb[d] >= x.shape[d] || pa[d] >= x.shape[d])) c.fail("reflect padding must be smaller than the axis");
    os[d] += pb[d] + pa[d];
  }
  if (mode != "constant" && mode != "reflect" && mode != "replicate") c.fail("unknown pad mode '" + mode + "'");
  Tensor y = Tensor::f32(os);
  auto st = strides_of(x.shape);
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  for (int64_t k = 0, n = numel(os); k < n; ++k) {
    int64_t off = 0;
    bool outside = false;
    for (int64_t d = 0; d < r; ++d) {
      int64_t i = idx[d] - pb[d], len = x.shape[d];
      if (i < 0 || i >= len) {
        if (mode == "constant") outside = true;
        else if (mode == "replicate") i = i < 0 ? 0 : len - 1;
        else i = i < 0 ? -i : 2 * (len - 1) - i;
      }
      off += i * st[d];
    }
    y.fdata()[k] = outside ? cval : x.fdata()[off];
    for (int64_t d = r - 1; d >= 0; --d) {
      if (++idx[d] < os[d]) break;
      idx[d] = 0;
    }
  }
  c.set(0, std::move(y));
}

void k_shape(OpContext& c) {
  const Tensor& x = c.in("x");
  Tensor y = Tensor::i32({x.rank()});
  for (int64_t d = 0; d < x.rank(); ++d) y.idata()[d] = static_cast<int32_t>(x.shape[d]);
  c.set(0, std::move(y));
}

}  // namespace

void register_shape_ops() {
  register_kernel("reshape", k_reshape);
  register_kernel("transpose", k_transpose);
  register_kernel("expand_dims", k_expand_dims);
  register_kernel("squeeze", k_squeeze);
  register_kernel("flatten2d", k_flatten2d);
  register_kernel("concat", k_concat);
  register_kernel("stack", k_stack);
  register_kernel("split", k_split);
  register_kernel("slice_by_index", k_slice_by_index);
  register_kernel("slice_by_size", k_slice_by_size);
  register_kernel("slice_update", k_slice_update);
  register_kernel("tile", k_tile);
  register_kernel("reverse", k_reverse);
  register_kernel("pad", k_pad);
  register_kernel("shape", k_shape);
}

}  // namespace cmo::exec
