// Values derived from a constant tensor once and kept for the graph's lifetime, so that a kernel does
// not redo per call what depends on the weights alone (Winograd-transformed conv weights). The
// graph gives each of its float constants one DerivedCache (Graph::widened_constants); copies of the
// Tensor share it and a value computed at run time has none. All caches of one graph draw on one
// byte budget (COREML_OPTIMIZE_DERIVED_MB, default 1024 MiB): past it, get() returns null and the
// kernel derives per call or takes another path, so memory stays bounded on large models.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace cmo::exec {

struct DerivedBudget {
  explicit DerivedBudget(size_t bytes) : left(bytes) {}
  std::mutex mutex;
  size_t left;
  // Takes `bytes` from the budget; false (nothing taken) when they do not fit.
  bool take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    if (bytes > left) return false;
    left -= bytes;
    return true;
  }
  void give_back(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex);
    left += bytes;
  }
};

class DerivedCache {
 public:
  explicit DerivedCache(std::shared_ptr<DerivedBudget> budget) : budget_(std::move(budget)) {}

  // The entry under `key` (which must name everything the value depends on besides the tensor's
  // values: form, layout, shape), built by make() the first time. Runs that race build it once (the
  // lock is held while building). Null when `bytes` no longer fit the graph's budget.
  template <class T, class Make>
  std::shared_ptr<const T> get(const std::string& key, size_t bytes, Make&& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : items_)
      if (e.first == key) return std::static_pointer_cast<const T>(e.second);
    if (!budget_ || !budget_->take(bytes)) return nullptr;
    std::shared_ptr<const T> value;
    try {
      value = make();
    } catch (...) {
      budget_->give_back(bytes);
      throw;
    }
    items_.emplace_back(key, value);
    return value;
  }

 private:
  std::shared_ptr<DerivedBudget> budget_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::shared_ptr<const void>>> items_;
};

}  // namespace cmo::exec
