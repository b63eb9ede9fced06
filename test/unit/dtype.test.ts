// SPDX-License-Identifier: MIT
import { describe, expect, it } from 'vitest';
import { DTYPES, ERROR_CODES } from '../../lib/index';
import { native } from '../../lib/native';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../helpers/paths';

describe('dtype table', () => {
  it('lib/dtype.ts mirrors native/include/weightsmith/dtype.h row for row', () => {
    const nat = native.dtypeTable();
    expect(nat.length).toBe(DTYPES.length);
    nat.forEach((row, i) => {
      const ts = DTYPES[i];
      expect({ name: ts.name, stName: ts.stName, bits: ts.bits, stRank: ts.stRank, arith: ts.arith }).toEqual(row);
    });
  });

  it('covers every safetensors dtype exactly once, in the reference enum order by stRank', () => {
    const byRank = [...DTYPES].sort((a, b) => a.stRank - b.stRank).map((d) => d.stName);
    expect(byRank).toEqual(['BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ',
      'F8_E5M2FNUZ', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64']);
  });

  it('TypedArray element size matches the storage width of byte-sized dtypes', () => {
    for (const d of DTYPES) {
      if (d.lanes === 0) continue;
      expect(d.array.BYTES_PER_ELEMENT * d.lanes * 8).toBe(d.bits);
    }
  });
});

describe('error codes', () => {
  it('every code the native layer can produce is a published code', () => {
    const src = fs.readFileSync(path.join(repoRoot, 'native/core/status.cpp'), 'utf8');
    const names = [...src.matchAll(/"((?:ERR|ABORT)_[A-Z0-9_]+)"/g)].map((m) => m[1]);
    expect(names.length).toBeGreaterThan(20);
    const argCodes = ['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE', 'ABORT_ERR'];
    for (const n of names) expect([...ERROR_CODES, ...argCodes]).toContain(n);
  });

  it('lists the codes of DESIGN.md exactly once each', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    expect(ERROR_CODES).toContain('ERR_ST_INCOMPLETE_BUFFER');
    expect(ERROR_CODES).toContain('ERR_GGUF_METADATA_TYPE');
    expect(ERROR_CODES.length).toBe(47);
  });
});
