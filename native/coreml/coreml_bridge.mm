// Core ML bridge (Objective-C++, ARC). Built only on macOS; CI type-checks it on Linux with
// scripts/check-coreml-bridge.sh against GNUstep Foundation and test/coreml-stubs/CoreML/CoreML.h.
// Untested on a Mac: keep it small, and keep every Core ML call one that the stub header declares.
#import <CoreML/CoreML.h>
#import <Foundation/Foundation.h>

#include <cstring>
#include <mutex>

#include "../util/fp16.h"
#include "coreml_bridge.h"

namespace cmo::coreml {

namespace {

[[noreturn]] void throw_ns_error(const std::string& what, NSError* error) {
  std::string message = "Core ML: " + what;
  if (error != nil) {
    message += ": ";
    message += error.localizedDescription.UTF8String ?: "(no description)";
    message += " (";
    message += error.domain.UTF8String ?: "?";
    message += " ";
    message += std::to_string(static_cast<long long>(error.code));
    message += ")";
  }
  throw cmo::Error("ECOREML", message);
}

NSURL* file_url(const std::string& path) {
  return [NSURL fileURLWithPath:[NSString stringWithUTF8String:path.c_str()]];
}

const char* dtype_name(MLMultiArrayDataType t) {
  switch (t) {
    case MLMultiArrayDataTypeFloat32: return "fp32";
    case MLMultiArrayDataTypeFloat16: return "fp16";
    case MLMultiArrayDataTypeDouble: return "fp64";
    case MLMultiArrayDataTypeInt32: return "int32";
    default: return "unknown";
  }
}

std::vector<FeatureInfo> describe(NSDictionary<NSString*, MLFeatureDescription*>* features) {
  std::vector<FeatureInfo> out;
  NSArray<NSString*>* names = [features.allKeys sortedArrayUsingSelector:@selector(compare:)];
  for (NSString* name in names) {
    MLFeatureDescription* d = features[name];
    FeatureInfo info;
    info.name = name.UTF8String;
    if (d.type == MLFeatureTypeMultiArray && d.multiArrayConstraint != nil) {
      info.dtype = dtype_name(d.multiArrayConstraint.dataType);
      for (NSNumber* n in d.multiArrayConstraint.shape) info.shape.push_back(n.longLongValue);
    } else {
      info.dtype = d.type == MLFeatureTypeImage ? "image" : d.type == MLFeatureTypeString ? "string" : "other";
    }
    out.push_back(std::move(info));
  }
  return out;
}

NSArray<NSNumber*>* ns_shape(const std::vector<int64_t>& shape) {
  NSMutableArray<NSNumber*>* a = [NSMutableArray arrayWithCapacity:shape.size()];
  for (int64_t d : shape) [a addObject:@(d)];
  return a;
}

// Row-major strides of `shape`, in elements.
NSArray<NSNumber*>* ns_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return ns_shape(s);
}

// Copies a (possibly strided) MLMultiArray into contiguous float32.
OutputTensor read_array(MLMultiArray* array, const std::string& name) {
  OutputTensor out;
  for (NSNumber* n in array.shape) out.shape.push_back(n.longLongValue);
  std::vector<int64_t> strides;
  for (NSNumber* n in array.strides) strides.push_back(n.longLongValue);
  const size_t rank = out.shape.size();
  size_t count = 1;
  for (int64_t d : out.shape) count *= static_cast<size_t>(d);
  out.data.resize(count);
  const MLMultiArrayDataType type = array.dataType;
  if (type != MLMultiArrayDataTypeFloat32 && type != MLMultiArrayDataTypeFloat16 && type != MLMultiArrayDataTypeDouble &&
      type != MLMultiArrayDataTypeInt32) {
    throw cmo::Error("ECOREML", "Core ML: output '" + name + "' has an unsupported multi-array data type");
  }
  float* dst = out.data.data();
  auto copy = [&](const void* bytes) {
    std::vector<int64_t> index(rank, 0);
    for (size_t k = 0; k < count; ++k) {
      int64_t offset = 0;
      for (size_t d = 0; d < rank; ++d) offset += index[d] * strides[d];
      switch (type) {
        case MLMultiArrayDataTypeFloat32: dst[k] = static_cast<const float*>(bytes)[offset]; break;
        case MLMultiArrayDataTypeFloat16: dst[k] = half_to_float(static_cast<const uint16_t*>(bytes)[offset]); break;
        case MLMultiArrayDataTypeDouble: dst[k] = static_cast<float>(static_cast<const double*>(bytes)[offset]); break;
        default: dst[k] = static_cast<float>(static_cast<const int32_t*>(bytes)[offset]); break;
      }
      for (size_t d = rank; d-- > 0;) {
        if (++index[d] < out.shape[d]) break;
        index[d] = 0;
      }
    }
  };
  if (@available(macOS 12.3, *)) {
    [array getBytesWithHandler:^(const void* bytes, NSInteger size) {
      (void)size;
      copy(bytes);
    }];
  } else {
    // Before macOS 12.3 the (later deprecated) dataPointer is the only way to read the buffer.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
    copy(array.dataPointer);
#pragma clang diagnostic pop
  }
  return out;
}

class CoreMLModel final : public Model {
 public:
  explicit CoreMLModel(MLModel* model) : model_(model) {
    inputs_ = describe(model.modelDescription.inputDescriptionsByName);
    outputs_ = describe(model.modelDescription.outputDescriptionsByName);
  }
  const std::vector<FeatureInfo>& inputs() const override { return inputs_; }
  const std::vector<FeatureInfo>& outputs() const override { return outputs_; }

  std::map<std::string, OutputTensor> predict(std::map<std::string, InputTensor>& inputs) override {
    std::lock_guard<std::mutex> lock(mutex_);
    @autoreleasepool {
      NSMutableDictionary<NSString*, id>* features = [NSMutableDictionary dictionary];
      // fp16 copies live until the prediction returns (MLMultiArray only borrows the memory).
      std::vector<std::vector<uint16_t>> halves;
      halves.reserve(inputs.size());
      for (const FeatureInfo& info : inputs_) {
        auto it = inputs.find(info.name);
        if (it == inputs.end()) throw cmo::Error("ECOREML", "Core ML: missing input '" + info.name + "'");
        InputTensor& t = it->second;
        void* data = nullptr;
        MLMultiArrayDataType type;
        if (info.dtype == "fp16") {
          std::vector<uint16_t>& h = halves.emplace_back(t.is_int32 ? t.i32.size() : t.f32.size());
          for (size_t k = 0; k < h.size(); ++k) h[k] = float_to_half(t.is_int32 ? static_cast<float>(t.i32[k]) : t.f32[k]);
          data = h.data();
          type = MLMultiArrayDataTypeFloat16;
        } else if (info.dtype == "int32") {
          if (!t.is_int32) {
            t.i32.resize(t.f32.size());
            for (size_t k = 0; k < t.f32.size(); ++k) t.i32[k] = static_cast<int32_t>(t.f32[k]);
            t.is_int32 = true;
          }
          data = t.i32.data();
          type = MLMultiArrayDataTypeInt32;
        } else {
          if (t.is_int32) {
            t.f32.assign(t.i32.begin(), t.i32.end());
            t.is_int32 = false;
          }
          data = t.f32.data();
          type = MLMultiArrayDataTypeFloat32;
        }
        NSError* error = nil;
        // No deallocator: the vectors outlive the prediction (this scope), and Core ML does not keep inputs.
        MLMultiArray* array = [[MLMultiArray alloc] initWithDataPointer:data
                                                                  shape:ns_shape(t.shape)
                                                               dataType:type
                                                                strides:ns_strides(t.shape)
                                                            deallocator:nil
                                                                  error:&error];
        if (array == nil) throw_ns_error("input '" + info.name + "'", error);
        features[[NSString stringWithUTF8String:info.name.c_str()]] = [MLFeatureValue featureValueWithMultiArray:array];
      }
      NSError* error = nil;
      MLDictionaryFeatureProvider* provider = [[MLDictionaryFeatureProvider alloc] initWithDictionary:features error:&error];
      if (provider == nil) throw_ns_error("inputs", error);
      id<MLFeatureProvider> result = [model_ predictionFromFeatures:provider error:&error];
      if (result == nil) throw_ns_error("prediction failed", error);
      std::map<std::string, OutputTensor> out;
      for (const FeatureInfo& info : outputs_) {
        MLFeatureValue* value = [result featureValueForName:[NSString stringWithUTF8String:info.name.c_str()]];
        if (value == nil || value.multiArrayValue == nil) {
          throw cmo::Error("ECOREML", "Core ML: output '" + info.name + "' is missing or not a multi-array");
        }
        out[info.name] = read_array(value.multiArrayValue, info.name);
      }
      return out;
    }
  }

 private:
  MLModel* model_;
  std::vector<FeatureInfo> inputs_;
  std::vector<FeatureInfo> outputs_;
  std::mutex mutex_;
};

}  // namespace

bool parse_compute_units(const std::string& name, ComputeUnits* out) {
  if (name == "ALL") *out = ComputeUnits::All;
  else if (name == "CPU_ONLY") *out = ComputeUnits::CpuOnly;
  else if (name == "CPU_AND_GPU") *out = ComputeUnits::CpuAndGpu;
  else if (name == "CPU_AND_NE") *out = ComputeUnits::CpuAndNeuralEngine;
  else return false;
  return true;
}

std::shared_ptr<Model> load_model(const std::string& compiled_path, ComputeUnits units) {
  @autoreleasepool {
    MLModelConfiguration* config = [[MLModelConfiguration alloc] init];
    switch (units) {
      case ComputeUnits::All: config.computeUnits = MLComputeUnitsAll; break;
      case ComputeUnits::CpuOnly: config.computeUnits = MLComputeUnitsCPUOnly; break;
      case ComputeUnits::CpuAndGpu: config.computeUnits = MLComputeUnitsCPUAndGPU; break;
      case ComputeUnits::CpuAndNeuralEngine:
        if (@available(macOS 13.0, *)) {
          config.computeUnits = MLComputeUnitsCPUAndNeuralEngine;
        } else {
          throw cmo::Error("ECOREML", "Core ML: CPU_AND_NE needs macOS 13 or later");
        }
        break;
    }
    NSError* error = nil;
    MLModel* model = [MLModel modelWithContentsOfURL:file_url(compiled_path) configuration:config error:&error];
    if (model == nil) throw_ns_error("cannot load " + compiled_path, error);
    return std::make_shared<CoreMLModel>(model);
  }
}

std::string compile_model(const std::string& source_path) {
  @autoreleasepool {
    NSError* error = nil;
    // The synchronous API: the asynchronous one needs macOS 13, and this runs on a worker thread anyway.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
    NSURL* compiled = [MLModel compileModelAtURL:file_url(source_path) error:&error];
#pragma clang diagnostic pop
    if (compiled == nil) throw_ns_error("cannot compile " + source_path, error);
    return compiled.path.UTF8String;
  }
}

}  // namespace cmo::coreml
