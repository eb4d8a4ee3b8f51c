#include "tensor.h"

#include <algorithm>
#include <cmath>

#include "../util/error.h"
#include "../util/fp16.h"

namespace cmo::exec {

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
  return out + "]";
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "fp32";
    case DType::I32: return "int32";
    case DType::Bool: return "bool";
    case DType::Str: return "string";
  }
  return "?";
}

namespace {
thread_local BufferPool* current_pool = nullptr;
}

BufferPool::Scope::Scope(BufferPool* pool) : previous_(current_pool) { current_pool = pool; }
BufferPool::Scope::~Scope() { current_pool = previous_; }

std::shared_ptr<float> BufferPool::take(size_t n, bool zero) {
  std::unique_ptr<ScratchFloats> v;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Best fit, and not more than twice the request (a huge buffer should not serve a tiny tensor).
    auto it = free_.lower_bound(n);
    if (it != free_.end() && it->first <= 2 * n + 1024) {
      v = std::move(it->second);
      bytes_ -= it->first * sizeof(float);
      free_.erase(it);
    }
  }
  if (!v) v = std::make_unique<ScratchFloats>(n);  // fresh storage is zero already
  else if (zero) std::fill_n(v->data(), n, 0.f);
  std::weak_ptr<BufferPool> weak = weak_from_this();
  std::shared_ptr<ScratchFloats> holder(v.release(), [weak](ScratchFloats* p) {
    if (auto pool = weak.lock()) pool->give_back(p);
    else delete p;
  });
  return std::shared_ptr<float>(holder, holder->data());
}

void BufferPool::give_back(ScratchFloats* v) {
  std::unique_ptr<ScratchFloats> owned(v);
  size_t bytes = v->size() * sizeof(float);
  std::lock_guard<std::mutex> lock(mutex_);
  if (bytes_ + bytes > max_bytes_ || bytes == 0) return;  // over budget: really free it
  bytes_ += bytes;
  free_.emplace(v->size(), std::move(owned));
}

size_t BufferPool::pooled_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

std::shared_ptr<float> alloc_f32(size_t n, bool zero) {
  // An empty vector's data() may be null, which would make an empty (0-element) tensor look like an
  // output that was never produced; keep at least one element of storage.
  n = std::max<size_t>(n, 1);
  if (current_pool) return current_pool->take(n, zero);
  auto holder = std::make_shared<ScratchFloats>(n);
  return std::shared_ptr<float>(holder, holder->data());
}

Tensor Tensor::f32(Shape shape) {
  Tensor t;
  t.dtype = DType::F32;
  t.f = alloc_f32(static_cast<size_t>(numel(shape)));
  t.shape = std::move(shape);
  return t;
}
Tensor Tensor::f32_for_overwrite(Shape shape) {
  Tensor t;
  t.dtype = DType::F32;
  t.f = alloc_f32(static_cast<size_t>(numel(shape)), false);
  t.shape = std::move(shape);
  return t;
}
Tensor Tensor::i32(Shape shape) {
  Tensor t;
  t.dtype = DType::I32;
  t.i = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(numel(shape)));
  t.shape = std::move(shape);
  return t;
}
Tensor Tensor::boolean(Shape shape) {
  Tensor t = i32(std::move(shape));
  t.dtype = DType::Bool;
  return t;
}
Tensor Tensor::str(std::vector<std::string> values, Shape shape) {
  Tensor t;
  t.dtype = DType::Str;
  t.s = std::make_shared<std::vector<std::string>>(std::move(values));
  t.shape = std::move(shape);
  return t;
}
Tensor Tensor::scalar_f32(float v) {
  Tensor t = f32({});
  t.f.get()[0] = v;
  return t;
}
Tensor Tensor::scalar_i32(int32_t v) {
  Tensor t = i32({});
  (*t.i)[0] = v;
  return t;
}

Tensor Tensor::reshaped(Shape new_shape) const {
  if (numel(new_shape) != size())
    throw Error("EINVAL", "cannot reshape " + shape_str(shape) + " to " + shape_str(new_shape));
  Tensor t = *this;
  t.shape = std::move(new_shape);
  return t;
}

double Tensor::at(int64_t k) const {
  if (k < 0 || k >= size()) throw Error("EINVAL", "element index out of range");
  switch (dtype) {
    case DType::F32: return f ? f.get()[k] : half_to_float(h.get()[k]);
    case DType::I32:
    case DType::Bool: return (*i)[static_cast<size_t>(k)];
    case DType::Str: break;
  }
  throw Error("EINVAL", "a string value is used where a number is expected");
}

Tensor as_f32(const Tensor& t) {
  if (t.is_half_backed()) {
    Tensor out = Tensor::f32(t.shape);
    const uint16_t* src = t.h.get();
    float* dst = out.fdata();
    for (int64_t k = 0, n = t.size(); k < n; ++k) dst[k] = half_to_float(src[k]);
    out.declared = t.declared;
    return out;
  }
  if (t.dtype == DType::F32) return t;
  if (t.dtype == DType::Str) throw Error("EINVAL", "a string value is used where a number is expected");
  Tensor out = Tensor::f32(t.shape);
  const int32_t* src = t.idata();
  float* dst = out.fdata();
  for (int64_t k = 0, n = t.size(); k < n; ++k) dst[k] = static_cast<float>(src[k]);
  return out;
}

Tensor as_i32(const Tensor& t) {
  if (t.is_half_backed()) return as_i32(as_f32(t));
  if (t.dtype == DType::I32) return t;
  if (t.dtype == DType::Bool) {
    Tensor out = t;
    out.dtype = DType::I32;
    return out;
  }
  if (t.dtype == DType::Str) throw Error("EINVAL", "a string value is used where a number is expected");
  Tensor out = Tensor::i32(t.shape);
  const float* src = t.fdata();
  int32_t* dst = out.idata();
  for (int64_t k = 0, n = t.size(); k < n; ++k) {
    float v = std::trunc(src[k]);
    dst[k] = v >= 2147483647.f ? INT32_MAX : v <= -2147483648.f ? INT32_MIN : static_cast<int32_t>(v);
  }
  return out;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t k = s.size(); k-- > 0;) {
    st[k] = acc;
    acc *= s[k];
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& what) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t k = 0; k < r; ++k) {
    int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
    int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error("EINVAL", what + ": shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    out[k] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  auto src = strides_of(in);
  size_t off = out.size() - in.size();
  for (size_t k = 0; k < in.size(); ++k) st[off + k] = in[k] == 1 ? 0 : src[k];
  return st;
}

int64_t norm_axis(int64_t axis, int64_t rank, const std::string& what) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw Error("EINVAL", what + ": axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return a;
}

}  // namespace cmo::exec
