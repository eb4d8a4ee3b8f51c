// Reader for Hugging Face safetensors files (u64 LE header length, JSON header, raw little-endian
// tensor data) over a memory map. Opening validates the whole header against the file size, so a
// later read can never leave the mapping; tensors are converted one at a time to fp32 or fp16.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "mapped_file.h"

namespace cmo::safetensors {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, U64, U32, U16, BOOL, F8_E4M3, F8_E5M2 };

const char* dtype_name(DType t);
size_t dtype_bytes(DType t);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // data offsets relative to the start of the data section
  uint64_t end = 0;
  uint64_t element_count = 0;
};

class File {
 public:
  // Throws cmo::Error("EMODELFORMAT", "<path>: ...") for anything inconsistent, ENOENT/EIO to open.
  explicit File(const std::string& path);

  const std::string& path() const noexcept { return map_.path(); }
  uint64_t file_size() const noexcept { return map_.size(); }
  // In file order of the header (JSON object order).
  const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  // nullptr when absent.
  const TensorInfo* find(const std::string& name) const;

  // Converts the tensor into `out` (element_count values). Sources F32, F16, BF16; anything else
  // throws EUNSUPPORTED. fp32 → fp16 rounds to nearest even; bf16 → fp16 rounds once (bf16 → fp32
  // is exact). Large tensors are converted on the thread pool.
  void read_fp32(const TensorInfo& t, float* out) const;
  void read_fp16(const TensorInfo& t, uint16_t* out) const;
  // Lets the kernel drop the tensor's pages (bounded RSS while streaming a large file).
  void release(const TensorInfo& t) const;

 private:
  void parse_header();
  const uint8_t* data_of(const TensorInfo& t) const { return map_.data() + data_start_ + t.begin; }

  MappedFile map_;
  uint64_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Scalar conversions (the per-element reference the tests check against known answers).
inline float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint16_t bf16_to_half(uint16_t b);

}  // namespace cmo::safetensors
