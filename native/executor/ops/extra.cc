// The rest of the iOS15-iOS17 op set the converters emit that had no kernel yet: thresholded_relu,
// reverse_sequence (TF bidirectional RNNs), reshape_like (iOS16), non_maximum_suppression (TF / mmdeploy
// detection heads), classify (ct.convert with a ClassifierConfig).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "common.h"

namespace cmo::exec {
namespace {

// x if x >= alpha else 0 (the op documentation; coremltools' constant folding writes max(x - alpha, 0),
// which disagrees, so programs are not folded through it here).
void k_thresholded_relu(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  const float alpha = static_cast<float>(c.num("alpha", 1.0));
  Tensor y = Tensor::f32(x.shape);
  for (int64_t k = 0; k < x.size(); ++k) y.fdata()[k] = x.fdata()[k] >= alpha ? x.fdata()[k] : 0.f;
  c.set(0, std::move(y));
}

// For each index b along batch_axis, reverses the first lengths[b] entries along seq_axis.
void k_reverse_sequence(OpContext& c) {
  const Tensor& x = c.in("x");
  std::vector<int64_t> lengths = c.ints("lengths");
  const int64_t sa = norm_axis(static_cast<int64_t>(c.num("seq_axis", 0)), x.rank(), "reverse_sequence");
  const int64_t ba = norm_axis(static_cast<int64_t>(c.num("batch_axis", 0)), x.rank(), "reverse_sequence");
  if (sa == ba) c.fail("seq_axis and batch_axis must differ");
  if (static_cast<int64_t>(lengths.size()) != x.shape[ba]) c.fail("lengths must have one entry per batch index");
  for (int64_t l : lengths)
    if (l < 0 || l > x.shape[sa]) c.fail("lengths must be within [0, " + std::to_string(x.shape[sa]) + "]");
  auto st = strides_of(x.shape);
  std::vector<int64_t> src(static_cast<size_t>(x.size()));
  std::vector<int64_t> idx(static_cast<size_t>(x.rank()));
  for (int64_t e = 0; e < x.size(); ++e) {
    int64_t rem = e;
    for (int64_t d = x.rank(); d-- > 0;) idx[d] = rem % x.shape[d], rem /= x.shape[d];
    int64_t s = idx[sa], l = lengths[static_cast<size_t>(idx[ba])];
    src[static_cast<size_t>(e)] = e + ((s < l ? l - 1 - s : s) - s) * st[sa];
  }
  Tensor y;
  if (x.is_float()) {
    Tensor xf = as_f32(x);
    y = Tensor::f32(x.shape);
    for (int64_t e = 0; e < x.size(); ++e) y.fdata()[e] = xf.fdata()[src[e]];
  } else {
    y = Tensor::i32(x.shape);
    y.dtype = x.dtype;
    for (int64_t e = 0; e < x.size(); ++e) y.idata()[e] = x.idata()[src[e]];
  }
  c.set(0, std::move(y));
}

// Output shape = concat over i of ref_tensors[i].shape[begins[i] : (end_masks[i] ? rank : ends[i])].
void k_reshape_like(OpContext& c) {
  const Tensor& x = c.in("x");
  auto refs = c.list("ref_tensors"), begins = c.list("begins"), ends = c.list("ends"), masks = c.list("end_masks");
  if (begins.size() != refs.size() || ends.size() != refs.size() || masks.size() != refs.size())
    c.fail("ref_tensors, begins, ends and end_masks must have the same length");
  Shape os;
  for (size_t i = 0; i < refs.size(); ++i) {
    const Shape& rs = refs[i]->shape;
    const int64_t r = static_cast<int64_t>(rs.size());
    auto clampi = [&](int64_t v) { return std::min(std::max(v < 0 ? v + r : v, int64_t{0}), r); };
    int64_t b = clampi(static_cast<int64_t>(begins[i]->at(0)));
    int64_t e = masks[i]->at(0) != 0 ? r : clampi(static_cast<int64_t>(ends[i]->at(0)));
    for (int64_t d = b; d < e; ++d) os.push_back(rs[d]);
  }
  if (numel(os) != x.size()) c.fail("cannot reshape " + shape_str(x.shape) + " to " + shape_str(os));
  Tensor y = x.is_half_backed() ? as_f32(x) : x;
  c.set(0, y.reshaped(os));
}

// boxes [n, B, 4] as [center_x, center_y, width, height], scores [n, B, K]. Per image: the box score
// is its best class score; boxes scoring <= score_threshold are dropped; greedy suppression in
// descending score order removes boxes whose IoU with a kept box exceeds iou_threshold (within the
// box's argmax class when per_class_suppression). Outputs padded to max_boxes (boxes/scores 0,
// indices -1) plus the count.
void k_non_maximum_suppression(OpContext& c) {
  Tensor boxes = as_f32(c.in("boxes")), scores = as_f32(c.in("scores"));
  if (boxes.rank() != 3 || boxes.shape[2] != 4 || scores.rank() != 3 || scores.shape[0] != boxes.shape[0] ||
      scores.shape[1] != boxes.shape[1])
    c.fail("boxes must be [n, B, 4] and scores [n, B, K]");
  const int64_t N = boxes.shape[0], B = boxes.shape[1], K = scores.shape[2];
  const double iou_t = c.num("iou_threshold"), score_t = c.num("score_threshold", -INFINITY);
  const int64_t M = static_cast<int64_t>(c.num("max_boxes"));
  const bool per_class = c.flag("per_class_suppression", false);
  if (M < 0) c.fail("max_boxes must be >= 0");
  Tensor ob = Tensor::f32({N, M, 4}), os = Tensor::f32({N, M, K});
  Tensor oi = Tensor::i32({N, M}), on = Tensor::i32({N});
  std::fill(oi.idata(), oi.idata() + N * M, -1);
  for (int64_t n = 0; n < N; ++n) {
    const float* bx = boxes.fdata() + n * B * 4;
    const float* sc = scores.fdata() + n * B * K;
    std::vector<float> best(static_cast<size_t>(B));
    std::vector<int64_t> cls(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      const float* s = sc + b * K;
      cls[b] = std::max_element(s, s + K) - s;
      best[b] = s[cls[b]];
    }
    std::vector<int64_t> order(static_cast<size_t>(B));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return best[a] > best[b]; });
    auto iou = [&](int64_t a, int64_t b) {
      const float* p = bx + a * 4;
      const float* q = bx + b * 4;
      double ax0 = p[0] - p[2] / 2.0, ax1 = p[0] + p[2] / 2.0, ay0 = p[1] - p[3] / 2.0, ay1 = p[1] + p[3] / 2.0;
      double bx0 = q[0] - q[2] / 2.0, bx1 = q[0] + q[2] / 2.0, by0 = q[1] - q[3] / 2.0, by1 = q[1] + q[3] / 2.0;
      double iw = std::max(0.0, std::min(ax1, bx1) - std::max(ax0, bx0));
      double ih = std::max(0.0, std::min(ay1, by1) - std::max(ay0, by0));
      double inter = iw * ih, uni = double(p[2]) * p[3] + double(q[2]) * q[3] - inter;
      return uni > 0 ? inter / uni : 0.0;
    };
    std::vector<int64_t> kept;
    for (int64_t b : order) {
      if (static_cast<int64_t>(kept.size()) >= M) break;
      if (!(best[b] > score_t)) continue;
      bool keep = true;
      for (int64_t k : kept)
        if ((!per_class || cls[k] == cls[b]) && iou(k, b) > iou_t) {
          keep = false;
          break;
        }
      if (keep) kept.push_back(b);
    }
    for (size_t j = 0; j < kept.size(); ++j) {
      std::copy(bx + kept[j] * 4, bx + kept[j] * 4 + 4, ob.fdata() + (n * M + static_cast<int64_t>(j)) * 4);
      std::copy(sc + kept[j] * K, sc + kept[j] * K + K, os.fdata() + (n * M + static_cast<int64_t>(j)) * K);
      oi.idata()[n * M + static_cast<int64_t>(j)] = static_cast<int32_t>(kept[j]);
    }
    on.idata()[n] = static_cast<int32_t>(kept.size());
  }
  c.set(0, std::move(ob));
  if (c.num_outputs() > 1) c.set(1, std::move(os));
  if (c.num_outputs() > 2) c.set(2, std::move(oi));
  if (c.num_outputs() > 3) c.set(3, std::move(on));
}

// classify(probabilities [N] (leading 1s allowed), classes [N] strings or ints) -> (the label of the
// first maximum, the probabilities). The second output is MIL's dictionary<label, fp64>; here it is
// the probability vector in class order (the TS layer attaches the labels).
void k_classify(OpContext& c) {
  Tensor p = as_f32(c.in("probabilities"));
  const Tensor& classes = c.in("classes");
  const int64_t n = classes.size();
  if (n < 1 || p.size() != n) c.fail("probabilities have " + std::to_string(p.size()) + " values for " + std::to_string(n) + " classes");
  const int64_t k = std::max_element(p.fdata(), p.fdata() + n) - p.fdata();
  if (classes.dtype == DType::Str) c.set(0, Tensor::str({(*classes.s)[static_cast<size_t>(k)]}));
  else c.set(0, Tensor::scalar_i32(static_cast<int32_t>(classes.at(k))));
  if (c.num_outputs() > 1) c.set(1, p.reshaped({n}));
}

}  // namespace

void register_extra_ops() {
  register_kernel("classify", k_classify);
  register_kernel("thresholded_relu", k_thresholded_relu);
  register_kernel("reverse_sequence", k_reverse_sequence);
  register_kernel("reshape_like", k_reshape_like);
  register_kernel("non_maximum_suppression", k_non_maximum_suppression);
}

}  // namespace cmo::exec
