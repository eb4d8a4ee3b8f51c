#include "weight_stream.h"

#include <algorithm>

#include "../util/error.h"
#include "../util/thread_pool.h"

namespace cmo::stream {

std::vector<EntryResult> run_weight_stream(const blob::StorageReader& input, blob::StorageWriter& output,
                                           std::vector<Entry>& entries, const StreamOptions& options) {
  std::vector<EntryResult> results(entries.size());
  std::vector<blob::Record> records(entries.size());
  double total = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    records[i] = input.record(entries[i].source_offset);  // validates every offset before any work
    total += static_cast<double>(records[i].size_in_bytes);
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
    while (end < entries.size() && (end == begin || (window + records[end].size_in_bytes <= options.window_bytes &&
                                                     end - begin < 4 * static_cast<size_t>(threads)))) {
      window += records[end].size_in_bytes;
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
      outputs[i - begin] = entries[i].transform(records[i], input.data(records[i]));
    });
    check_cancel();
    for (size_t i = begin; i < end; ++i) {
      EntryResult& r = results[i];
      TransformOutput* out = entries[i].transform ? &outputs[i - begin] : nullptr;
      if (!out || !out->skipped.empty()) {
        EntryOutput o;
        o.offset = output.copy_record(input, records[i]);
        o.dtype = records[i].dtype;
        o.element_count = records[i].element_count;
        r.outputs.push_back(std::move(o));
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
      input.file().release(records[i].data_offset, records[i].size_in_bytes);
      done += static_cast<double>(records[i].size_in_bytes);
      if (options.progress) options.progress(done, total);
    }
    begin = end;
  }
  return results;
}

}  // namespace cmo::stream
