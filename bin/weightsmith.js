#!/usr/bin/env node
// SPDX-License-Identifier: MIT
'use strict';
const { main } = require('../dist/cjs/cli/index.js');
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`weightsmith: ${err && err.stack ? err.stack : err}\n`); process.exitCode = 1; },
);
