#include "safetensors.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "error.h"
#include "fp16.h"
#include "thread_pool.h"

namespace cmo::safetensors {

namespace {

// The format's own limit (safetensors' MAX_HEADER_SIZE): a larger header is corrupt, not a model.
constexpr uint64_t kMaxHeader = 100ull << 20;
constexpr int kMaxDepth = 32;

struct DTypeEntry {
  const char* name;
  DType dtype;
  size_t bytes;
};
constexpr DTypeEntry kDTypes[] = {
    {"F64", DType::F64, 8},   {"F32", DType::F32, 4},         {"F16", DType::F16, 2},         {"BF16", DType::BF16, 2},
    {"I64", DType::I64, 8},   {"I32", DType::I32, 4},         {"I16", DType::I16, 2},         {"I8", DType::I8, 1},
    {"U8", DType::U8, 1},     {"U64", DType::U64, 8},         {"U32", DType::U32, 4},         {"U16", DType::U16, 2},
    {"BOOL", DType::BOOL, 1}, {"F8_E4M3", DType::F8_E4M3, 1}, {"F8_E5M2", DType::F8_E5M2, 1},
};

// Minimal JSON (RFC 8259) for the header: objects keep their order, numbers are kept as text so
// offsets are exact 64-bit integers. Depth-limited; never reads past `end`.
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  std::string text;  // string value, or the number's literal
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
};

class Parser {
 public:
  Parser(const char* p, const char* end, const std::string& file) : p_(p), end_(end), file_(file) {}

  Json document() {
    Json v = value(0);
    ws();
    if (p_ != end_) fail("unexpected characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("EMODELFORMAT", file_ + ": invalid safetensors header: " + what);
  }
  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  char peek() {
    ws();
    if (p_ >= end_) fail("unexpected end of the JSON header");
    return *p_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++p_;
  }
  void literal(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) fail("invalid literal");
    p_ += n;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    Json v;
    char c = peek();
    if (c == '{') {
      ++p_;
      v.kind = Json::Object;
      if (peek() == '}') {
        ++p_;
        return v;
      }
      for (;;) {
        if (peek() != '"') fail("expected a string key");
        std::string key = string();
        expect(':');
        v.members.emplace_back(std::move(key), value(depth + 1));
        char d = peek();
        ++p_;
        if (d == '}') break;
        if (d != ',') fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      ++p_;
      v.kind = Json::Array;
      if (peek() == ']') {
        ++p_;
        return v;
      }
      for (;;) {
        v.items.push_back(value(depth + 1));
        char d = peek();
        ++p_;
        if (d == ']') break;
        if (d != ',') fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.kind = Json::String;
      v.text = string();
    } else if (c == 't') {
      literal("true");
      v.kind = Json::Bool;
      v.text = "true";
    } else if (c == 'f') {
      literal("false");
      v.kind = Json::Bool;
    } else if (c == 'n') {
      literal("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Number;
      const char* start = p_;
      while (p_ < end_ && (std::strchr("+-.eE", *p_) != nullptr || (*p_ >= '0' && *p_ <= '9'))) ++p_;
      v.text.assign(start, p_);
    } else {
      fail("unexpected character");
    }
    return v;
  }

  static void put_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  uint32_t hex4() {
    if (end_ - p_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = *p_++;
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    ++p_;  // opening quote (checked by the caller)
    std::string s;
    for (;;) {
      if (p_ >= end_) fail("unterminated string");
      char c = *p_++;
      if (c == '"') return s;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        s += c;
        continue;
      }
      if (p_ >= end_) fail("unterminated string");
      char e = *p_++;
      switch (e) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && end_ - p_ >= 2 && p_[0] == '\\' && p_[1] == 'u') {
            p_ += 2;
            uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(s, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  const char* p_;
  const char* end_;
  const std::string& file_;
};

// A JSON number that is a non-negative integer fitting in 64 bits, else nullopt-like false.
bool as_u64(const Json& v, uint64_t* out) {
  if (v.kind != Json::Number || v.text.empty() || v.text.size() > 20) return false;
  uint64_t x = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    x = x * 10 + d;
  }
  *out = x;
  return true;
}

constexpr size_t kParallelMin = 1u << 16;  // below this, threads cost more than they save
constexpr size_t kChunk = 1u << 15;

template <class F>
void for_chunks(uint64_t n, F&& body) {
  if (n < kParallelMin) {
    body(0, n);
    return;
  }
  size_t chunks = static_cast<size_t>((n + kChunk - 1) / kChunk);
  parallel_for(chunks, [&](size_t c) {
    uint64_t b = static_cast<uint64_t>(c) * kChunk;
    body(b, std::min<uint64_t>(n, b + kChunk));
  });
}

}  // namespace

const char* dtype_name(DType t) {
  for (const auto& e : kDTypes)
    if (e.dtype == t) return e.name;
  return "?";
}
size_t dtype_bytes(DType t) {
  for (const auto& e : kDTypes)
    if (e.dtype == t) return e.bytes;
  return 0;
}

uint16_t bf16_to_half(uint16_t b) { return float_to_half(bf16_to_float(b)); }

File::File(const std::string& path) : map_(path) { parse_header(); }

void File::parse_header() {
  const std::string& file = map_.path();
  auto bad = [&](const std::string& what) -> Error { return Error("EMODELFORMAT", file + ": " + what); };
  uint64_t size = map_.size();
  if (size < 8) throw bad("not a safetensors file: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | map_.data()[i];
  if (n > kMaxHeader) throw bad("not a safetensors file: header length " + std::to_string(n) + " exceeds the 100 MiB limit");
  if (n > size - 8)
    throw bad("truncated: the header needs " + std::to_string(n) + " bytes, the file has " + std::to_string(size - 8) + " after the length");
  data_start_ = 8 + n;
  const uint64_t data_size = size - data_start_;
  const char* begin = reinterpret_cast<const char*>(map_.data() + 8);
  Json root = Parser(begin, begin + n, file).document();
  if (root.kind != Json::Object) throw bad("invalid safetensors header: not a JSON object");

  for (auto& [name, entry] : root.members) {
    if (name == "__metadata__") {
      if (entry.kind != Json::Object) throw bad("__metadata__ is not an object");
      for (auto& [k, v] : entry.members) {
        if (v.kind != Json::String) throw bad("__metadata__." + k + " is not a string");
        metadata_[k] = v.text;
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (entry.kind != Json::Object) throw bad(where + " is not an object");
    const Json* dtype = nullptr;
    const Json* shape = nullptr;
    const Json* offsets = nullptr;
    for (auto& [k, v] : entry.members) {
      if (k == "dtype") dtype = &v;
      else if (k == "shape") shape = &v;
      else if (k == "data_offsets") offsets = &v;
      else throw bad(where + ": unknown key '" + k + "'");
    }
    if (!dtype || dtype->kind != Json::String) throw bad(where + ": missing or non-string dtype");
    if (!shape || shape->kind != Json::Array) throw bad(where + ": missing or non-array shape");
    if (!offsets || offsets->kind != Json::Array || offsets->items.size() != 2) throw bad(where + ": data_offsets must be [begin, end]");
    TensorInfo t;
    t.name = name;
    const DTypeEntry* de = nullptr;
    for (const auto& e : kDTypes)
      if (dtype->text == e.name) de = &e;
    if (!de) throw bad(where + ": unknown dtype '" + dtype->text + "'");
    t.dtype = de->dtype;
    uint64_t count = 1;
    bool overflow = false;
    for (const Json& d : shape->items) {
      uint64_t v;
      if (!as_u64(d, &v)) throw bad(where + ": shape entries must be non-negative integers");
      t.shape.push_back(v);
      if (v != 0 && count > std::numeric_limits<uint64_t>::max() / v) overflow = true;
      count *= v;
    }
    if (overflow || count > std::numeric_limits<uint64_t>::max() / de->bytes) throw bad(where + ": shape is too large");
    t.element_count = count;
    if (!as_u64(offsets->items[0], &t.begin) || !as_u64(offsets->items[1], &t.end))
      throw bad(where + ": data_offsets must be non-negative integers");
    if (t.end < t.begin) throw bad(where + ": data_offsets end " + std::to_string(t.end) + " < begin " + std::to_string(t.begin));
    if (t.end - t.begin != count * de->bytes)
      throw bad(where + ": data_offsets span " + std::to_string(t.end - t.begin) + " bytes, " + dtype->text + " shape needs " +
                std::to_string(count * de->bytes));
    if (t.end > data_size)
      throw bad("truncated: " + where + " data ends at byte " + std::to_string(t.end) + " of the data section, which has " +
                std::to_string(data_size) + " bytes");
    if (index_.count(name)) throw bad(where + " appears twice");
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  // As the reference implementation: tensors tile the data section exactly (no overlap, no holes).
  std::vector<const TensorInfo*> order;
  for (const auto& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t at = 0;
  for (const TensorInfo* t : order) {
    if (t->begin != at)
      throw bad("tensor '" + t->name + "' data starts at " + std::to_string(t->begin) + ", expected " + std::to_string(at) +
                (t->begin < at ? " (overlaps the previous tensor)" : " (hole in the data section)"));
    at = t->end;
  }
  if (at != data_size)
    throw bad("the data section has " + std::to_string(data_size) + " bytes but the tensors cover " + std::to_string(at));
}

const TensorInfo* File::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
// out[i] = convert(element i of `src`, a packed array of Src), in parallel chunks. Pass a lambda (not a
// function pointer) so the conversion inlines into the loop.
template <class Src, class Dst, class Convert>
void convert_elements(uint64_t count, const uint8_t* src, Dst* out, Convert convert) {
  for_chunks(count, [&](uint64_t b, uint64_t e) {
    for (uint64_t i = b; i < e; ++i) {
      Src v;
      std::memcpy(&v, src + sizeof(Src) * i, sizeof(Src));
      out[i] = convert(v);
    }
  });
}

[[noreturn]] void unsupported(const std::string& file, const TensorInfo& t, const char* to) {
  throw Error("EUNSUPPORTED", file + ": tensor '" + t.name + "' is " + dtype_name(t.dtype) + "; only F32, F16 and BF16 convert to " + to);
}
}  // namespace

void File::read_fp32(const TensorInfo& t, float* out) const {
  map_.advise_sequential(data_start_ + t.begin, t.end - t.begin);  // readahead: page faults one by one are slow
  const uint8_t* src = data_of(t);
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out, src, t.element_count * 4);  // little-endian hosts only, as the blob code
      return;
    case DType::F16: {
      const float* table = half_to_float_table();
      convert_elements<uint16_t>(t.element_count, src, out, [table](uint16_t h) { return table[h]; });
      return;
    }
    case DType::BF16:
      convert_elements<uint16_t>(t.element_count, src, out, [](uint16_t h) { return bf16_to_float(h); });
      return;
    default: unsupported(path(), t, "fp32");
  }
}

void File::read_fp16(const TensorInfo& t, uint16_t* out) const {
  map_.advise_sequential(data_start_ + t.begin, t.end - t.begin);
  const uint8_t* src = data_of(t);
  switch (t.dtype) {
    case DType::F16:
      std::memcpy(out, src, t.element_count * 2);
      return;
    case DType::F32:
      convert_elements<float>(t.element_count, src, out, [](float f) { return float_to_half(f); });
      return;
    case DType::BF16:
      convert_elements<uint16_t>(t.element_count, src, out, [](uint16_t h) { return bf16_to_half(h); });
      return;
    default: unsupported(path(), t, "fp16");
  }
}

void File::release(const TensorInfo& t) const { map_.release(data_start_ + t.begin, t.end - t.begin); }

}  // namespace cmo::safetensors
