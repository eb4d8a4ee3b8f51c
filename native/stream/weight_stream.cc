#include "weight_stream.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <thread>
#include <utility>

#include "../util/error.h"
#include "../util/thread_pool.h"

namespace cmo::stream {

std::vector<EntryResult> run_weight_stream(const blob::StorageReader& input, blob::StorageWriter& output,
                                           std::vector<Entry>& entries, const StreamOptions& options) {
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
  // skipped entries), frees its buffers and releases its input pages.
  auto write_window = [&](size_t wbegin, size_t wend, std::vector<TransformOutput>& outputs) {
    for (size_t i = wbegin; i < wend; ++i) {
      EntryResult& r = results[i];
      TransformOutput* out = entries[i].transform ? &outputs[i - wbegin] : nullptr;
      if (!out || !out->skipped.empty()) {
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
      if (out) *out = TransformOutput();  // free the window's memory as we go
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
    for (size_t i = begin; i < end; ++i)
      if (entries[i].transform)
        for (const auto& rec : records[i]) input.file().populate(rec.data_offset, rec.size_in_bytes);
    std::vector<TransformOutput> outputs(end - begin);
    std::vector<size_t> transformed;
    for (size_t i = begin; i < end; ++i)
      if (entries[i].transform) transformed.push_back(i);
    // Big tensors parallelise inside their transform; many small ones parallelise here.
    parallel_for(transformed.size(), [&](size_t t) {
      size_t i = transformed[t];
      if (options.cancelled && options.cancelled()) return;
      std::vector<Source> sources;
      for (const auto& r : records[i]) sources.push_back({r, input.data(r)});
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
