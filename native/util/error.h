// Errors raised by native code. Workers catch them and reject the JS promise with an Error whose
// `code` is `code` (see addon/async_job.h), so users can branch on it without parsing messages.
#pragma once
#include <stdexcept>
#include <string>

namespace cmo {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

// Thrown when a job notices its cancel flag; maps to an AbortError in JS.
class Cancelled : public Error {
 public:
  Cancelled() : Error("ABORT_ERR", "The operation was aborted") {}
};

}  // namespace cmo
