#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "blob/blob.h"
#include "check.h"
#include "stream/weight_stream.h"
#include "util/error.h"

using namespace cmo;

namespace {

std::string temp_path(const char* tag) {
  return std::string("/tmp/cmo_weight_stream_") + tag + "_" + std::to_string(::getpid()) + ".bin";
}

// Input: three fp16 records of 4, 32 and 100 elements with values 0..n-1 (as fp16 bits of small ints).
std::vector<uint64_t> make_input(const std::string& path) {
  blob::StorageWriter w(path);
  std::vector<uint64_t> offsets;
  for (uint64_t n : {4ull, 32ull, 100ull}) {
    std::vector<uint16_t> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<uint16_t>(0x3C00 + i);
    offsets.push_back(w.append(blob::DType::Float16, v.data(), n * 2, n));
  }
  w.close();
  return offsets;
}

// An input file from make_input, its reader, an output writer; both files removed at the end.
struct StreamFiles {
  std::string in_path, out_path;
  std::vector<uint64_t> offsets;
  blob::StorageReader in;
  blob::StorageWriter out;
  explicit StreamFiles(const char* tag)
      : in_path(temp_path((std::string(tag) + "_in").c_str())),
        out_path(temp_path((std::string(tag) + "_out").c_str())),
        offsets(make_input(in_path)),
        in(in_path),
        out(out_path) {}
  ~StreamFiles() {
    std::remove(in_path.c_str());
    std::remove(out_path.c_str());
  }
};

}  // namespace

TEST(copies_and_transforms_in_entry_order) {
  StreamFiles files("order");
  auto& [in_path, out_path, offsets, in, out] = files;
  std::vector<stream::Entry> entries(3);
  entries[0].source_offset = offsets[2];  // copied verbatim, first
  entries[1].source_offset = offsets[1];  // transformed: a small immediate + a blob
  entries[1].transform = [](const std::vector<stream::Source>& sources) {
    const blob::Record& r = sources[0].record;
    const uint8_t* data = sources[0].data;
    stream::TransformOutput t;
    stream::OutputBlob small;
    small.dtype = blob::DType::UInt8;
    small.bytes = {1, 2, 3};
    small.element_count = 3;
    small.inline_if_small = true;
    stream::OutputBlob big;
    big.dtype = blob::DType::UInt8;
    big.bytes.assign(data, data + r.size_in_bytes);
    big.element_count = r.size_in_bytes;
    big.inline_if_small = true;  // 64 elements: stays in the file
    t.blobs.push_back(small);
    t.blobs.push_back(big);
    t.info.push_back({"answer", {42.0}});
    return t;
  };
  entries[2].source_offset = offsets[0];
  double last_done = -1, last_total = -1;
  stream::StreamOptions opts;
  opts.window_bytes = 1;  // one entry per window exercises the windowing
  opts.progress = [&](double d, double t) {
    last_done = d;
    last_total = t;
  };
  auto results = stream::run_weight_stream(in, out, entries, opts);
  out.close();
  CHECK_EQ(results.size(), size_t(3));
  CHECK_EQ(results[0].outputs[0].offset, uint64_t(64));
  CHECK(!results[1].outputs[0].in_file);
  CHECK(results[1].outputs[0].bytes == std::vector<uint8_t>({1, 2, 3}));
  CHECK(results[1].outputs[1].in_file);
  CHECK_EQ(results[1].info[0].second[0], 42.0);
  CHECK_EQ(last_done, last_total);

  blob::StorageReader check(out_path);
  CHECK_EQ(check.count(), 3u);
  auto copied = check.record(results[0].outputs[0].offset);
  CHECK_EQ(copied.element_count, uint64_t(100));
  auto original = in.record(offsets[2]);
  CHECK(std::equal(check.data(copied), check.data(copied) + copied.size_in_bytes, in.data(original)));
  auto big = check.record(results[1].outputs[1].offset);
  CHECK_EQ(big.size_in_bytes, uint64_t(64));
}

TEST(transforms_see_their_records_bytes) {
  // Several transformed entries share a window (inputs read into one buffer, 64-byte aligned
  // slices), one with an extra source: each transform must see exactly its records' bytes.
  StreamFiles files("bytes");
  auto& [in_path, out_path, offsets, in, out] = files;
  std::vector<stream::Entry> entries(3);
  entries[0].source_offset = offsets[1];
  entries[1].source_offset = offsets[2];
  entries[1].extra_sources = {offsets[0]};
  entries[2].source_offset = offsets[0];
  std::vector<std::vector<uint8_t>> seen(3);
  for (size_t e = 0; e < entries.size(); ++e) {
    entries[e].transform = [&seen, e](const std::vector<stream::Source>& sources) {
      for (const auto& src : sources) {
        CHECK_EQ(reinterpret_cast<uintptr_t>(src.data) % 64, uintptr_t(0));
        seen[e].insert(seen[e].end(), src.data, src.data + src.record.size_in_bytes);
      }
      stream::TransformOutput t;
      stream::OutputBlob b;
      b.dtype = blob::DType::UInt8;
      b.bytes = seen[e];
      b.element_count = b.bytes.size();
      t.blobs.push_back(std::move(b));
      return t;
    };
  }
  auto results = stream::run_weight_stream(in, out, entries, stream::StreamOptions());
  out.close();
  auto bytes_of = [&](uint64_t offset) {
    const auto r = in.record(offset);
    return std::vector<uint8_t>(in.data(r), in.data(r) + r.size_in_bytes);
  };
  std::vector<uint8_t> expect1 = bytes_of(offsets[2]), tail = bytes_of(offsets[0]);
  expect1.insert(expect1.end(), tail.begin(), tail.end());
  CHECK(seen[0] == bytes_of(offsets[1]));
  CHECK(seen[1] == expect1);
  CHECK(seen[2] == bytes_of(offsets[0]));
  blob::StorageReader check(out_path);
  const auto written = check.record(results[1].outputs[0].offset);
  CHECK(std::equal(check.data(written), check.data(written) + written.size_in_bytes, expect1.begin()));
}

TEST(cancellation_stops_before_writing_more) {
  StreamFiles files("cancel");
  auto& [in_path, out_path, offsets, in, out] = files;
  std::vector<stream::Entry> entries(3);
  for (size_t i = 0; i < 3; ++i) entries[i].source_offset = offsets[i];
  stream::StreamOptions opts;
  opts.window_bytes = 1;
  int calls = 0;
  opts.cancelled = [&] { return ++calls > 1; };
  CHECK_THROWS(stream::run_weight_stream(in, out, entries, opts));
  CHECK(out.count() < 3u);
  out.close();
}

TEST(bad_source_offset_is_reported_before_any_work) {
  StreamFiles files("bad_offset");
  auto& [in_path, out_path, offsets, in, out] = files;
  std::vector<stream::Entry> entries(1);
  entries[0].source_offset = 12345;
  bool threw = false;
  try {
    stream::run_weight_stream(in, out, entries, {});
  } catch (const cmo::Error& e) {
    threw = std::string(e.what()).find(in_path) != std::string::npos;
  }
  CHECK(threw);
  CHECK_EQ(out.count(), 0u);
  out.close();
}

CMO_TEST_MAIN()
