// SPDX-License-Identifier: MIT
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/paths';

function gypSources(): string[] {
  const text = fs.readFileSync(path.join(repoRoot, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const gyp = JSON.parse(text) as { targets: { target_name: string; sources: string[] }[] };
  return gyp.targets.find((t) => t.target_name === 'weightsmith')!.sources;
}

function cmakeSources(): string[] {
  const text = fs.readFileSync(path.join(repoRoot, 'CMakeLists.txt'), 'utf8');
  const m = /set\(WEIGHTSMITH_CPU_SOURCES\s+([^)]*)\)/.exec(text);
  expect(m, 'CMakeLists.txt defines WEIGHTSMITH_CPU_SOURCES').not.toBeNull();
  return m![1].split(/\s+/).filter(Boolean);
}

function nativeCppFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...nativeCppFiles(rel));
    else if (e.name.endsWith('.cpp')) out.push(rel);
  }
  return out;
}

describe('build files', () => {
  it('binding.gyp and CMakeLists.txt list the same CPU sources', () => {
    expect([...cmakeSources()].sort()).toEqual([...gypSources()].sort());
  });

  it('every CPU source under native/ (except fuzz targets) is built', () => {
    const all = nativeCppFiles('native').filter((f) => !f.startsWith('native/fuzz/'));
    expect([...gypSources()].sort()).toEqual(all.sort());
  });

  it('CMake has an OFF-by-default CUDA option over native/kernels/cuda', () => {
    const text = fs.readFileSync(path.join(repoRoot, 'CMakeLists.txt'), 'utf8');
    expect(text).toMatch(/option\(WEIGHTSMITH_CUDA\s+"[^"]*"\s+OFF\)/);
    expect(text).toContain('native/kernels/cuda/*.cu');
    expect(fs.readdirSync(path.join(repoRoot, 'native/kernels/cuda')).some((f) => f.endsWith('.cu'))).toBe(true);
  });

  it('never enables fast-math', () => {
    for (const f of ['binding.gyp', 'CMakeLists.txt', 'package.json']) {
      expect(fs.readFileSync(path.join(repoRoot, f), 'utf8')).not.toMatch(/fast-math|Ofast/);
    }
  });

  it('napi.h is included only under native/binding/', () => {
    for (const f of nativeCppFiles('native').filter((p) => !p.startsWith('native/binding/'))) {
      expect(fs.readFileSync(path.join(repoRoot, f), 'utf8'), f).not.toMatch(/#include\s*[<"]napi\.h/);
    }
  });
});
