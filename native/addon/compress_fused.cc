// "fused": two compression steps of a plan applied to one weight in a single pass over the weight
// file (compressModel fuses prune → palettize/quantize with joint_compression this way). Stage 1
// reads the entry's sources; stage 2 reads stage 1's output blobs (`stageInputs` picks which, in
// order) from memory, and only stage 2's blobs are written. Stage 1's info comes back prefixed with
// "stage1.". When stage 2 leaves the weight as it was, stage 1's values are written as the two-step
// run would copy them ("passedThrough" says why). When the two-step run would have gone otherwise —
// stage 1 leaves the weight as it was, or a value stage 2 reads would have been an immediate
// (< 10 elements) — the entry is reported as skipped ("fused: ...") and compressModel runs the
// steps one after the other instead.
#include <string>

#include "../util/error.h"
#include "compress_entries.h"

namespace cmo::addon {

namespace {

stream::TransformOutput fallback(std::string why) {
  stream::TransformOutput out;
  out.skipped = "fused: " + why;
  return out;
}

stream::Transform parse(const Napi::Object& e, const std::shared_ptr<CancelToken>& cancel) {
  Napi::Value stages_v = e.Get("stages");
  if (!stages_v.IsArray() || stages_v.As<Napi::Array>().Length() != 2)
    throw Napi::TypeError::New(e.Env(), "fused entry: stages must be an array of two entries");
  Napi::Array stages = stages_v.As<Napi::Array>();
  stream::Transform t[2];
  for (uint32_t i = 0; i < 2; ++i) {
    Napi::Value s = stages.Get(i);
    if (!s.IsObject()) throw Napi::TypeError::New(e.Env(), "fused entry: stage " + std::to_string(i + 1) + " is not an object");
    std::string kind = get_string(s.As<Napi::Object>(), "kind", "");
    EntryParser parser = find_entry_parser(kind);
    if (!parser || kind == "fused") throw Napi::TypeError::New(e.Env(), "fused entry: stage " + std::to_string(i + 1) + " has unknown kind \"" + kind + "\"");
    t[i] = parser(s.As<Napi::Object>(), cancel);
  }
  std::vector<size_t> inputs;
  Napi::Value in_v = e.Get("stageInputs");
  if (!in_v.IsArray()) throw Napi::TypeError::New(e.Env(), "fused entry: stageInputs must be an array of stage-1 output indices");
  Napi::Array in = in_v.As<Napi::Array>();
  for (uint32_t i = 0; i < in.Length(); ++i) {
    Napi::Value x = in.Get(i);
    if (!x.IsNumber() || x.As<Napi::Number>().Int64Value() < 0) throw Napi::TypeError::New(e.Env(), "fused entry: bad stageInputs index");
    inputs.push_back(static_cast<size_t>(x.As<Napi::Number>().Int64Value()));
  }
  if (inputs.empty()) throw Napi::TypeError::New(e.Env(), "fused entry: stage 2 needs at least one input");
  return [first = std::move(t[0]), second = std::move(t[1]), inputs](const std::vector<stream::Source>& sources) {
    stream::TransformOutput one = first(sources);
    if (!one.skipped.empty()) return fallback("stage 1 left the weight as it was (" + one.skipped + ")");
    std::vector<stream::Source> next;
    for (size_t idx : inputs) {
      if (idx >= one.blobs.size())
        throw Error("EINVAL", "fused: stage 1 wrote " + std::to_string(one.blobs.size()) + " values, stage 2 reads value " + std::to_string(idx));
      const stream::OutputBlob& b = one.blobs[idx];
      if (b.inline_if_small && b.element_count < stream::kBlobMinElements) return fallback("a value stage 2 reads is an immediate");
      stream::Source s;
      s.record.dtype = b.dtype;
      s.record.element_count = b.element_count;
      s.record.size_in_bytes = b.bytes.size();
      s.data = b.bytes.data();
      next.push_back(s);
    }
    stream::TransformOutput two = second(next);
    if (!two.skipped.empty()) {
      // The two-step run copies stage 1's values as they are: write them, in the order stage 2
      // would have read (and copied) them, never deduplicated or inlined (a copy is neither).
      stream::TransformOutput through;
      for (size_t idx : inputs) {
        stream::OutputBlob b = one.blobs[idx];
        b.inline_if_small = false;
        b.dedup_shape.clear();
        through.blobs.push_back(std::move(b));
      }
      through.passed_through = two.skipped;
      two.info.clear();
      for (auto& [key, values] : one.info) through.info.push_back({"stage1." + key, std::move(values)});
      return through;
    }
    for (auto& [key, values] : one.info) two.info.push_back({"stage1." + key, std::move(values)});
    return two;
  };
}

}  // namespace

}  // namespace cmo::addon

CMO_COMPRESS_ENTRY(fused, cmo::addon::parse);
