// SPDX-License-Identifier: MIT
/** Argument parsing shared by the CLI commands. @internal */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

/** A command-line usage mistake (exit code 2). */
export class UsageError extends Error {}

/** Where a command writes. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Parses options of one command; unknown options and missing values are usage errors. */
export function parseCommand<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(args: string[], options: T): {
  values: { [K in keyof T]?: T[K]['type'] extends 'string' ? string : boolean } & { help?: boolean };
  positionals: string[];
} {
  try {
    const r = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return r as unknown as ReturnType<typeof parseCommand<T>>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Weights left alone by default by the per-linear-layer commands (prune, lowrank, quantize to compressed-tensors). */
export const NOT_LINEAR = /norm|embed|token_embd|lm_head/i;

/** A `--include` / `--exclude` regular expression (undefined when the flag is absent). */
export function regexFlag(value: string | undefined, flag: string): RegExp | undefined {
  if (value === undefined) return undefined;
  try {
    return new RegExp(value);
  } catch (err) {
    throw new UsageError(`${flag}: invalid regular expression: ${(err as Error).message}`);
  }
}

/** `<out>`: a folder (written as `<out>/model.safetensors`) or a `.safetensors` file. */
export function safetensorsOutput(output: string): { outDir: string; outFile: string } {
  return output.endsWith('.safetensors')
    ? { outDir: path.dirname(output), outFile: output }
    : { outDir: output, outFile: path.join(output, 'model.safetensors') };
}

/** Copies the input folder's other files (config, tokenizer...) next to the output, except what `skip` names. */
export function copySideFiles(input: string, outDir: string, skip: (name: string) => boolean = () => false): void {
  const inDir = fs.existsSync(input) && fs.statSync(input).isDirectory() ? input : undefined;
  if (!inDir || path.resolve(inDir) === path.resolve(outDir)) return;
  for (const e of fs.readdirSync(inDir, { withFileTypes: true })) {
    if (!e.isFile() || e.name.endsWith('.safetensors') || e.name.endsWith('.safetensors.index.json') || skip(e.name)) continue;
    fs.copyFileSync(path.join(inDir, e.name), path.join(outDir, e.name));
  }
}
