// GNUstep's headers include <objc/blocks_runtime.h> when clang has blocks; Debian's GNUstep is built
// for GCC's runtime, which lacks it. Declarations only (nothing is linked in a -fsyntax-only check).
#pragma once
#ifdef __cplusplus
extern "C" {
#endif
void *_Block_copy(const void *block);
void _Block_release(const void *block);
#ifdef __cplusplus
}
#endif
#define Block_copy(x) ((__typeof__(x))_Block_copy((const void *)(x)))
#define Block_release(x) _Block_release((const void *)(x))
