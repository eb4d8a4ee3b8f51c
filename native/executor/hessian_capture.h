// Calibration capture: while a graph runs (RunOptions::observe), the inputs of watched ops are fed
// into layer-input Hessians (kernels/hessian.h) as the op sees them, so activations never leave C++.
//   linear  x [..., C_in]                    -> rows of C_in columns
//   matmul  x [..., M, K] (transpose_x: [..., K, M]) with a const y -> rows of K columns
//   conv    x [N, C_in, H, W] (or 1-D [N, C_in, L]) -> one Hessian per group, the unfolded window
//           (pad_type / pad, strides, dilations, groups read from the op, as the kernel reads them)
// The reference's sample count (`tmp`): the first dimension of a rank >= 3 input, 1 for rank <= 2.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "../kernels/hessian.h"
#include "graph.h"

namespace cmo::exec {

enum class CaptureKind { Linear, Matmul, Conv };

struct CaptureWatch {
  std::string op;  // node name
  CaptureKind kind = CaptureKind::Linear;
  // One Hessian (linear / matmul) or one per conv group, fed in that order. Empty: the watch only
  // counts hits (another watch on the same input feeds the shared Hessian).
  std::vector<std::shared_ptr<kernels::Hessian>> hessians;
};

class HessianCapture {
 public:
  explicit HessianCapture(std::vector<CaptureWatch> watches);

  // RunOptions::observe: feeds the op's input when the op is watched. Throws cmo::Error("EINVAL")
  // naming the op when its input does not fit the Hessian (columns, groups, rank).
  void observe(const Node& node, const OpContext& ctx);

  // Per watch, how many times its op ran.
  const std::vector<int64_t>& hits() const { return hits_; }
  // Seconds spent feeding Hessians (part of the runs' time).
  double seconds() const { return seconds_; }

 private:
  void feed_linear(const CaptureWatch& w, const OpContext& ctx);
  void feed_matmul(const CaptureWatch& w, const OpContext& ctx);
  void feed_conv(const CaptureWatch& w, const OpContext& ctx);

  std::vector<CaptureWatch> watches_;
  std::unordered_map<std::string, size_t> by_name_;
  std::vector<int64_t> hits_;
  double seconds_ = 0;
};

// The conv geometry the executor's conv kernel uses for input spatial size (h, w): pad_type
// valid / same / same_lower / custom, strides, dilations, groups. A 1-D conv is 2-D with h = 1.
kernels::ConvGeometry conv_geometry(const OpContext& ctx, int64_t in_channels, const Shape& weight_shape, int64_t h,
                                    int64_t w);

}  // namespace cmo::exec
