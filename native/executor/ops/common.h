// Helpers shared by the op files: parallel loops sized for elementwise work, broadcast iteration.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "../../util/error.h"
#include "../../util/thread_pool.h"
#include "../graph.h"
#include "../tensor.h"

namespace cmo::exec {

// Runs body(begin, end) over [0, n) in chunks of at least min_chunk items (the minimum work worth a
// hand-off to another thread: 16384 floats of elementwise work take ~5-10 µs); serial below 2·min_chunk.
template <class F>
void parallel_range(int64_t n, unsigned threads, F&& body, int64_t min_chunk = 16384) {
  if (n < 2 * min_chunk || threads == 1) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
  int64_t chunks = std::min<int64_t>(n / min_chunk, 256);
  int64_t step = (n + chunks - 1) / chunks;
  parallel_for(
      static_cast<size_t>(chunks),
      [&](size_t c) {
        int64_t b = static_cast<int64_t>(c) * step, e = std::min(n, b + step);
        if (b < e) body(b, e);
      },
      1, threads);
}

// Calls row(out_offset, len, in_offsets, in_inner_strides) for each innermost row of `out` where the
// inputs (given by shape) broadcast against `out`. Rows are distributed over threads.
template <size_t N, class F>
void broadcast_rows(const Shape& out, const std::array<const Shape*, N>& ins, unsigned threads, F&& row) {
  const size_t r = out.size();
  std::array<std::vector<int64_t>, N> st;
  for (size_t k = 0; k < N; ++k) st[k] = broadcast_strides(*ins[k], out);
  int64_t inner = r ? out[r - 1] : 1;
  int64_t rows = inner ? numel(out) / inner : 0;
  std::array<int64_t, N> inner_st{};
  for (size_t k = 0; k < N; ++k) inner_st[k] = r ? st[k][r - 1] : 0;
  parallel_range(
      rows, threads,
      [&](int64_t b, int64_t e) {
        std::array<int64_t, N> off{};
        for (int64_t row_i = b; row_i < e; ++row_i) {
          int64_t rem = row_i;
          off.fill(0);
          for (size_t d = r - 1; d-- > 0;) {
            int64_t idx = rem % out[d];
            rem /= out[d];
            for (size_t k = 0; k < N; ++k) off[k] += idx * st[k][d];
          }
          row(row_i * inner, inner, off, inner_st);
        }
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)));
}

}  // namespace cmo::exec

namespace cmo::exec {

// dst[i0..ir] = src[sum ik * src_strides[k]] for a dst of shape `shape` (transpose, broadcast, slice).
template <class T>
void strided_copy(const T* src, const std::vector<int64_t>& src_strides, const Shape& shape, T* dst, unsigned threads) {
  const size_t r = shape.size();
  if (r == 0) {
    dst[0] = src[0];
    return;
  }
  int64_t inner = shape[r - 1], inner_st = src_strides[r - 1];
  int64_t rows = inner ? numel(shape) / inner : 0;
  parallel_range(
      rows, threads,
      [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          int64_t rem = row, off = 0;
          for (size_t d = r - 1; d-- > 0;) {
            off += (rem % shape[d]) * src_strides[d];
            rem /= shape[d];
          }
          T* o = dst + row * inner;
          const T* s = src + off;
          if (inner_st == 1) std::copy(s, s + inner, o);
          else
            for (int64_t k = 0; k < inner; ++k) o[k] = s[k * inner_st];
        }
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)));
}

// Copies a tensor of any dtype through strided_copy.
inline Tensor strided_tensor(const Tensor& x, const std::vector<int64_t>& src_strides, int64_t base, const Shape& shape,
                             unsigned threads) {
  Tensor y;
  if (x.dtype == DType::F32) {
    y = Tensor::f32(shape);
    strided_copy(x.fdata() + base, src_strides, shape, y.fdata(), threads);
  } else if (x.dtype == DType::Str) {
    std::vector<std::string> v(static_cast<size_t>(numel(shape)));
    strided_copy(x.s->data() + base, src_strides, shape, v.data(), 1);
    y = Tensor::str(std::move(v), shape);
  } else {
    y = Tensor::i32(shape);
    y.dtype = x.dtype;
    strided_copy(x.idata() + base, src_strides, shape, y.idata(), threads);
  }
  return y;
}

}  // namespace cmo::exec
