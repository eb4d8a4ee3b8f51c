// Lets other addon modules (palettize/quantize jobs, the executor) take a BlobFile / BlobWriter JS
// object as an argument and use the native reader/writer directly, streaming from the mapped input
// to the output without copies. The shared_ptr keeps the mapping / file alive while a job runs, even
// if JS calls close() or the object is garbage-collected meanwhile (closing a BlobWriter finalizes the
// file, so a job appending after that gets a cmo::Error, never a crash).
#pragma once
#include <napi.h>

#include <memory>

#include "../blob/storage_reader.h"
#include "../blob/storage_writer.h"

namespace cmo::addon {

// Accepts the native BlobFile object or the TS wrapper (src/format/blob.ts) holding it in
// `nativeHandle`. Throws a JS TypeError for anything else or a closed file.
std::shared_ptr<cmo::blob::StorageReader> reader_from(Napi::Value value);
// Same for BlobWriter.
std::shared_ptr<cmo::blob::StorageWriter> writer_from(Napi::Value value);

}  // namespace cmo::addon
