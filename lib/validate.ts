// SPDX-License-Identifier: MIT
/**
 * Argument validation shared by the public API: every public function checks its arguments here before any
 * native call (native code checks again).
 * @internal
 */
import { invalidArgType, outOfRange } from './errors';

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : `${v}`;
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  return `type ${typeof v}`;
}

/** Throws ERR_INVALID_ARG_TYPE unless v is a string. */
export function checkString(v: unknown, name: string): asserts v is string {
  if (typeof v !== 'string') throw invalidArgType(`The "${name}" argument must be of type string. Received ${describe(v)}`);
}

/** Throws unless v is a plain object (or undefined when optional). */
export function checkObject(v: unknown, name: string): asserts v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw invalidArgType(`The "${name}" argument must be an object. Received ${describe(v)}`);
}

/** A non-negative safe integer (sizes, counts, dims); optional lower/upper bounds. */
export function checkInteger(v: unknown, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw invalidArgType(`The "${name}" argument must be of type number. Received ${describe(v)}`);
  if (!Number.isInteger(v) || v < min || v > max)
    throw outOfRange(`The value of "${name}" is out of range. It must be an integer >= ${min} and <= ${max}. Received ${describe(v)}`);
  return v;
}

/** One of a fixed set of strings. */
export function checkOneOf<T extends string>(v: unknown, name: string, allowed: readonly T[]): T {
  if (typeof v !== 'string') throw invalidArgType(`The "${name}" argument must be of type string. Received ${describe(v)}`);
  if (!(allowed as readonly string[]).includes(v))
    throw outOfRange(`The value of "${name}" must be one of ${allowed.map((a) => `'${a}'`).join(', ')}. Received ${describe(v)}`);
  return v as T;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

/**
 * Validates an options object: must be an object (or undefined) and hold only known keys. An unknown key is
 * a TypeError with code ERR_UNKNOWN_OPTION and a did-you-mean hint.
 */
export function checkOptions<T extends object>(v: unknown, name: string, known: readonly string[]): Partial<T> {
  if (v === undefined) return {};
  checkObject(v, name);
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) {
      let best = '';
      let bestD = Infinity;
      for (const k of known) {
        const d = editDistance(key, k);
        if (d < bestD) {
          bestD = d;
          best = k;
        }
      }
      const hint = bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` Did you mean "${best}"?` : '';
      const err = new TypeError(`Unknown option "${key}" in "${name}".${hint} Known options: ${known.join(', ')}`);
      Object.defineProperty(err, 'code', { value: 'ERR_UNKNOWN_OPTION', enumerable: true });
      throw err;
    }
  }
  return v as Partial<T>;
}

/** An optional AbortSignal. */
export function checkSignal(v: unknown, name = 'options.signal'): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || typeof (v as AbortSignal).aborted !== 'boolean' ||
      typeof (v as AbortSignal).addEventListener !== 'function')
    throw invalidArgType(`The "${name}" argument must be an AbortSignal. Received ${describe(v)}`);
  return v as AbortSignal;
}

/** A shape: an array of non-negative safe integers. */
export function checkShape(v: unknown, name = 'shape'): number[] {
  if (!Array.isArray(v)) throw invalidArgType(`The "${name}" argument must be an array of integers. Received ${describe(v)}`);
  return v.map((d, i) => checkInteger(d, `${name}[${i}]`));
}
