// Runs native work off the JS thread and settles a Promise, with progress and cancellation.
//
//   return run_job<Result>(env, opts.progress, opts.cancel,
//       [plain_inputs](JobContext& ctx) { ...; ctx.progress(done, total); ctx.check_cancelled(); return r; },
//       [](Napi::Env env, Result& r) { return to_js(env, r); });
//
// Inputs must be converted into plain C++ values on the JS thread *before* calling run_job: the work
// lambda runs on a libuv thread and may not touch any Napi value.
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "../util/error.h"

namespace cmo::addon {

struct CancelToken {
  std::atomic<bool> cancelled{false};
};

// Returns the token behind a value from createCancelToken(), or a fresh never-cancelled one for
// undefined/null. Throws a JS TypeError for anything else.
std::shared_ptr<CancelToken> cancel_token_from(Napi::Value value);

class JobContext {
 public:
  JobContext(std::shared_ptr<CancelToken> token, std::function<void(double, double)> sink)
      : token_(std::move(token)), sink_(std::move(sink)) {}
  bool cancelled() const noexcept { return token_ && token_->cancelled.load(std::memory_order_relaxed); }
  void check_cancelled() const {
    if (cancelled()) throw Cancelled();
  }
  // Thread-safe; calls may be coalesced (a progress bar only needs the latest value).
  void progress(double done, double total) const {
    if (sink_) sink_(done, total);
  }
  const std::shared_ptr<CancelToken>& token() const noexcept { return token_; }

 private:
  std::shared_ptr<CancelToken> token_;
  std::function<void(double, double)> sink_;
};

struct ProgressEvent {
  double done;
  double total;
};

// Rejects `deferred` with an Error carrying `code` (ABORT_ERR -> name "AbortError").
void reject_with(Napi::Env env, Napi::Promise::Deferred& deferred, const std::string& code,
                 const std::string& message);

template <class Result>
class JobWorker : public Napi::AsyncProgressWorker<ProgressEvent> {
 public:
  using Work = std::function<Result(JobContext&)>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  JobWorker(Napi::Env env, Napi::Value on_progress, std::shared_ptr<CancelToken> token, Work work, ToJs to_js)
      : Napi::AsyncProgressWorker<ProgressEvent>(env, "coreml-optimize:job"),
        deferred_(Napi::Promise::Deferred::New(env)),
        token_(std::move(token)),
        work_(std::move(work)),
        to_js_(std::move(to_js)) {
    if (on_progress.IsFunction()) progress_cb_ = Napi::Persistent(on_progress.As<Napi::Function>());
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    std::function<void(double, double)> sink;
    if (!progress_cb_.IsEmpty()) {
      sink = [&progress](double done, double total) {
        ProgressEvent ev{done, total};
        progress.Send(&ev, 1);
      };
    }
    JobContext ctx(token_, sink);
    try {
      result_ = std::make_unique<Result>(work_(ctx));
    } catch (const Error& e) {
      code_ = e.code();
      message_ = e.what();
    } catch (const std::bad_alloc&) {
      code_ = "ENOMEM";
      message_ = "out of memory";
    } catch (const std::exception& e) {
      code_ = "ENATIVE";
      message_ = e.what();
    }
  }

  void OnProgress(const ProgressEvent* data, size_t count) override {
    if (progress_cb_.IsEmpty() || data == nullptr || count == 0) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    const ProgressEvent& ev = data[count - 1];
    progress_cb_.Call({Napi::Number::New(env, ev.done), Napi::Number::New(env, ev.total)});
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!result_) {
      reject_with(env, deferred_, code_, message_);
      return;
    }
    try {
      deferred_.Resolve(to_js_(env, *result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      reject_with(env, deferred_, "ENATIVE", e.what());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<CancelToken> token_;
  Work work_;
  ToJs to_js_;
  Napi::FunctionReference progress_cb_;
  std::unique_ptr<Result> result_;
  std::string code_ = "ENATIVE";
  std::string message_ = "native job failed";
};

template <class Result>
Napi::Value run_job(Napi::Env env, Napi::Value on_progress, Napi::Value cancel_token,
                    typename JobWorker<Result>::Work work, typename JobWorker<Result>::ToJs to_js) {
  auto token = cancel_token_from(cancel_token);
  auto* worker = new JobWorker<Result>(env, on_progress, token, std::move(work), std::move(to_js));
  Napi::Promise promise = worker->promise();
  worker->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

}  // namespace cmo::addon
