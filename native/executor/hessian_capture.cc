#include "hessian_capture.h"

#include <chrono>
#include <cstring>

#include "../util/error.h"
#include "../util/thread_pool.h"

namespace cmo::exec {

HessianCapture::HessianCapture(std::vector<CaptureWatch> watches) : watches_(std::move(watches)), hits_(watches_.size(), 0) {
  for (size_t k = 0; k < watches_.size(); ++k) by_name_[watches_[k].op] = k;
}

void HessianCapture::observe(const Node& node, const OpContext& ctx) {
  auto it = by_name_.find(node.name);
  if (it == by_name_.end()) return;
  const CaptureWatch& w = watches_[it->second];
  ++hits_[it->second];
  if (w.hessians.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  switch (w.kind) {
    case CaptureKind::Linear: feed_linear(w, ctx); break;
    case CaptureKind::Matmul: feed_matmul(w, ctx); break;
    case CaptureKind::Conv: feed_conv(w, ctx); break;
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

namespace {

int64_t samples_of(const Tensor& x) { return x.rank() >= 3 ? x.shape[0] : 1; }

void check_columns(const OpContext& ctx, const kernels::Hessian& h, int64_t columns) {
  if (h.columns() != columns)
    ctx.fail("calibration: the input has " + std::to_string(columns) + " columns, the Hessian " + std::to_string(h.columns()));
}

}  // namespace

void HessianCapture::feed_linear(const CaptureWatch& w, const OpContext& ctx) {
  const Tensor& x = ctx.in("x");
  if (x.rank() < 1 || !x.is_float()) ctx.fail("calibration: x must be a float tensor");
  const int64_t c = x.shape.back();
  check_columns(ctx, *w.hessians[0], c);
  Tensor xf = as_f32(x);
  w.hessians[0]->add_rows(xf.fdata(), c ? x.size() / c : 0, samples_of(x), ThreadPool::global().get());
}

void HessianCapture::feed_matmul(const CaptureWatch& w, const OpContext& ctx) {
  const Tensor& x = ctx.in("x");
  if (x.rank() < 1 || !x.is_float()) ctx.fail("calibration: x must be a float tensor");
  const bool tx = ctx.flag("transpose_x", false) && x.rank() >= 2;
  Tensor xf = as_f32(x);
  if (!tx) {
    const int64_t k = x.shape.back();
    check_columns(ctx, *w.hessians[0], k);
    w.hessians[0]->add_rows(xf.fdata(), k ? x.size() / k : 0, samples_of(x), ThreadPool::global().get());
    return;
  }
  // x is [..., K, M]: the rows the product contracts are its columns; transpose each matrix.
  const int64_t k = x.shape[x.shape.size() - 2], m = x.shape.back();
  check_columns(ctx, *w.hessians[0], k);
  const int64_t batch = (k > 0 && m > 0) ? x.size() / (k * m) : 0;
  std::vector<float> rows(static_cast<size_t>(x.size()));
  const float* src = xf.fdata();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < m; ++j) rows[static_cast<size_t>((b * m + j) * k + i)] = src[(b * k + i) * m + j];
  w.hessians[0]->add_rows(rows.data(), batch * m, samples_of(x), ThreadPool::global().get());
}

kernels::ConvGeometry conv_geometry(const OpContext& ctx, int64_t in_channels, const Shape& ws, int64_t h, int64_t w) {
  const bool one_d = ws.size() == 3;
  if (ws.size() != 3 && ws.size() != 4) ctx.fail("calibration: only 1-D and 2-D convolutions are captured");
  kernels::ConvGeometry g;
  g.in_channels = in_channels;
  g.groups = static_cast<int64_t>(ctx.num("groups", 1));
  g.kernel_h = one_d ? 1 : ws[2];
  g.kernel_w = ws.back();
  const size_t ns = one_d ? 1 : 2;
  auto strides = ctx.ints("strides", std::vector<int64_t>(ns, 1));
  auto dil = ctx.ints("dilations", std::vector<int64_t>(ns, 1));
  if (strides.size() != ns || dil.size() != ns) ctx.fail("calibration: strides/dilations need one value per spatial dim");
  g.stride_h = one_d ? 1 : strides[0];
  g.stride_w = strides.back();
  g.dilation_h = one_d ? 1 : dil[0];
  g.dilation_w = dil.back();
  const std::string type = ctx.str("pad_type", "valid");
  std::vector<int64_t> before(ns, 0), after(ns, 0);
  const std::vector<int64_t> in = one_d ? std::vector<int64_t>{w} : std::vector<int64_t>{h, w};
  const std::vector<int64_t> k = one_d ? std::vector<int64_t>{g.kernel_w} : std::vector<int64_t>{g.kernel_h, g.kernel_w};
  if (type == "custom") {
    auto pad = ctx.ints("pad", std::vector<int64_t>(2 * ns, 0));
    if (pad.size() != 2 * ns) ctx.fail("calibration: pad must have 2 values per spatial dimension");
    for (size_t i = 0; i < ns; ++i) before[i] = pad[2 * i], after[i] = pad[2 * i + 1];
  } else if (type == "same" || type == "same_lower") {
    const std::vector<int64_t> st = one_d ? std::vector<int64_t>{g.stride_w} : std::vector<int64_t>{g.stride_h, g.stride_w};
    const std::vector<int64_t> dl = one_d ? std::vector<int64_t>{g.dilation_w} : std::vector<int64_t>{g.dilation_h, g.dilation_w};
    for (size_t i = 0; i < ns; ++i) {  // the rule of ops/conv.cc conv_pads
      const int64_t k_eff = (k[i] - 1) * dl[i] + 1;
      const int64_t out = (in[i] + st[i] - 1) / st[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * st[i] + k_eff - in[i]);
      before[i] = type == "same" ? total / 2 : (total + 1) / 2;
      after[i] = total - before[i];
    }
  } else if (type != "valid") {
    ctx.fail("calibration: unknown pad_type '" + type + "'");
  }
  if (one_d) {
    g.pad_left = before[0], g.pad_right = after[0];
  } else {
    g.pad_top = before[0], g.pad_bottom = after[0], g.pad_left = before[1], g.pad_right = after[1];
  }
  g.validate(h, w);
  return g;
}

void HessianCapture::feed_conv(const CaptureWatch& w, const OpContext& ctx) {
  const Tensor& x = ctx.in("x");
  const Tensor& weight = ctx.in("weight");
  if (!x.is_float() || (x.rank() != 3 && x.rank() != 4)) ctx.fail("calibration: conv input must be [N, C, L] or [N, C, H, W]");
  const bool one_d = x.rank() == 3;
  const int64_t n = x.shape[0], c = x.shape[1], h = one_d ? 1 : x.shape[2], wd = x.shape.back();
  kernels::ConvGeometry g = conv_geometry(ctx, c, weight.shape, h, wd);
  if (static_cast<int64_t>(w.hessians.size()) != g.groups)
    ctx.fail("calibration: " + std::to_string(g.groups) + " groups, " + std::to_string(w.hessians.size()) + " Hessians");
  Tensor xf = as_f32(x);
  for (int64_t gi = 0; gi < g.groups; ++gi) {
    check_columns(ctx, *w.hessians[static_cast<size_t>(gi)], g.columns());
    w.hessians[static_cast<size_t>(gi)]->add_conv_input(xf.fdata(), n, h, wd, g, gi, ThreadPool::global().get());
  }
}

}  // namespace cmo::exec
