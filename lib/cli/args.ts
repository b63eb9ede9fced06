// SPDX-License-Identifier: MIT
/** Argument parsing shared by the CLI commands. @internal */
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
