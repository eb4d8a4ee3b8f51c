// Palettization of one weight tensor, split into channel groups exactly as coremltools'
// grouped_channelwise_compress does (coreml-format.md §4.3, §5.2), with the per-group LUT built by
// exact 1-D k-means, uniform or unique mode, or vector k-means (cluster_dim > 1). Groups run in
// parallel on the shared pool. No N-API here: the addon and the streaming palettize pass both call
// palettize_tensor() on plain views (e.g. of a memory-mapped weight.bin).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cmo::kernels {

enum class PalettizeMode { kKmeans, kUniform, kUnique };
enum class WeightType { kFloat16, kFloat32 };

struct WeightView {
  WeightType type = WeightType::kFloat16;
  const void* data = nullptr;  // fp16 bit patterns (uint16) or float, row-major
  std::vector<int64_t> shape;
  size_t elements() const;
};

struct PalettizeParams {
  PalettizeMode mode = PalettizeMode::kKmeans;
  int nbits = 4;            // {1,2,3,4,6,8}; ignored for unique (computed)
  int64_t group_size = 0;   // channels per group along channel_axis; 0 = one group (per tensor)
  int channel_axis = 0;     // output-channel axis: grouping, vector axis, per-channel-scale reduction
  int cluster_dim = 1;      // > 1: vector palettization along channel_axis
  bool per_channel_scale = false;
  uint64_t seed = 0;        // vector k-means only
  unsigned threads = 0;     // 0 = whole pool
};

// Progress (done, total elements) and cancellation, without any JS dependency.
struct PalettizeHooks {
  std::function<void(double, double)> progress;
  std::function<bool()> cancelled;  // polled between groups and DP layers (any thread); true -> throws cmo::Cancelled
};

struct PalettizeResult {
  bool skipped = false;     // coremltools would leave this weight uncompressed (reason below)
  std::string skip_reason;
  int nbits = 0;
  std::vector<uint8_t> indices;        // unpacked, one per index position (caller packs to uint{n})
  std::vector<int64_t> indices_shape;  // weight shape, channel axis divided by cluster_dim
  WeightType lut_type = WeightType::kFloat16;
  std::vector<uint16_t> lut_f16;       // iOS18 layout [groups on each axis…, 2^nbits, cluster_dim]
  std::vector<float> lut_f32;
  std::vector<int64_t> lut_shape;
  int vector_axis = -1;                // channel axis when cluster_dim > 1
  std::vector<uint16_t> scale_f16;     // per_channel_scale: max|w| over the channel axis (0 -> 1)
  std::vector<float> scale_f32;
  std::vector<int64_t> scale_shape;    // weight rank, channel axis = 1
  double sse = 0;                      // Σ (w − decompressed)², double
  double signal = 0;                   // Σ w²
  size_t groups = 0;
};

// Throws cmo::Error("EINVAL", ...) for bad parameters or NaN/Inf weights.
PalettizeResult palettize_tensor(const WeightView& weight, const PalettizeParams& params,
                                 const PalettizeHooks& hooks = {});

// The op semantics of iOS18 constexpr_lut_to_dense (+ constexpr_blockwise_shift_scale with `scale`),
// coreml-format.md §4.2: out[...] = scale[.../B] · lut[g..., indices[...], j]. `out` has
// indices_shape with vector_axis multiplied by lut_shape[-1]; fp16 LUTs produce fp16 bits.
struct LutDecodeInput {
  const uint8_t* indices = nullptr;
  std::vector<int64_t> indices_shape;
  WeightType type = WeightType::kFloat16;
  const void* lut = nullptr;
  std::vector<int64_t> lut_shape;
  int vector_axis = -1;
  const void* scale = nullptr;  // same dtype as the LUT, or nullptr
  std::vector<int64_t> scale_shape;
};
std::vector<int64_t> decompressed_shape(const LutDecodeInput& in);
void decompress_lut(const LutDecodeInput& in, void* out);

}  // namespace cmo::kernels
