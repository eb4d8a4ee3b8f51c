// The Hessians of one calibration wave, shared by the capture graphs that fill them (calibrate.cc)
// and the layer compression job that consumes and frees them (layerwise.cc). A JS handle holds the
// shared_ptr; each Hessian is released as soon as its last layer is compressed.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>
#include <vector>

#include "../kernels/hessian.h"

namespace cmo::addon {

struct HessianSet {
  std::mutex mutex;
  std::vector<std::shared_ptr<kernels::Hessian>> items;  // null once released
  size_t peak_bytes = 0;

  size_t bytes() {
    std::lock_guard<std::mutex> lock(mutex);
    size_t b = 0;
    for (auto& h : items)
      if (h) b += h->bytes();
    return b;
  }
  void release(size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    if (index < items.size()) items[index].reset();
  }
  std::shared_ptr<kernels::Hessian> get(size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    return index < items.size() ? items[index] : nullptr;
  }
};

// The set behind a handle made by createHessianSet (throws a JS TypeError for anything else).
std::shared_ptr<HessianSet> hessian_set_from(const Napi::Value& handle);

}  // namespace cmo::addon
