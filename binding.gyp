{
  "targets": [
    {
      "target_name": "coreml_optimize",
      "sources": ["<!@(node scripts/native-sources.cjs)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "CMO_BUILD_SYSTEM=\"node-gyp\""],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-ffp-contract=off", "-fno-trapping-math", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O3"],
      "conditions": [
        ["OS=='mac'", {
          "sources": ["<!@(ls native/coreml/*.mm 2>/dev/null || true)"],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "CLANG_ENABLE_OBJC_ARC": "YES",
            "MACOSX_DEPLOYMENT_TARGET": "12.0",
            "OTHER_CFLAGS": ["-ffp-contract=off", "-fno-trapping-math", "-Wall", "-Wextra", "-Wno-unused-parameter"]
          },
          "link_settings": { "libraries": ["-framework CoreML", "-framework Foundation"] }
        }],
        ["OS=='mac' and '<!(node scripts/native-sources.cjs --accelerate)'=='1'", {
          "defines": ["CMO_USE_ACCELERATE=1"],
          "link_settings": { "libraries": ["-framework Accelerate"] }
        }],
        ["OS=='linux' and '<!(node scripts/native-sources.cjs --openblas)'=='1'", {
          "defines": ["CMO_USE_OPENBLAS=1"],
          "libraries": ["-lopenblas"]
        }]
      ]
    }
  ]
}
