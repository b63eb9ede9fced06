#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The build check of `npm test`: the addon loads, the compiled JS and its ESM entry point are present and
// current with lib/, and both entry points expose the same API.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const fail = (msg) => {
  process.stderr.write(`check-build: ${msg}\n`);
  process.exit(1);
};

const newest = (dir) => {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
};

const cjsEntry = path.join(root, 'dist/cjs/index.js');
if (!fs.existsSync(cjsEntry)) fail('dist/ is missing: run `npm run build:ts`');
if (newest(path.join(root, 'lib')) > fs.statSync(cjsEntry).mtimeMs + 1) {
  process.stdout.write('check-build: lib/ is newer than dist/, rebuilding TypeScript\n');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(root, 'scripts/build-esm.js')], { cwd: root, stdio: 'inherit' });
}
const cjs = require(cjsEntry);
const info = cjs.cpuInfo();
const esmKeys = execFileSync(process.execPath, ['--input-type=module', '-e',
  `import * as m from ${JSON.stringify(path.join(root, 'dist/esm/index.mjs'))}; console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default').sort()))`],
  { encoding: 'utf8' });
const cjsKeys = Object.keys(cjs).filter((k) => k !== '__esModule' && k !== 'default').sort();
if (JSON.stringify(cjsKeys) !== esmKeys.trim()) fail(`ESM and CommonJS entry points differ:\n  cjs ${cjsKeys}\n  esm ${esmKeys}`);
process.stdout.write(`check-build: addon loaded (avx2=${info.avx2} f16c=${info.f16c}, ${cjs.getThreads()} threads), ${cjsKeys.length} exports in CJS and ESM\n`);
