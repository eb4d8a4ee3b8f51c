// Streams a model's weights from the mapped input weight file to a new one, in op order, while
// compressing some of them. Why a window: transforms run in parallel, but coremltools writes blobs
// in op order, so results are appended strictly in entry order; the window bounds how many
// finished-but-unwritten results (and mapped input pages) are alive at once.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../blob/blob.h"

namespace cmo::stream {

// One blob to append to the output: data already packed for sub-byte dtypes.
struct OutputBlob {
  blob::DType dtype = blob::DType::UInt8;
  std::vector<uint8_t> bytes;
  uint64_t element_count = 0;
  // coremltools' blob rule: values with fewer than 10 elements are immediates in the program, not
  // blobs. When set and the rule says immediate, the bytes go back to the caller instead.
  bool inline_if_small = false;
  // When set (the value's shape, e.g. "[256,1]"), a blob with the same dtype, shape and bytes
  // already written by this job is reused instead of written again — coremltools'
  // const_deduplication for constants of >= 100 elements (e.g. the all-zero zero points of two
  // weights with the same channel count share one record).
  std::string dedup_shape;
};

constexpr uint64_t kBlobMinElements = 10;
constexpr uint64_t kDedupMinElements = 100;
constexpr size_t kDedupMaxBytes = 64 << 10;     // bigger values are practically never identical
constexpr size_t kDedupMaxRetained = 64 << 20;  // bytes kept for comparison, per job

// Named numbers a transform hands back to JS (shapes, nbits, squared error, sparsity, ...).
using Info = std::vector<std::pair<std::string, std::vector<double>>>;

// What a transform produced for one entry: blobs to append (in order) and info. A non-empty
// `skipped` means "leave this weight as it was": the input record is copied verbatim.
struct TransformOutput {
  std::vector<OutputBlob> blobs;
  Info info;
  std::string skipped;
  // Set when `blobs` are values passed through unchanged because a later stage of a fused entry
  // left the weight as it was (the blobs are still written); says why.
  std::string passed_through;
};

// One input record of an entry and its bytes (read into memory owned by the stream; valid during
// the transform call).
struct Source {
  blob::Record record;
  const uint8_t* data = nullptr;
};

// A transform reads its input records (usually one; joint compression also reads e.g. a sparse
// weight's mask) and returns the compressed form. It runs on a pool thread and may itself use
// parallel_for.
using Transform = std::function<TransformOutput(const std::vector<Source>& sources)>;

struct Entry {
  uint64_t source_offset = 0;               // metadata offset of the (primary) input record
  std::vector<uint64_t> extra_sources;      // further input records the transform reads
  Transform transform;                      // empty: copy the record verbatim
};

struct EntryOutput {
  bool in_file = true;
  uint64_t offset = 0;         // metadata offset in the output file when in_file
  std::vector<uint8_t> bytes;  // the value itself when it is an immediate
  blob::DType dtype = blob::DType::UInt8;
  uint64_t element_count = 0;
};

struct EntryResult {
  // One per OutputBlob; a copied or skipped entry has one per input record, copied in order.
  std::vector<EntryOutput> outputs;
  Info info;
  std::string skipped;
  std::string passed_through;  // see TransformOutput
};

struct StreamOptions {
  uint64_t window_bytes = 256ull << 20;  // input bytes processed per window
  std::function<void(double done, double total)> progress;
  std::function<bool()> cancelled;
};

// Runs every entry; returns one result per entry, in order. Throws cmo::Cancelled when cancelled
// (the caller deletes the partial output), cmo::Error on bad input.
std::vector<EntryResult> run_weight_stream(const blob::StorageReader& input, blob::StorageWriter& output,
                                           std::vector<Entry>& entries, const StreamOptions& options);

}  // namespace cmo::stream
