// SPDX-License-Identifier: MIT
/** Small text helpers of the CLI. @internal */

/** 1234567 -> "1,234,567". */
export function groupDigits(n: number): string {
  return n.toLocaleString('en-US');
}

/** Bytes as "1.04 MB" (decimal units, as file managers show). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** Parses "2GB", "500MB", "1.5G", "123" (bytes) into a byte count; NaN when malformed. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?$/i.exec(s.trim());
  if (!m) return NaN;
  const unit = (m[2] ?? 'b').toLowerCase();
  const pow = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as 'b' | 'k' | 'm' | 'g' | 't'];
  const base = unit.includes('i') ? 1024 : 1000;
  return Math.floor(Number(m[1]) * base ** pow);
}

/** Left-aligned table with column widths fitted to content. */
export function table(rows: string[][], rightAlign: boolean[] = []): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (rightAlign[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

/** A progress bar on stderr, drawn only when stderr is a TTY. */
export class Progress {
  readonly #enabled: boolean;
  readonly #total: number;
  readonly #label: string;
  #last = 0;

  constructor(total: number, label: string, enabled = Boolean(process.stderr.isTTY)) {
    this.#total = Math.max(total, 1);
    this.#label = label;
    this.#enabled = enabled;
  }

  update(done: number, note = ''): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#last < 80 && done < this.#total) return;
    this.#last = now;
    const width = 30;
    const frac = Math.min(1, done / this.#total);
    const fill = Math.round(frac * width);
    const cols = process.stderr.columns || 100;
    const line = `${this.#label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${note}`;
    process.stderr.write(`\r${line.slice(0, cols - 1).padEnd(cols - 1)}`);
  }

  done(): void {
    if (this.#enabled) process.stderr.write('\r\x1b[K');
  }
}
