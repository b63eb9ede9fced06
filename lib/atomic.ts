// SPDX-License-Identifier: MIT
/**
 * Atomic output files: data goes to a temp file in the destination's folder (same filesystem, no EXDEV),
 * written completely, fsynced, renamed over the destination, and the folder fsynced. A failure or abort
 * unlinks the temp file and leaves the destination untouched. Temp files left by killed processes
 * (`.<name>.tmp-<pid>-<rand>`) are removed by the next write into that folder.
 * @internal
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WeightsmithError } from './errors';

const MAX_WRITE = 0x7ffff000;  // Linux caps one write(2) here; larger writes are looped

function tempName(dest: string): string {
  const rand = crypto.randomBytes(6).toString('hex');
  return path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${rand}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Removes temp files of `dest` left behind by processes that no longer exist. */
function removeStaleTemps(dest: string): void {
  const dir = path.dirname(dest);
  const prefix = `.${path.basename(dest)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]+$/.exec(n.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !pidAlive(pid)) {
      try {
        fs.unlinkSync(path.join(dir, n));
      } catch {
        // another process got there first
      }
    }
  }
}

const busy = new Set<string>();

/** A temp file that becomes `dest` on commit. Positional writes; each write is complete or throws. */
export class AtomicFile {
  readonly dest: string;
  readonly temp: string;
  #fd: number;
  #done = false;
  #key: string;
  // Writes in flight: the descriptor is closed only once none is, so a write queued before abort() can never
  // land in another file that reused the descriptor number.
  #pending = 0;
  #idle: (() => void)[] = [];

  private constructor(dest: string, temp: string, fd: number, key: string) {
    this.dest = dest;
    this.temp = temp;
    this.#fd = fd;
    this.#key = key;
  }

  /**
   * Creates the temp file for `dest`. Another write to the same destination still in progress in this
   * process gives `ERR_DEST_BUSY`.
   */
  static create(dest: string): AtomicFile {
    const abs = path.resolve(dest);
    if (busy.has(abs)) {
      throw new WeightsmithError('ERR_DEST_BUSY', `'${dest}' is already being written by this process`, { path: dest });
    }
    try {
      if (fs.statSync(abs).isDirectory())
        throw new WeightsmithError('ERR_NOT_REGULAR_FILE', `'${dest}' is a directory`, { path: dest });
    } catch (err) {
      if (err instanceof WeightsmithError) throw err;
    }
    removeStaleTemps(abs);
    const temp = tempName(abs);
    const fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o666);
    busy.add(abs);
    return new AtomicFile(abs, temp, fd, abs);
  }

  /** Writes all of `data` at `position`. */
  async write(data: Uint8Array, position: number): Promise<void> {
    this.#checkOpen();
    this.#pending++;
    try {
      let off = 0;
      while (off < data.byteLength) {
        if (this.#done) throw new WeightsmithError('ERR_HANDLE_CLOSED', `the write to '${this.dest}' was aborted`, { path: this.dest });
        const len = Math.min(MAX_WRITE, data.byteLength - off);
        const n = await new Promise<number>((resolve, reject) => {
          fs.write(this.#fd, data, off, len, position + off, (err, written) => (err ? reject(err) : resolve(written)));
        });
        if (n <= 0) throw new WeightsmithError('ERR_INTERNAL', `write to '${this.temp}' made no progress`, { path: this.dest });
        off += n;
      }
    } finally {
      if (--this.#pending === 0) for (const fn of this.#idle.splice(0)) fn();
    }
  }

  #checkOpen(): void {
    if (this.#done) throw new WeightsmithError('ERR_HANDLE_CLOSED', `the write to '${this.dest}' is finished or aborted`, { path: this.dest });
  }

  /** Resolves once no write is in flight. */
  #settled(): Promise<void> {
    return this.#pending === 0 ? Promise.resolve() : new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Synchronous twin of {@link write}. */
  writeSync(data: Uint8Array, position: number): void {
    this.#checkOpen();
    let off = 0;
    while (off < data.byteLength) {
      const n = fs.writeSync(this.#fd, data, off, Math.min(MAX_WRITE, data.byteLength - off), position + off);
      if (n <= 0) throw new WeightsmithError('ERR_INTERNAL', `write to '${this.temp}' made no progress`, { path: this.dest });
      off += n;
    }
  }

  /** fsync, close, rename over the destination, fsync the folder. */
  async commit(): Promise<void> {
    await this.#settled();
    this.#checkOpen();
    await new Promise<void>((resolve, reject) => fs.fsync(this.#fd, (err) => (err ? reject(err) : resolve())));
    this.commitSync();
  }

  /** Synchronous twin of {@link commit}. */
  commitSync(): void {
    this.#checkOpen();
    if (this.#pending > 0)
      throw new WeightsmithError('ERR_DEST_BUSY', `'${this.dest}' still has writes in flight; await them before committing`, { path: this.dest });
    try {
      fs.fsyncSync(this.#fd);
      fs.closeSync(this.#fd);
      this.#fd = -1;
      fs.renameSync(this.temp, this.dest);
      this.#done = true;
      busy.delete(this.#key);
    } catch (err) {
      this.abort();
      throw err;
    }
    try {
      const dfd = fs.openSync(path.dirname(this.dest), 'r');
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch {
      // Folders that cannot be opened or fsynced (some platforms): the rename itself is already done.
    }
  }

  /**
   * Unlinks the temp file and closes it (once writes in flight have settled); the destination is untouched.
   * Safe to call more than once.
   */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    busy.delete(this.#key);
    try {
      fs.unlinkSync(this.temp);
    } catch {
      // already gone
    }
    const close = () => {
      if (this.#fd < 0) return;
      try {
        fs.closeSync(this.#fd);
      } catch {
        // already closed
      }
      this.#fd = -1;
    };
    if (this.#pending === 0) close();
    else this.#idle.push(close);
  }
}

/** Writes a whole small file atomically (temp file, fsync, rename); on failure the destination is unchanged. @internal */
export function writeFileAtomicSync(file: string, data: Uint8Array): void {
  const f = AtomicFile.create(file);
  try {
    f.writeSync(data, 0);
    f.commitSync();
  } catch (err) {
    f.abort();
    throw err;
  }
}
