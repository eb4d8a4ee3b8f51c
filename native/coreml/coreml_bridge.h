// Core ML bridge: the plain C++ face of coreml_bridge.mm (Objective-C++, ARC, macOS only), so the
// N-API layer (addon/coreml.cc) never sees an Objective-C type. Errors from Core ML (NSError) become
// cmo::Error with code "ECOREML", carrying the NSError's domain, code and description.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../util/error.h"

namespace cmo::coreml {

// MLModelConfiguration.computeUnits, named as coremltools' ct.ComputeUnit members.
enum class ComputeUnits { All, CpuOnly, CpuAndGpu, CpuAndNeuralEngine };

// "ALL" | "CPU_ONLY" | "CPU_AND_GPU" | "CPU_AND_NE"; false for anything else.
bool parse_compute_units(const std::string& name, ComputeUnits* out);

struct FeatureInfo {
  std::string name;
  // "fp32" | "fp16" | "fp64" | "int32" for multi-arrays; "image", "string", ... otherwise.
  std::string dtype;
  // Declared shape (empty when the feature is not a multi-array).
  std::vector<int64_t> shape;
};

// One input: contiguous row-major float32 or int32 values of `shape`. The bridge wraps this memory
// in an MLMultiArray without copying when the model takes that type; fp16 inputs are converted once.
struct InputTensor {
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<int32_t> i32;
  bool is_int32 = false;
};

// One output, widened to float32 and made contiguous (MLMultiArray strides may pad rows).
struct OutputTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const std::vector<FeatureInfo>& inputs() const = 0;
  virtual const std::vector<FeatureInfo>& outputs() const = 0;
  // Thread-safe for one caller at a time (the addon serialises calls per model).
  virtual std::map<std::string, OutputTensor> predict(std::map<std::string, InputTensor>& inputs) = 0;
};

// Loads a compiled model (.mlmodelc). Throws cmo::Error("ECOREML", ...).
std::shared_ptr<Model> load_model(const std::string& compiled_path, ComputeUnits units);

// Compiles an .mlpackage / .mlmodel with [MLModel compileModelAtURL:error:]; returns the path of the
// temporary .mlmodelc Core ML wrote (the caller moves it into its cache). Throws cmo::Error("ECOREML", ...).
std::string compile_model(const std::string& source_path);

}  // namespace cmo::coreml
