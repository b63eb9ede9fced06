// SPDX-License-Identifier: MIT
/**
 * Errors: one class with a stable `code`, plus Node-style argument errors. Codes never change once
 * published; messages may.
 * @module
 */
import { constants as osConstants } from 'node:os';

/** Every stable error code weightsmith can throw (DESIGN.md section 3). */
export const ERROR_CODES = [
  'ERR_ST_HEADER_TOO_SMALL', 'ERR_ST_HEADER_TOO_LARGE', 'ERR_ST_HEADER_LENGTH', 'ERR_ST_HEADER_UTF8',
  'ERR_ST_HEADER_JSON', 'ERR_ST_DUPLICATE_KEY', 'ERR_ST_METADATA_TYPE', 'ERR_ST_DTYPE', 'ERR_ST_OFFSET',
  'ERR_ST_TENSOR_INFO', 'ERR_ST_OVERFLOW', 'ERR_ST_MISALIGNED', 'ERR_ST_INCOMPLETE_BUFFER', 'ERR_LIMIT_EXCEEDED',
  'ERR_GGUF_MAGIC', 'ERR_GGUF_VERSION', 'ERR_GGUF_ENDIANNESS', 'ERR_GGUF_COUNT', 'ERR_GGUF_STRING', 'ERR_GGUF_TYPE',
  'ERR_GGUF_ARRAY', 'ERR_GGUF_DUPLICATE', 'ERR_GGUF_ALIGNMENT', 'ERR_GGUF_SHAPE', 'ERR_GGUF_TENSOR_TYPE',
  'ERR_GGUF_OVERFLOW', 'ERR_GGUF_OFFSET', 'ERR_GGUF_TRUNCATED', 'ERR_GGUF_NAME', 'ERR_GGUF_METADATA_TYPE',
  'ERR_NOT_REGULAR_FILE', 'ERR_FILE_CHANGED', 'ERR_FILE_TOO_LARGE', 'ERR_DEST_IN_USE', 'ERR_DEST_BUSY',
  'ERR_HANDLE_CLOSED', 'ERR_TENSOR_NOT_FOUND', 'ERR_SHAPE', 'ERR_DTYPE', 'ERR_NON_FINITE', 'ERR_NO_CONVERGENCE',
  'ERR_MERGE_MISMATCH', 'ERR_CONFIG', 'ERR_OUT_OF_MEMORY', 'ERR_NO_DEVICE', 'ERR_CUDA', 'ERR_INTERNAL',
] as const;

/** A stable weightsmith error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Context attached to an error: the file, tensor, byte offset, sizes or limit involved. */
export interface ErrorContext {
  path?: string;
  tensor?: string;
  offset?: number | bigint;
  declared?: number | bigint;
  size?: number | bigint;
  limit?: number | bigint;
  [key: string]: unknown;
}

/**
 * The error weightsmith throws for anything but bad arguments and system errors. `code` is stable and is
 * what programs should test; context fields (`path`, `tensor`, `offset`...) say where.
 */
export class WeightsmithError extends Error {
  /** The stable code, one of {@link ERROR_CODES}. */
  readonly code: ErrorCode;
  /** The file involved, when there is one. */
  path?: string;
  /** The tensor involved, when there is one. */
  tensor?: string;
  /** A byte offset in the file or header, when relevant. */
  offset?: number | bigint;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message);
    this.name = 'WeightsmithError';
    this.code = code;
    for (const [k, v] of Object.entries(context)) {
      if (v !== undefined && k !== 'code' && k !== 'message' && k !== 'name' && k !== 'stack') {
        (this as Record<string, unknown>)[k] = v;
      }
    }
  }
}

/** A Node-style error with a `code` (TypeError/RangeError for arguments, Error for system errors). */
export type CodedError = Error & { code: string; [key: string]: unknown };

function coded<E extends Error>(err: E, code: string, context: Record<string, unknown> = {}): E & { code: string } {
  Object.assign(err, context);
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return err as E & { code: string };
}

/** `TypeError` with code `ERR_INVALID_ARG_TYPE`. */
export function invalidArgType(message: string): TypeError & { code: string } {
  return coded(new TypeError(message), 'ERR_INVALID_ARG_TYPE');
}

/** `RangeError` with code `ERR_OUT_OF_RANGE`. */
export function outOfRange(message: string): RangeError & { code: string } {
  return coded(new RangeError(message), 'ERR_OUT_OF_RANGE');
}

/** The rejection of an aborted operation: `name` 'AbortError', `code` 'ABORT_ERR' (as Node's own). */
export function abortError(signal?: AbortSignal): Error & { code: string } {
  const err = coded(new Error('The operation was aborted'), 'ABORT_ERR');
  err.name = 'AbortError';
  if (signal && signal.reason !== undefined) (err as Error).cause = signal.reason;
  return err;
}

/** Throws an AbortError when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

function errnoName(errno: unknown): string {
  if (typeof errno === 'number') {
    for (const [name, value] of Object.entries(osConstants.errno)) if (value === -errno || value === errno) return name;
  }
  return 'EIO';
}

/**
 * Builds the error for a native failure. Called by the addon (handed over once at load).
 * @internal
 */
export function makeNativeError(code: string, message: string, fields: Record<string, unknown>): Error {
  if (code === 'ERR_INVALID_ARG_TYPE') return invalidArgType(message);
  if (code === 'ERR_OUT_OF_RANGE') return outOfRange(message);
  if (code === 'ABORT_ERR') return abortError();
  if ((ERROR_CODES as readonly string[]).includes(code)) {
    return new WeightsmithError(code as ErrorCode, message, fields as ErrorContext);
  }
  if (code === 'ERRNO') {
    return coded(new Error(message), errnoName(fields.errno), fields);
  }
  return new WeightsmithError('ERR_INTERNAL', message, fields as ErrorContext);
}

/**
 * Replaces the stack of an error that crossed an async boundary with the caller's (captured before the work
 * was queued), keeping the original message.
 * @internal
 */
export function withCallerStack<T>(promise: Promise<T>, caller: { stack?: string }): Promise<T> {
  return promise.catch((err: unknown) => {
    if (err instanceof Error && caller.stack) {
      const lines = caller.stack.split('\n').slice(1).join('\n');
      err.stack = `${err.name}: ${err.message}\n${lines}`;
    }
    throw err;
  });
}
