// Deduplication of new blobs in the weight stream (coremltools' const_deduplication): identical
// values of >= 100 elements with the same dtype and shape share one record; anything else differs.
#include <unistd.h>

#include <string>
#include <vector>

#include "blob/blob.h"
#include "check.h"
#include "stream/weight_stream.h"

using namespace cmo;

namespace {

std::string temp_path(const char* tag) {
  return std::string("/tmp/cmo_weight_stream_dedup_") + tag + "_" + std::to_string(::getpid()) + ".bin";
}

stream::OutputBlob int8_blob(uint8_t fill, uint64_t n, const char* shape) {
  stream::OutputBlob b;
  b.dtype = blob::DType::Int8;
  b.bytes.assign(n, fill);
  b.element_count = n;
  b.dedup_shape = shape;
  return b;
}

}  // namespace

TEST(identical_blobs_share_a_record) {
  std::string in_path = temp_path("in"), out_path = temp_path("out");
  {
    blob::StorageWriter w(in_path);
    std::vector<uint16_t> v(16, 0x3C00);
    for (int i = 0; i < 5; ++i) w.append(blob::DType::Float16, v.data(), v.size() * 2, v.size());
    w.close();
  }
  blob::StorageReader in(in_path);
  auto records = in.records();
  std::vector<stream::Entry> entries(5);
  // Entry k emits one blob: 0 and 1 are the same 256 zeros of shape [256]; 2 has another shape;
  // 3 has only 64 elements (below the threshold); 4 has other values.
  const std::vector<stream::OutputBlob> outs = {int8_blob(0, 256, "[256]"), int8_blob(0, 256, "[256]"), int8_blob(0, 256, "[256,1]"),
                                                int8_blob(0, 64, "[64]"), int8_blob(1, 256, "[256]")};
  for (size_t k = 0; k < entries.size(); ++k) {
    entries[k].source_offset = records[k].metadata_offset;
    entries[k].transform = [b = outs[k]](const std::vector<stream::Source>&) {
      stream::TransformOutput t;
      t.blobs.push_back(b);
      return t;
    };
  }
  stream::StreamOptions opts;
  opts.window_bytes = 1;
  blob::StorageWriter out(out_path);
  auto results = stream::run_weight_stream(in, out, entries, opts);
  out.close();
  CHECK_EQ(results[1].outputs[0].offset, results[0].outputs[0].offset);
  CHECK(results[2].outputs[0].offset != results[0].outputs[0].offset);
  CHECK(results[3].outputs[0].offset != results[0].outputs[0].offset);
  CHECK(results[4].outputs[0].offset != results[0].outputs[0].offset);
  blob::StorageReader check(out_path);
  CHECK_EQ(check.records().size(), size_t(4));
  ::unlink(in_path.c_str());
  ::unlink(out_path.c_str());
}

CMO_TEST_MAIN()
