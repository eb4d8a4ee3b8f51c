// Compression transforms for the weight-stream job (compress.cc). Each kind of compression
// ("palettize", "quantize", "prune", ...) registers a parser that turns one JS plan entry into a
// stream::Transform holding plain C++ values (parsed here, on the JS thread, once).
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../kernels/palettize.h"
#include "../stream/weight_stream.h"
#include "async_job.h"

namespace cmo::addon {

using EntryParser = stream::Transform (*)(const Napi::Object& entry, const std::shared_ptr<CancelToken>& cancel);

void register_entry_parser(const char* kind, EntryParser parser);
// The parser registered for `kind`, or nullptr.
EntryParser find_entry_parser(const std::string& kind);

struct EntryParserRegistrar {
  EntryParserRegistrar(const char* kind, EntryParser parser) { register_entry_parser(kind, parser); }
};

// Small helpers for parsers: read typed fields with errors naming the entry field.
int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback);
double get_number(const Napi::Object& o, const char* key, double fallback);
bool get_bool(const Napi::Object& o, const char* key, bool fallback);
std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback);
std::vector<int64_t> get_shape(const Napi::Object& o, const char* key);

// The palettize parameters of an entry (mode, nbits, groupSize, channelAxis, clusterDim,
// perChannelScale, seed); `what` names the entry kind in errors.
kernels::PalettizeParams get_palettize_params(const Napi::Object& o, const char* what);

// blob dtype of an n-bit unsigned index (1,2,3,4,6,8).
blob::DType uint_dtype_for_bits(int nbits);

}  // namespace cmo::addon

#define CMO_COMPRESS_ENTRY(kind, parser) \
  static ::cmo::addon::EntryParserRegistrar cmo_entry_registrar_##kind(#kind, parser)
