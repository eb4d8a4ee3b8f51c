// Prints the addon's C++ sources for binding.gyp (node-gyp has no glob), mirroring CMakeLists.txt.
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
const dirs = ['native/util', 'native/blob', 'native/kernels', 'native/linalg', 'native/executor', 'native/stream', 'native/addon'];
const out = [];
function walk(dir) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return;
  for (const e of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(rel);
    else if (e.name.endsWith('.cc')) out.push(rel);
  }
}
dirs.forEach(walk);
if (process.argv[2] === '--openblas') {
  // Prints "1" when OpenBLAS headers and library are present (Debian/Ubuntu layout), else "0".
  const inc = ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h', '/usr/include/cblas.h'];
  const lib = ['/usr/lib/x86_64-linux-gnu/libopenblas.so', '/usr/lib/aarch64-linux-gnu/libopenblas.so', '/usr/lib/libopenblas.so', '/usr/lib64/libopenblas.so'];
  // COREML_OPTIMIZE_BLAS=portable forces the portable SGEMM, as in CMakeLists.txt.
  const forced = process.env.COREML_OPTIMIZE_BLAS === 'portable';
  process.stdout.write(!forced && process.platform === 'linux' && inc.some(fs.existsSync) && lib.some(fs.existsSync) ? '1' : '0');
} else if (process.argv[2] === '--accelerate') {
  process.stdout.write(process.env.COREML_OPTIMIZE_BLAS === 'portable' ? '0' : '1');
} else {
  process.stdout.write(out.join(' '));
}
