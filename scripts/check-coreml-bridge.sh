#!/usr/bin/env bash
# Type-checks the macOS-only Core ML bridge on Linux, so a typo cannot ship untested code to Macs:
# clang -fsyntax-only -x objective-c++ -fobjc-arc over native/coreml/*.mm against GNUstep's Foundation
# headers and test/coreml-stubs/CoreML/CoreML.h (declarations of the Core ML API the bridge uses,
# with Apple's signatures), then the addon side (native/addon/coreml.cc) with its macOS branch on.
# Needs: apt-get install clang libgnustep-base-dev
# Usage: scripts/check-coreml-bridge.sh [FILE.mm ...]   (default: native/coreml/*.mm and native/addon/coreml.cc)
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=${CLANG:-clang++}
GNUSTEP_INC=${GNUSTEP_INC:-/usr/include/GNUstep}
if ! command -v "$CXX" >/dev/null || [ ! -f "$GNUSTEP_INC/Foundation/Foundation.h" ]; then
  echo "check-coreml-bridge: needs clang++ and GNUstep Foundation headers (apt-get install clang libgnustep-base-dev)" >&2
  exit 1
fi
# GCC's Objective-C runtime headers (objc/objc.h), which Debian's GNUstep is built against.
OBJC_H=$(find /usr/lib/gcc -path '*/include/objc/objc.h' 2>/dev/null | sort -V | tail -1)
if [ -z "$OBJC_H" ]; then
  echo "check-coreml-bridge: GCC's objc/objc.h not found (installed with libgnustep-base-dev's libobjc dependency)" >&2
  exit 1
fi
GCC_INC=$(dirname "$(dirname "$OBJC_H")")
NAPI_INC=$(node -p "require('node-addon-api').include_dir")
# node_api.h: from node-api-headers (cmake-js's dependency), else the Node install's headers.
NODE_INC=$(node -p "try { require('node-api-headers').include_dir } catch { require('path').join(process.execPath, '../../include/node') }")
if [ ! -f "$NODE_INC/node_api.h" ]; then
  echo "check-coreml-bridge: node_api.h not found (npm install, or install Node's headers)" >&2
  exit 1
fi

# -Werror: warnings a Mac build would show (unused values, deprecated calls without the pragma,
# ARC ownership mistakes) fail here too.
common=(-fsyntax-only -std=c++17 -Wall -Wextra -Wno-unused-parameter -Werror -Inative -I"$NAPI_INC" -I"$NODE_INC"
  -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED)
objc=(-x objective-c++ -fobjc-arc -fblocks -fobjc-runtime=gnustep-2.0 -DGNUSTEP -DGNUSTEP_BASE_LIBRARY=1 -DGNU_RUNTIME=1
  -Itest/coreml-stubs -I"$GNUSTEP_INC" -idirafter "$GCC_INC"
  # GNUstep's headers themselves are not ours to fix.
  -Wno-error=unknown-warning-option -Wno-objc-root-class)

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(native/coreml/*.mm)
n=0
for f in "${files[@]}"; do
  echo "check-coreml-bridge: $f"
  "$CXX" "${common[@]}" "${objc[@]}" "$f"
  n=$((n + 1))
done
if [ $# -eq 0 ]; then
  echo "check-coreml-bridge: native/addon/coreml.cc (macOS branch)"
  "$CXX" "${common[@]}" -x c++ -DCMO_COREML_SYNTAX_CHECK native/addon/coreml.cc
  n=$((n + 1))
fi
echo "check-coreml-bridge: $n files type-check"
