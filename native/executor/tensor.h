// Runtime values of the reference executor. Every float type (fp16, fp32, fp64, bf16) is computed in
// fp32; every integer type (int8..int64, uint1..uint32, sub-byte) in int32; bool in int32 (0/1).
// `declared` keeps the MIL dtype the program declared so outputs can be converted back (fp16 RNE).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../util/free_memory.h"

namespace cmo::exec {

enum class DType { F32, I32, Bool, Str };

using Shape = std::vector<int64_t>;

struct ListValue;  // MIL list (make_list / list_* ops): see below
struct StateCell;  // MIL state (read_state / coreml_update_state): see below
class DerivedCache;  // forms derived once from a constant (derived_cache.h)

int64_t numel(const Shape& s);
std::string shape_str(const Shape& s);
const char* dtype_name(DType t);

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  std::string declared;  // MIL dtype name ("fp16", "int8", ...); empty = same as dtype
  // fp32 data: an owned buffer (recycled through the running graph's BufferPool) or a read-only view
  // into a memory-mapped weight file (fp32 blobs are not copied); the shared_ptr keeps its owner alive.
  std::shared_ptr<float> f;
  // fp16 weights kept as halves (a view into the weight file, or a decoded constexpr output) so a
  // multi-GB fp16 model is not doubled in memory; converted to fp32 for the one op that uses them
  // (Graph::run_node). A tensor has either f or h set, never both.
  std::shared_ptr<const uint16_t> h;
  std::shared_ptr<std::vector<int32_t>> i;  // I32 and Bool
  std::shared_ptr<std::vector<std::string>> s;
  // Non-tensor MIL values. A list is immutable (list_write returns a new list sharing the element
  // tensors); a state is a cell the graph owns and keeps across predict calls.
  std::shared_ptr<const ListValue> list;
  std::shared_ptr<StateCell> state;
  // Set on the graph's float constants only: what kernels derived from these values (shared by copies).
  std::shared_ptr<DerivedCache> derived;

  static Tensor f32(Shape shape);
  // An F32 tensor whose contents are unspecified (a recycled buffer is not zero-filled): for kernels
  // that write every element.
  static Tensor f32_for_overwrite(Shape shape);
  static Tensor i32(Shape shape);
  static Tensor boolean(Shape shape);
  static Tensor str(std::vector<std::string> values, Shape shape = {});
  static Tensor scalar_f32(float v);
  static Tensor scalar_i32(int32_t v);

  int64_t size() const { return numel(shape); }
  // True once the value holds data of some kind (an op output that was set).
  bool produced() const { return f || h || i || s || list || state; }
  bool is_half_backed() const { return !f && h; }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  bool is_float() const { return dtype == DType::F32; }
  bool is_int() const { return dtype == DType::I32 || dtype == DType::Bool; }
  float* fdata() { return f.get(); }
  const float* fdata() const { return f.get(); }
  int32_t* idata() { return i->data(); }
  const int32_t* idata() const { return i->data(); }

  // Same data, new shape (zero-copy).
  Tensor reshaped(Shape new_shape) const;
  // Element k as double regardless of dtype (scalars and small parameter tensors).
  double at(int64_t k) const;
};

// A list value: the elements written so far (an empty Tensor = never written), the element dtype
// and shape declared by make_list (elem_known = false when the shape is symbolic).
struct ListValue {
  std::vector<Tensor> items;
  std::string dtype = "fp32";
  Shape elem_shape;
  bool elem_known = false;
  bool dynamic_length = true;
};

// A state value: the wrapped tensor's current content (replaced, never mutated in place, so a
// tensor read from it stays valid after a later write).
struct StateCell {
  std::string dtype;
  Shape shape;
  Tensor value;
};

// Recycles fp32 buffers between ops and between predict() calls: every freed intermediate goes
// back here instead of to the OS, so steady-state runs do not page-fault fresh memory. Tensor::f32
// draws from the pool installed on the calling thread by BufferPool::Scope (none = plain new).
class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  explicit BufferPool(size_t max_bytes = size_t{1} << 30) : max_bytes_(max_bytes) {}
  std::shared_ptr<float> take(size_t n, bool zero = true);  // at least n elements, zero-filled unless !zero
  size_t pooled_bytes() const;

  class Scope {  // installs `pool` as the current thread's pool for its lifetime
   public:
    explicit Scope(BufferPool* pool);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    BufferPool* previous_;
  };

 private:
  void give_back(ScratchFloats* v);
  mutable std::mutex mutex_;
  std::multimap<size_t, std::unique_ptr<ScratchFloats>> free_;  // by capacity
  size_t bytes_ = 0;
  size_t max_bytes_;
};

// A fresh fp32 buffer of n elements (from the current thread's pool when there is one), zero-filled unless !zero.
std::shared_ptr<float> alloc_f32(size_t n, bool zero = true);

// Copy of t as F32 (shares storage when already F32).
Tensor as_f32(const Tensor& t);
// Copy of t as I32 (truncates floats toward zero; shares storage when already I32/Bool).
Tensor as_i32(const Tensor& t);

// Row-major strides.
std::vector<int64_t> strides_of(const Shape& s);
// Numpy broadcast of two shapes; throws on mismatch with `what` in the message.
Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& what);
// Strides of `in` as seen from an output of shape `out` (0 on broadcast axes), right-aligned.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);
// Normalizes a possibly negative axis against rank; throws when out of range.
int64_t norm_axis(int64_t axis, int64_t rank, const std::string& what);

}  // namespace cmo::exec
