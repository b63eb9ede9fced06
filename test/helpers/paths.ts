// SPDX-License-Identifier: MIT
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The repository root. */
export const repoRoot = path.resolve(__dirname, '../..');

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'ws-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
