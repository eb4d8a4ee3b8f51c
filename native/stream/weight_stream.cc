#include "weight_stream.h"

#include <algorithm>

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
  const unsigned threads = ThreadPool::global()->size();
  double done = 0;
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
    check_cancel();
    for (size_t i = begin; i < end; ++i) {
      EntryResult& r = results[i];
      TransformOutput* out = entries[i].transform ? &outputs[i - begin] : nullptr;
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
          } else {
            o.offset = output.append(b.dtype, b.bytes.data(), b.bytes.size(), b.element_count);
          }
          r.outputs.push_back(std::move(o));
        }
        r.info = std::move(out->info);
      }
      if (out) *out = TransformOutput();  // free the window's memory as we go
      for (const auto& rec : records[i]) input.file().release(rec.data_offset, rec.size_in_bytes);
      done += static_cast<double>(entry_bytes[i]);
      if (options.progress) options.progress(done, total);
    }
    begin = end;
  }
  return results;
}

}  // namespace cmo::stream
