// SPDX-License-Identifier: MIT
/** Runs the CLI in-process and captures its output. */
import { main } from '../../lib/cli/index';

export async function runCli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}
