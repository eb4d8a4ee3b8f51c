#include "weight_stream.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include "../util/byte_pool.h"
#include "../util/error.h"
#include "../util/file_reader.h"
#include "../util/free_memory.h"
#include "../util/thread_pool.h"

namespace cmo::stream {

namespace {

// Record slices start on 64-byte boundaries, as records do in a blob file.
constexpr uint64_t kSliceAlign = 64;
size_t aligned(uint64_t bytes) { return static_cast<size_t>((bytes + kSliceAlign - 1) / kSliceAlign * kSliceAlign); }

// Grow-only buffer for a window's inputs, kept across windows so that its pages are faulted in
// once per run; mapped 2 MiB-aligned with transparent huge pages asked for (ScratchFloats).
class InputArena {
 public:
  void reserve(size_t bytes) {
    if (bytes <= capacity_) return;
    buffer_.reset();  // the old window's inputs are no longer needed: do not hold both
    buffer_ = std::make_unique<ScratchFloats>((bytes + kSliceAlign + sizeof(float) - 1) / sizeof(float));
    capacity_ = bytes;
  }
  uint8_t* data() const {  // 64-byte aligned (small buffers are not mapped, only new[]-aligned)
    const uintptr_t p = reinterpret_cast<uintptr_t>(buffer_->data());
    return reinterpret_cast<uint8_t*>((p + kSliceAlign - 1) & ~uintptr_t{kSliceAlign - 1});
  }

 private:
  std::unique_ptr<ScratchFloats> buffer_;
  size_t capacity_ = 0;
};

}  // namespace

std::vector<EntryResult> run_weight_stream(const blob::StorageReader& input, blob::StorageWriter& output,
                                           std::vector<Entry>& entries, const StreamOptions& options) {
  // Buffers recycled between this job's weights: at most BytePool::kIdleBytes stay pooled after it
  // (util/byte_pool.h). Declared first, so the pool is trimmed after the writer thread has been joined.
  struct TrimPoolAtEnd {
    ~TrimPoolAtEnd() { BytePool::global().trim(BytePool::kIdleBytes); }
  } trim_pool_at_end;
  std::vector<EntryResult> results(entries.size());
  std::vector<std::vector<blob::Record>> records(entries.size());
  std::vector<uint64_t> entry_bytes(entries.size(), 0);
  double total = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    // Validates every offset before any work starts.
    records[i].push_back(input.record(entries[i].source_offset));
    for (uint64_t extra : entries[i].extra_sources) records[i].push_back(input.record(extra));
    for (const auto& r : records[i]) entry_bytes[i] += r.size_in_bytes;
    total += static_cast<double>(entry_bytes[i]);
  }
  auto check_cancel = [&] {
    if (options.cancelled && options.cancelled()) throw Cancelled();
  };
  // Deduplication of new blobs (OutputBlob::dedup_shape): key → candidates with their bytes.
  struct Written {
    std::vector<uint8_t> bytes;
    uint64_t offset;
  };
  std::map<std::string, std::vector<Written>> written;
  size_t retained = 0;
  auto dedup_key = [](const OutputBlob& b) {
    std::string key = std::to_string(static_cast<unsigned>(b.dtype)) + "|" + b.dedup_shape + "|";
    const size_t head = std::min<size_t>(b.bytes.size(), 64);
    key.append(reinterpret_cast<const char*>(b.bytes.data()), head);
    return key;
  };
  const unsigned threads = ThreadPool::global()->size();
  double done = 0;
  // Appends one computed window to the output, in entry order (dedup, inline small blobs, copies of
  // skipped entries), frees its buffers and releases the input pages the copies mapped in.
  auto write_window = [&](size_t wbegin, size_t wend, std::vector<TransformOutput>& outputs) {
    for (size_t i = wbegin; i < wend; ++i) {
      EntryResult& r = results[i];
      TransformOutput* out = entries[i].transform ? &outputs[i - wbegin] : nullptr;
      // Only verbatim copies read the input through the map; transforms read it with pread.
      const bool copied = !out || !out->skipped.empty();
      if (copied) {
        for (const auto& rec : records[i]) {
          EntryOutput o;
          o.offset = output.copy_record(input, rec);
          o.dtype = rec.dtype;
          o.element_count = rec.element_count;
          r.outputs.push_back(std::move(o));
        }
        if (out) r.skipped = std::move(out->skipped);
      } else {
        for (OutputBlob& b : out->blobs) {
          EntryOutput o;
          o.dtype = b.dtype;
          o.element_count = b.element_count;
          if (b.inline_if_small && b.element_count < kBlobMinElements) {
            o.in_file = false;
            o.bytes = std::move(b.bytes);
          } else if (!b.dedup_shape.empty() && b.element_count >= kDedupMinElements && b.bytes.size() <= kDedupMaxBytes) {
            auto& same = written[dedup_key(b)];
            auto it = std::find_if(same.begin(), same.end(), [&](const Written& w) { return w.bytes == b.bytes; });
            if (it != same.end()) {
              o.offset = it->offset;
            } else {
              o.offset = output.append(b.dtype, b.bytes.data(), b.bytes.size(), b.element_count);
              if (retained + b.bytes.size() <= kDedupMaxRetained) {
                retained += b.bytes.size();
                same.push_back({std::move(b.bytes), o.offset});
              }
            }
          } else {
            o.offset = output.append(b.dtype, b.bytes.data(), b.bytes.size(), b.element_count);
          }
          r.outputs.push_back(std::move(o));
        }
        r.info = std::move(out->info);
        r.passed_through = std::move(out->passed_through);
      }
      if (out) {
        // Blob buffers go back to the pool (pages already faulted in) for the next weights' use.
        for (OutputBlob& b : out->blobs) BytePool::global().give(std::move(b.bytes));
        *out = TransformOutput();  // free the window's memory as we go
      }
      if (copied)
        for (const auto& rec : records[i]) input.file().release(rec.data_offset, rec.size_in_bytes);
      done += static_cast<double>(entry_bytes[i]);
      if (options.progress) options.progress(done, total);
    }
  };
  // Window w is written by its own thread while window w+1 is computed, so the pool never waits on
  // the disk (at most two windows of outputs are held).
  struct PendingWrite {
    std::thread thread;
    std::exception_ptr error;
    std::vector<TransformOutput> outputs;
    void join() {
      if (thread.joinable()) thread.join();
    }
    ~PendingWrite() { join(); }
  };
  PendingWrite pending;
  auto finish_pending = [&] {
    pending.join();
    if (pending.error) std::rethrow_exception(std::exchange(pending.error, nullptr));
  };
  // Inputs of the transformed entries of a window, read with pread into one buffer reused for
  // every window (util/file_reader.h: far cheaper than first touches of mapped pages).
  const FileReader reader(input.path());
  InputArena arena;
  size_t begin = 0;
  while (begin < entries.size()) {
    check_cancel();
    // Window: up to window_bytes of input, at least one entry, at most a few entries per thread.
    size_t end = begin;
    uint64_t window = 0;
    while (end < entries.size() && (end == begin || (window + entry_bytes[end] <= options.window_bytes &&
                                                     end - begin < 4 * static_cast<size_t>(threads)))) {
      window += entry_bytes[end];
      ++end;
    }
    std::vector<TransformOutput> outputs(end - begin);
    std::vector<size_t> transformed;
    std::vector<size_t> slice;  // arena offset of each transformed entry's first record
    size_t arena_bytes = 0;
    for (size_t i = begin; i < end; ++i) {
      if (!entries[i].transform) continue;
      transformed.push_back(i);
      slice.push_back(arena_bytes);
      for (const auto& r : records[i]) arena_bytes += aligned(r.size_in_bytes);
    }
    arena.reserve(arena_bytes);
    // Big tensors parallelise inside their transform; many small ones parallelise here. Each task
    // reads its own records, so reading overlaps the other tasks' work.
    parallel_for(transformed.size(), [&](size_t t) {
      size_t i = transformed[t];
      if (options.cancelled && options.cancelled()) return;
      std::vector<Source> sources;
      uint8_t* dst = arena.data() + slice[t];
      for (const auto& r : records[i]) {
        input.data(r);  // bounds check against the file (throws naming it)
        reader.read_at(r.data_offset, static_cast<size_t>(r.size_in_bytes), dst);
        sources.push_back({r, dst});
        dst += aligned(r.size_in_bytes);
      }
      outputs[i - begin] = entries[i].transform(sources);
    });
    finish_pending();
    check_cancel();
    pending.outputs = std::move(outputs);
    pending.thread = std::thread([&write_window, &pending, begin, end] {
      try {
        write_window(begin, end, pending.outputs);
      } catch (...) {
        pending.error = std::current_exception();
      }
    });
    begin = end;
  }
  finish_pending();
  return results;
}

}  // namespace cmo::stream
