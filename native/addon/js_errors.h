// cmo::Error → JS Error with a `code` property (EWEIGHTS, EMODELFORMAT, EIO, ENOMEM, ...), for bindings that
// call native code synchronously on the JS thread.
#pragma once
#include <napi.h>

#include <exception>
#include <new>

#include "../util/error.h"

namespace cmo::addon {

[[noreturn]] inline void throw_js(Napi::Env env, const cmo::Error& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code()));
  throw err;
}

// Runs `fn`, turning cmo::Error into a JS Error carrying `code`.
template <class F>
auto guarded(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const cmo::Error& e) {
    throw_js(env, e);
  } catch (const std::bad_alloc&) {
    throw_js(env, cmo::Error("ENOMEM", "out of memory"));
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {  // anything else must not escape into node as a C++ exception
    throw_js(env, cmo::Error("ENATIVE", e.what()));
  }
}

}  // namespace cmo::addon
