// `npm install` hook: use a prebuild or an existing local build when one loads; otherwise compile
// from source with cmake-js, falling back to node-gyp. Set COREML_OPTIMIZE_BUILD_FROM_SOURCE=1 (or
// `npm install --build-from-source`) to always compile.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const fromSource = process.env.COREML_OPTIMIZE_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';

function loads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

// One clear line when the addon was built without a system BLAS (unless that was asked for with
// COREML_OPTIMIZE_BLAS=portable): the executor then uses the portable SIMD SGEMM.
function reportBackend() {
  try {
    const info = require('node-gyp-build')(root).buildInfo();
    if (info.blas === 'portable' && process.env.COREML_OPTIMIZE_BLAS !== 'portable') {
      const hint = process.platform === 'linux' ? 'apt-get install libopenblas-dev (Fedora: dnf install openblas-devel)' : 'an OpenBLAS development package';
      console.warn(
        `coreml-optimize: built WITHOUT a system BLAS — matrix products use the portable ${info.simd} SGEMM${info.simd === 'scalar' ? ' (slow on this CPU)' : ''}; to use OpenBLAS install it (${hint}) and run \`npm rebuild coreml-optimize\`.`,
      );
    }
  } catch {
    // loads() already said whether the addon works; nothing more to report here.
  }
}

function run(cmd, args) {
  console.log(`coreml-optimize: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status === 0;
}

if (!fromSource && loads()) {
  console.log('coreml-optimize: native addon found (prebuild or local build)');
  process.exit(0);
}
if (run(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--CDCMAKE_BUILD_TYPE=Release']) && loads()) {
  reportBackend();
  process.exit(0);
}
console.warn('coreml-optimize: cmake-js build failed; trying node-gyp');
// npm ships node-gyp and tells scripts where it is; a dev checkout also has it in node_modules.
let nodeGyp = process.env.npm_config_node_gyp;
if (!nodeGyp) {
  try {
    nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    nodeGyp = undefined;
  }
}
if (nodeGyp && run(process.execPath, [nodeGyp, 'rebuild']) && loads()) {
  reportBackend();
  process.exit(0);
}
console.error(
  'coreml-optimize: could not build the native addon. Install a C++17 compiler and CMake ' +
    '(Debian/Ubuntu: apt-get install build-essential cmake libopenblas-dev; macOS: xcode-select --install), then run `npm rebuild coreml-optimize`.',
);
process.exit(1);
