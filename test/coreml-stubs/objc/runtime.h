// GCC's <objc/runtime.h> defines object_getClass inline as `object->class_pointer`, which clang
// rejects (its `id` is a builtin, not a struct pointer). Parsing that header with `id` spelled as
// the struct pointer GCC's runtime means keeps the syntax check going; nothing here is compiled
// into the addon (only scripts/check-coreml-bridge.sh puts this folder on the include path).
#include <objc/objc.h>
#define id struct objc_object *
#include_next <objc/runtime.h>
#undef id
