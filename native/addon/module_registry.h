// Each addon/*.cc file registers its exports with CMO_ADDON_MODULE; addon.cc calls them all.
// This keeps one file per area and no central list to edit when an area is added.
#pragma once
#include <napi.h>

#include <vector>

namespace cmo::addon {

using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);

struct ModuleEntry {
  const char* name;
  ModuleInit init;
};

std::vector<ModuleEntry>& module_registry();

struct ModuleRegistrar {
  ModuleRegistrar(const char* name, ModuleInit init) { module_registry().push_back({name, init}); }
};

}  // namespace cmo::addon

#define CMO_ADDON_MODULE(name, init_fn) \
  static ::cmo::addon::ModuleRegistrar cmo_module_registrar_##name(#name, init_fn)
