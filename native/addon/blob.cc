// N-API binding of native/blob: BlobFile (memory-mapped reader) and BlobWriter, plus the sub-byte
// packers for cross-checking the TS implementation. Reads return copies (typed arrays) — meant for
// inspection and small tensors; bulk work passes the handles to native jobs (blob_handles.h).
#include <cstring>
#include <limits>
#include <string>

#include "../blob/blob.h"
#include "../util/error.h"
#include "../util/fp16.h"
#include "async_job.h"
#include "blob_handles.h"
#include "js_errors.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

using blob::DType;
using blob::Record;
using blob::StorageReader;
using blob::StorageWriter;

// Random 128-bit tags: identify our wrapped objects safely (napi_type_tag_object, N-API 8).
const napi_type_tag kBlobFileTag = {0x6c1f0d6a1f3b4e2aull, 0x9b7e55c0e4a1d3f7ull};
const napi_type_tag kBlobWriterTag = {0x2d84c3b1a9e64f10ull, 0x8f3a6b2e71c5d904ull};

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// A JS number that is an exact non-negative integer (offsets and counts; exact up to 2^53).
uint64_t u64_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative integer below 2^53");
  return static_cast<uint64_t>(d);
}

DType dtype_arg(const Napi::CallbackInfo& info, size_t i) {
  std::string name = string_arg(info, i, "dtype");
  DType t;
  if (!blob::dtype_from_name(name, &t)) throw Napi::TypeError::New(info.Env(), "unknown blob dtype '" + name + "'");
  return t;
}

Napi::Object record_to_js(Napi::Env env, const Record& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("metadataOffset", Napi::Number::New(env, static_cast<double>(r.metadata_offset)));
  o.Set("dataOffset", Napi::Number::New(env, static_cast<double>(r.data_offset)));
  o.Set("dtype", Napi::String::New(env, blob::dtype_name(r.dtype)));
  o.Set("sizeInBytes", Napi::Number::New(env, static_cast<double>(r.size_in_bytes)));
  o.Set("elementCount", Napi::Number::New(env, static_cast<double>(r.element_count)));
  return o;
}

// Typed array kind that holds one element of `t` (sub-byte: one unpacked value per element).
napi_typedarray_type array_type_of(DType t) {
  switch (t) {
    case DType::Float32: return napi_float32_array;
    case DType::Float16:
    case DType::BFloat16:
    case DType::UInt16: return napi_uint16_array;
    case DType::Int16: return napi_int16_array;
    case DType::Int32: return napi_int32_array;
    case DType::UInt32: return napi_uint32_array;
    case DType::Int8:
    case DType::Int4: return napi_int8_array;
    default: return napi_uint8_array;  // uint8, uint1..uint6, float8 raw bytes
  }
}

size_t element_bytes(DType t) { return blob::is_sub_byte(t) ? 1 : blob::bits_of(t) / 8; }

Napi::TypedArray new_typed_array(Napi::Env env, napi_typedarray_type type, uint64_t length, size_t width, uint8_t** data) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, static_cast<size_t>(length * width));
  *data = static_cast<uint8_t*>(buffer.Data());
  napi_value out;
  napi_status status = napi_create_typedarray(env, type, static_cast<size_t>(length), buffer, 0, &out);
  NAPI_THROW_IF_FAILED(env, status, Napi::TypedArray());
  return Napi::TypedArray(env, out);
}

struct Bytes {
  const uint8_t* data;
  size_t byte_length;
  size_t element_size;
  size_t length;
};

Bytes typed_array_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a typed array");
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  const uint8_t* base = static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  return {base, a.ByteLength(), a.ElementSize(), a.ElementLength()};
}

// ---------------------------------------------------------------------------------------------
class BlobFileWrap : public Napi::ObjectWrap<BlobFileWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BlobFile",
                       {InstanceAccessor<&BlobFileWrap::Path>("path"),
                        InstanceAccessor<&BlobFileWrap::Count>("count"),
                        InstanceAccessor<&BlobFileWrap::Size>("size"),
                        InstanceAccessor<&BlobFileWrap::Closed>("closed"),
                        InstanceMethod<&BlobFileWrap::RecordAt>("record"),
                        InstanceMethod<&BlobFileWrap::Records>("records"),
                        InstanceMethod<&BlobFileWrap::Read>("read"),
                        InstanceMethod<&BlobFileWrap::ReadFloat32>("readFloat32"),
                        InstanceMethod<&BlobFileWrap::ReadRaw>("readRaw"),
                        InstanceMethod<&BlobFileWrap::Close>("close")});
  }

  explicit BlobFileWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BlobFileWrap>(info) {
    path_ = string_arg(info, 0, "path");
    reader_ = guarded(info.Env(), [&] { return std::make_shared<StorageReader>(path_); });
    info.This().As<Napi::Object>().TypeTag(&kBlobFileTag);
  }

  std::shared_ptr<StorageReader> reader(Napi::Env env) const {
    if (!reader_) throw_js(env, cmo::Error("EWEIGHTS", path_ + ": the BlobFile is closed"));
    return reader_;
  }

 private:
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }
  Napi::Value Count(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), reader(info.Env())->count()); }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(reader(info.Env())->file_size()));
  }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !reader_); }

  Napi::Value RecordAt(const Napi::CallbackInfo& info) {
    auto r = reader(info.Env());
    uint64_t off = u64_arg(info, 0, "offset");
    return record_to_js(info.Env(), guarded(info.Env(), [&] { return r->record(off); }));
  }

  Napi::Value Records(const Napi::CallbackInfo& info) {
    auto r = reader(info.Env());
    auto all = guarded(info.Env(), [&] { return r->records(); });
    Napi::Array out = Napi::Array::New(info.Env(), all.size());
    for (uint32_t i = 0; i < all.size(); ++i) out.Set(i, record_to_js(info.Env(), all[i]));
    return out;
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto r = reader(env);
    uint64_t off = u64_arg(info, 0, "offset");
    Record rec = guarded(env, [&] { return r->record(off); });
    const uint8_t* src = guarded(env, [&] { return r->data(rec); });
    uint8_t* dst = nullptr;
    Napi::TypedArray out = new_typed_array(env, array_type_of(rec.dtype), rec.element_count, element_bytes(rec.dtype), &dst);
    if (blob::is_sub_byte(rec.dtype))
      blob::unpack_sub_byte(rec.dtype, src, rec.element_count, dst);
    else if (rec.size_in_bytes)
      std::memcpy(dst, src, rec.size_in_bytes);  // little-endian file, little-endian hosts only
    return out;
  }

  Napi::Value ReadFloat32(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto r = reader(env);
    uint64_t off = u64_arg(info, 0, "offset");
    Record rec = guarded(env, [&] { return r->record(off); });
    if (rec.dtype != DType::Float16 && rec.dtype != DType::BFloat16 && rec.dtype != DType::Float32)
      throw_js(env, cmo::Error("EWEIGHTS", r->path() + ": blob at offset " + std::to_string(off) + ": is " +
                                               blob::dtype_name(rec.dtype) + ", not float16, bfloat16 or float32"));
    const uint8_t* src = guarded(env, [&] { return r->data(rec); });
    uint8_t* dst = nullptr;
    Napi::TypedArray out = new_typed_array(env, napi_float32_array, rec.element_count, 4, &dst);
    float* f = reinterpret_cast<float*>(dst);
    if (rec.dtype == DType::Float32) {
      if (rec.size_in_bytes) std::memcpy(dst, src, rec.size_in_bytes);
    } else {
      for (uint64_t i = 0; i < rec.element_count; ++i) {
        uint16_t h = static_cast<uint16_t>(src[2 * i] | src[2 * i + 1] << 8);
        if (rec.dtype == DType::Float16) {
          f[i] = half_to_float(h);
        } else {
          uint32_t bits = static_cast<uint32_t>(h) << 16;
          std::memcpy(&f[i], &bits, 4);
        }
      }
    }
    return out;
  }

  Napi::Value ReadRaw(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto r = reader(env);
    uint64_t off = u64_arg(info, 0, "offset");
    Record rec = guarded(env, [&] { return r->record(off); });
    const uint8_t* src = guarded(env, [&] { return r->data(rec); });
    return Napi::Buffer<uint8_t>::Copy(env, src, static_cast<size_t>(rec.size_in_bytes));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    reader_.reset();  // the mapping goes away once no native job holds it any more
    return info.Env().Undefined();
  }

  std::string path_;
  std::shared_ptr<StorageReader> reader_;
};

// ---------------------------------------------------------------------------------------------
class BlobWriterWrap : public Napi::ObjectWrap<BlobWriterWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BlobWriter",
                       {InstanceAccessor<&BlobWriterWrap::Path>("path"),
                        InstanceAccessor<&BlobWriterWrap::Count>("count"),
                        InstanceAccessor<&BlobWriterWrap::Size>("size"),
                        InstanceAccessor<&BlobWriterWrap::Closed>("closed"),
                        InstanceMethod<&BlobWriterWrap::Append>("append"),
                        InstanceMethod<&BlobWriterWrap::AppendRaw>("appendRaw"),
                        InstanceMethod<&BlobWriterWrap::CopyFrom>("copyFrom"),
                        InstanceMethod<&BlobWriterWrap::Close>("close")});
  }

  explicit BlobWriterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BlobWriterWrap>(info) {
    std::string path = string_arg(info, 0, "path");
    writer_ = guarded(info.Env(), [&] { return std::make_shared<StorageWriter>(path); });
    info.This().As<Napi::Object>().TypeTag(&kBlobWriterTag);
  }

  std::shared_ptr<StorageWriter> writer(Napi::Env env) const {
    if (writer_->closed()) throw_js(env, cmo::Error("EWEIGHTS", writer_->path() + ": the BlobWriter is closed"));
    return writer_;
  }

 private:
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), writer_->path()); }
  Napi::Value Count(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), writer_->count()); }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(writer_->size()));
  }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), writer_->closed()); }

  // append(dtype, values, elementCount = values.length): unpacked values, one per typed-array element
  // (float16/bfloat16 as raw Uint16Array bits, sub-byte types one value per byte).
  Napi::Value Append(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DType t = dtype_arg(info, 0);
    Bytes b = typed_array_arg(info, 1, "values");
    uint64_t n = info.Length() > 2 && !info[2].IsUndefined() ? u64_arg(info, 2, "elementCount") : b.length;
    size_t width = element_bytes(t);
    if (b.element_size != width)
      throw Napi::TypeError::New(env, std::string("values for ") + blob::dtype_name(t) + " must be a typed array of " +
                                          std::to_string(width) + "-byte elements");
    if (n > b.length)
      throw Napi::RangeError::New(env, "elementCount " + std::to_string(n) + " exceeds the " + std::to_string(b.length) +
                                           " values given");
    auto w = writer(env);
    uint64_t off = guarded(env, [&] {
      return blob::is_sub_byte(t) ? w->append_unpacked(t, b.data, n) : w->append(t, b.data, n * width, n);
    });
    return Napi::Number::New(env, static_cast<double>(off));
  }

  // appendRaw(dtype, bytes, elementCount): data already in file layout (packed for sub-byte types).
  Napi::Value AppendRaw(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DType t = dtype_arg(info, 0);
    Bytes b = typed_array_arg(info, 1, "bytes");
    uint64_t n = u64_arg(info, 2, "elementCount");
    auto w = writer(env);
    uint64_t off = guarded(env, [&] { return w->append(t, b.data, b.byte_length, n); });
    return Napi::Number::New(env, static_cast<double>(off));
  }

  // copyFrom(blobFile, offset): copies one record of another file, returns its new offset.
  Napi::Value CopyFrom(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto r = reader_from(info[0]);
    uint64_t off = u64_arg(info, 1, "offset");
    auto w = writer(env);
    uint64_t out = guarded(env, [&] { return w->copy_record(*r, r->record(off)); });
    return Napi::Number::New(env, static_cast<double>(out));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&] { writer_->close(); });
    return info.Env().Undefined();
  }

  // Never null: a closed writer still answers count/size/path.
  std::shared_ptr<StorageWriter> writer_;
};

// blobPackSubByte(dtype, values: Uint8Array|Int8Array) -> Buffer (packed)
Napi::Value PackSubByte(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DType t = dtype_arg(info, 0);
  Bytes b = typed_array_arg(info, 1, "values");
  if (b.element_size != 1 || blob::bits_of(t) > 8)
    throw Napi::TypeError::New(env, "blobPackSubByte needs a sub-byte or 8-bit dtype and one value per byte");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(blob::packed_size(t, b.length)));
  guarded(env, [&] { blob::pack_sub_byte(t, b.data, b.length, out.Data()); });
  return out;
}

// blobUnpackSubByte(dtype, bytes, n) -> Uint8Array (Int8Array for int4)
Napi::Value UnpackSubByte(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DType t = dtype_arg(info, 0);
  Bytes b = typed_array_arg(info, 1, "bytes");
  uint64_t n = u64_arg(info, 2, "n");
  if (blob::bits_of(t) > 8) throw Napi::TypeError::New(env, "blobUnpackSubByte needs a sub-byte or 8-bit dtype");
  if (guarded(env, [&] { return blob::packed_size(t, n); }) > b.byte_length)
    throw Napi::RangeError::New(env, std::to_string(n) + " " + blob::dtype_name(t) + " values need " +
                                         std::to_string(blob::packed_size(t, n)) + " bytes, got " +
                                         std::to_string(b.byte_length));
  uint8_t* dst = nullptr;
  Napi::TypedArray out = new_typed_array(env, t == DType::Int4 || t == DType::Int8 ? napi_int8_array : napi_uint8_array, n, 1, &dst);
  blob::unpack_sub_byte(t, b.data, n, dst);
  return out;
}

// blobCopyRecords(file, writer, offsets | undefined, onProgress?, cancelToken?) -> Promise<number[]>
// Copies records (all of them, in file order, when offsets is undefined) from the mapped source
// into the writer on a worker thread; resolves with the new metadata offsets. Pages of the source
// are released as they are copied so resident memory stays bounded on multi-GB files.
Napi::Value CopyRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto reader = reader_from(info[0]);
  auto writer = writer_from(info[1]);
  std::vector<uint64_t> offsets;
  bool all = info[2].IsUndefined() || info[2].IsNull();
  if (!all) {
    if (!info[2].IsArray()) throw Napi::TypeError::New(env, "offsets must be an array of numbers or undefined");
    Napi::Array arr = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
        throw Napi::TypeError::New(env, "offsets[" + std::to_string(i) + "] must be a non-negative integer");
      offsets.push_back(static_cast<uint64_t>(d));
    }
  }
  return run_job<std::vector<uint64_t>>(
      env, info[3], info[4],
      [reader, writer, offsets, all](JobContext& ctx) {
        std::vector<Record> records;
        if (all) {
          records = reader->records();
        } else {
          for (uint64_t off : offsets) records.push_back(reader->record(off));
        }
        double total = 0, done = 0;
        for (const Record& r : records) total += static_cast<double>(r.size_in_bytes);
        std::vector<uint64_t> out;
        out.reserve(records.size());
        for (const Record& r : records) {
          ctx.check_cancelled();
          reader->file().advise_sequential(r.data_offset, r.size_in_bytes);
          out.push_back(writer->copy_record(*reader, r));
          reader->file().release(r.data_offset, r.size_in_bytes);
          done += static_cast<double>(r.size_in_bytes);
          ctx.progress(done, total);
        }
        return out;
      },
      [](Napi::Env env, std::vector<uint64_t>& out) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, out.size());
        for (uint32_t i = 0; i < out.size(); ++i) arr.Set(i, Napi::Number::New(env, static_cast<double>(out[i])));
        return arr;
      });
}

void InitBlob(Napi::Env env, Napi::Object exports) {
  exports.Set("blobCopyRecords", Napi::Function::New(env, CopyRecords, "blobCopyRecords"));
  exports.Set("BlobFile", BlobFileWrap::Define(env));
  exports.Set("BlobWriter", BlobWriterWrap::Define(env));
  exports.Set("blobPackSubByte", Napi::Function::New(env, PackSubByte, "blobPackSubByte"));
  exports.Set("blobUnpackSubByte", Napi::Function::New(env, UnpackSubByte, "blobUnpackSubByte"));
}

// The TS wrappers keep the native object in `nativeHandle`; accept either.
Napi::Object tagged_object(Napi::Value value, const napi_type_tag* tag, const char* what) {
  Napi::Env env = value.Env();
  if (value.IsObject()) {
    Napi::Object obj = value.As<Napi::Object>();
    if (obj.CheckTypeTag(tag)) return obj;
    Napi::Value inner = obj.Get("nativeHandle");
    if (inner.IsObject() && inner.As<Napi::Object>().CheckTypeTag(tag)) return inner.As<Napi::Object>();
  }
  throw Napi::TypeError::New(env, std::string("expected a ") + what);
}

}  // namespace

std::shared_ptr<blob::StorageReader> reader_from(Napi::Value value) {
  Napi::Object obj = tagged_object(value, &kBlobFileTag, "BlobFile");
  return BlobFileWrap::Unwrap(obj)->reader(value.Env());
}

std::shared_ptr<blob::StorageWriter> writer_from(Napi::Value value) {
  Napi::Object obj = tagged_object(value, &kBlobWriterTag, "BlobWriter");
  return BlobWriterWrap::Unwrap(obj)->writer(value.Env());
}

}  // namespace cmo::addon

CMO_ADDON_MODULE(blob, cmo::addon::InitBlob);
