#!/usr/bin/env node
// SPDX-License-Identifier: MIT
'use strict';
/**
 * The benchmark runner (`npm run bench`). Each case runs in a fresh node process; numpy peers run in their
 * own python process afterwards, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from their environment.
 * Prints the machine, the 2-thread memcpy baseline, then one row per case. Exits 1 only on errors (a case
 * that throws, a peer that fails, a kernel mismatch), never because of speed.
 *
 *   node bench/run.js [--json] [--list] [filter...]
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork, spawnSync } = require('node:child_process');

const CASES_DIR = path.join(__dirname, 'cases');
const PEERS_DIR = path.join(__dirname, 'peers');
const REPO = path.resolve(__dirname, '..');
const CASE_ORDER = ['memcpy', 'convert', 'open', 'read', 'stream'];
const OPENBLAS_VARS = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];
const CHILD_TIMEOUT_MS = 300_000;
const BUSY = 0.1;  // share of the machine's CPU used by others above which timings count as disturbed
const WAIT_ALLOWANCE_S = 60;  // total waiting for an idle machine per run

const USAGE = `Usage: node bench/run.js [--json] [--list] [--no-wait] [filter...]

Runs every benchmark case (or those whose name contains one of the filters, case-insensitive) in a
fresh node process. The memcpy baseline always runs. --json prints one JSON document on stdout.
Before each case the runner waits for other processes to leave the CPU idle, and reruns once a case
they disturbed (at most ${WAIT_ALLOWANCE_S} s of waiting per run); --no-wait turns both off.`;

// ---------------------------------------------------------------------------------------------- child

async function runChild(file, name) {
  const mod = require(path.join(CASES_DIR, file));
  const def = mod.cases.find((c) => c.name === name);
  let msg;
  try {
    if (!def) throw new Error(`no case '${name}' in ${file}`);
    msg = { ok: true, result: await def.run() };
  } catch (err) {
    msg = { ok: false, error: err && err.stack ? err.stack : String(err) };
  }
  const cpu = process.cpuUsage();
  msg.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.send(msg, () => process.exit(msg.ok ? 0 : 1));
}

// --------------------------------------------------------------------------------------------- parent

function listCases() {
  const files = fs.readdirSync(CASES_DIR).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3));
  files.sort((a, b) => (CASE_ORDER.indexOf(a) + 1 || 99) - (CASE_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const cases = [];
  for (const file of files) {
    for (const def of require(path.join(CASES_DIR, file)).cases) cases.push({ file, def });
  }
  return cases;
}

function peerEnv() {
  const env = { ...process.env };
  for (const v of OPENBLAS_VARS) delete env[v];
  return env;
}

function runPython(script, args) {
  const r = spawnSync('python3', [path.join(PEERS_DIR, script), ...args], {
    env: peerEnv(), encoding: 'utf8', timeout: CHILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python3 ${script} ${args.join(' ')} exited ${r.status}: ${(r.stderr || '').trim()}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

function machineInfo() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  let numpy = null;
  let python = null;
  let numpyError = null;
  let seenByPeer = null;
  try {
    const v = runPython('convert.py', ['--version']);
    numpy = v.numpy;
    python = v.python;
    seenByPeer = v.openblasVarsSeen;
  } catch (err) {
    numpyError = err.code === 'ENOENT' ? 'python3 not found' : String(err.message).split('\n')[0];
  }
  return {
    cpu,
    cores: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    python,
    numpy,
    numpyError,
    openblasVarsSet: OPENBLAS_VARS.filter((v) => process.env[v] !== undefined),
    openblasVarsUnsetForPeers: OPENBLAS_VARS,
    openblasVarsSeenByPeer: seenByPeer,
  };
}

/** Busy and total CPU seconds of the whole machine so far (all cores), from /proc/stat; null elsewhere. */
function machineCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const hz = 100;  // USER_HZ, 100 on every Linux this runs on
    return { busy: (total - f[3] - (f[4] || 0)) / hz, total: total / hz };
  } catch {
    return null;
  }
}

/**
 * The share of the machine's CPU time between `before` and `after` that was not spent by `ownSeconds` of
 * our own work: other processes, or the hypervisor (steal). High values mean disturbed timings.
 */
function foreignShare(before, after, ownSeconds) {
  if (!before || !after || after.total <= before.total) return null;
  return Math.max(0, (after.busy - before.busy - ownSeconds) / (after.total - before.total));
}

async function idleCheck() {
  const a = machineCpu();
  await new Promise((r) => setTimeout(r, 500));
  return foreignShare(a, machineCpu(), 0);
}

/**
 * On a shared machine, waits (from a run-wide allowance) until other processes use under 10% of the CPU.
 * Returns the last share seen.
 */
async function waitIdle(allowance) {
  let share = await idleCheck();
  while (share !== null && share >= BUSY && allowance.seconds > 0) {
    const t0 = Date.now();
    share = await idleCheck();
    allowance.seconds -= (Date.now() - t0) / 1000;
  }
  return share;
}

/** Why the built package cannot be benchmarked, or null. */
function buildMissing() {
  if (!fs.existsSync(path.join(REPO, 'dist', 'cjs', 'index.js'))) return 'dist/cjs/index.js is missing';
  try {
    require(path.join(REPO, 'node_modules', 'node-gyp-build')).path(REPO);
  } catch (err) {
    return String(err.message).split('\n')[0];
  }
  return null;
}

function forkCase(file, name, tmp) {
  return new Promise((resolve) => {
    const child = fork(__filename, ['--child', file, name], {
      execArgv: ['--expose-gc'],
      env: { ...process.env, WEIGHTSMITH_BENCH_TMP: tmp },
      // Piped, not inherited: no TTY progress bars from the CLI, and stdout stays clean for --json.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    child.stdout.on('data', (d) => process.stderr.write(d));
    child.stderr.on('data', (d) => process.stderr.write(d));
    let msg = null;
    child.on('message', (m) => { msg = m; });
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (msg) resolve(msg);
      else resolve({ ok: false, error: `the case process ended (${signal ?? `exit code ${code}`}) without a result` });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function fmtTime(s) {
  const ms = s * 1e3;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1e3).toFixed(2)} s`;
}

const fmtRatio = (r) => (r === null || r === undefined ? '-' : `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}x`);

/** Turns a case's raw result (and its peer's) into a row with medians and ratios. */
function summarize(name, def, result, peer, baseline) {
  const t = median(result.samples);
  const gbps = def.unit === 'ms' || !result.bytes ? null : result.bytes / t / 1e9;
  const row = {
    name,
    size: result.size,
    unit: def.unit ?? 'GB/s',
    seconds: t,
    samples: result.samples,
    gbps,
    vsMemcpy: gbps !== null && baseline && !def.baseline && (def.unit ?? 'GB/s') === 'GB/s' ? gbps / baseline.gbps : null,
    ref: null,
    peer: null,
    notes: result.notes ?? [],
    metrics: result.metrics ?? {},
    errors: [...(result.errors ?? [])],
    warnings: [],
  };
  if (result.ref) {
    const refGbps = result.ref.bytes / median(result.ref.samples) / 1e9;
    row.ref = { size: result.ref.size, samples: result.ref.samples, gbps: refGbps, ratio: gbps / refGbps };
  }
  if (peer) {
    const peerGbps = peer.bytes / median(peer.samples) / 1e9;
    row.peer = { ...peer, seconds: median(peer.samples), gbps: peerGbps, ratio: gbps !== null ? gbps / peerGbps : median(peer.samples) / t };
  }
  return row;
}

function checkTargets(row, def) {
  const out = [];
  const tg = def.targets ?? {};
  const add = (what, measured, ok, by) => out.push({ case: row.name, what, measured, ok, by: ok ? null : by });
  if (tg.memcpy !== undefined && row.vsMemcpy !== null) {
    add(`>= ${tg.memcpy}x 2-thread memcpy`, fmtRatio(row.vsMemcpy), row.vsMemcpy >= tg.memcpy,
      `${((1 - row.vsMemcpy / tg.memcpy) * 100).toFixed(0)}% short`);
  }
  if (tg.peer !== undefined && row.peer) {
    add(`>= ${tg.peer}x ${row.peer.label}`, fmtRatio(row.peer.ratio), row.peer.ratio >= tg.peer,
      `${((1 - row.peer.ratio / tg.peer) * 100).toFixed(0)}% short`);
  }
  if (tg.maxMs !== undefined) {
    const ms = row.seconds * 1e3;
    add(`< ${tg.maxMs} ms`, `${ms.toFixed(2)} ms`, ms < tg.maxMs, `${(ms / tg.maxMs).toFixed(1)}x over`);
  }
  if (tg.rssSlack !== undefined) {
    const limit = row.metrics.headerBytes + tg.rssSlack;
    const grown = row.metrics.medianRssGrowthBytes;
    add(`median RSS growth <= header + ${tg.rssSlack / 2 ** 20} MiB`, `${(grown / 1024).toFixed(0)} KiB`, grown <= limit,
      `${((grown - limit) / 1024).toFixed(0)} KiB over`);
  }
  return out;
}

const COLS = [['case', 32], ['size', 30], ['time', 10], ['GB/s', 7], ['vs memcpy', 10], ['vs ref', 8], ['vs peer', 22]];

function tableLine(cells) {
  return cells.map((c, i) => (i < 2 ? String(c).padEnd(COLS[i][1]) : String(c).padStart(COLS[i][1]))).join('  ').trimEnd();
}

function rowLines(row) {
  const peer = row.peer ? `${fmtRatio(row.peer.ratio)} ${row.peer.label}` : '-';
  const lines = [tableLine([row.name, row.size, fmtTime(row.seconds), row.gbps === null ? '-' : row.gbps.toFixed(1),
    fmtRatio(row.vsMemcpy), row.ref ? fmtRatio(row.ref.ratio) : '-', peer])];
  const notes = [...row.notes];
  const lo = Math.min(...row.samples);
  const hi = Math.max(...row.samples);
  if (hi - lo > 0.2 * row.seconds) notes.push(`runs spread ${fmtTime(lo)} to ${fmtTime(hi)}`);
  if (row.ref) notes.push(`ref (scalar, 1 thread, ${row.ref.size}): ${row.ref.gbps.toFixed(2)} GB/s`);
  if (row.peer && row.peer.variants) {
    const parts = Object.entries(row.peer.variants).map(([k, v]) => {
      if (row.gbps === null) return `${k} ${fmtTime(median(v))} ${k === row.peer.method ? '(the ratio)' : `(${fmtRatio(median(v) / row.seconds)})`}`;
      const g = row.peer.bytes / median(v) / 1e9;
      return `${k} ${g.toFixed(2)} ${row.unit} ${k === row.peer.method ? '(the ratio)' : `(${fmtRatio(row.gbps / g)})`}`;
    });
    notes.push(`${row.peer.label}: ${parts.join(', ')}`);
  }
  notes.push(...row.warnings);
  if (notes.length) lines.push(`    ${notes.join('; ')}`);
  for (const e of row.errors) lines.push(`    ERROR: ${e}`);
  return lines;
}

async function main(argv) {
  if (argv[0] === '--child') return runChild(argv[1], argv[2]);
  const json = argv.includes('--json');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const unknown = argv.filter((a) => a.startsWith('-') && !['--json', '--list', '--no-wait'].includes(a));
  const wait = !argv.includes('--no-wait');
  if (unknown.length) {
    process.stderr.write(`unknown option ${unknown[0]}\n\n${USAGE}\n`);
    return 2;
  }
  const filters = argv.filter((a) => !a.startsWith('-')).map((f) => f.toLowerCase());
  const all = listCases();
  if (argv.includes('--list')) {
    for (const { def } of all) process.stdout.write(`${def.name}\n`);
    return 0;
  }
  const missing = buildMissing();
  if (missing) {
    process.stderr.write(`bench: ${missing}; run \`npm run build\` first\n`);
    return 1;
  }
  const selected = all.filter(({ def }) => def.baseline || filters.length === 0 || filters.some((f) => def.name.toLowerCase().includes(f)));
  if (filters.length && selected.every(({ def }) => def.baseline)) {
    process.stderr.write(`bench: no case matches ${filters.join(', ')}; cases:\n${all.map(({ def }) => `  ${def.name}`).join('\n')}\n`);
    return 2;
  }

  const started = Date.now();
  const machine = machineInfo();
  machine.busyBeforeStart = await idleCheck();
  const out = (s) => { if (!json) process.stdout.write(`${s}\n`); };
  const progress = (s) => { process.stderr.write(`${s}\n`); };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weightsmith-bench-'));
  const removeTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  const onSignal = (sig) => { removeTmp(); process.kill(process.pid, sig); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.on('exit', removeTmp);
  process.stdout.on('error', (err) => {
    // A closed pipe (`| head`) ends the run quietly; anything else is an error.
    process.exit(err.code === 'EPIPE' ? 0 : 1);
  });

  out(`weightsmith bench: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`);
  out(`node ${machine.node}; ${machine.numpy ? `numpy ${machine.numpy} (python ${machine.python})` : `numpy peers skipped: ${machine.numpyError}`}`);
  const seen = machine.openblasVarsSeenByPeer;
  out(`${OPENBLAS_VARS.join(', ')}: ${machine.openblasVarsSet.length ? `${machine.openblasVarsSet.join(', ')} set here, unset` : 'not set here; removed anyway'} for numpy processes${seen ? ` (numpy process sees: ${seen.length ? seen.join(', ') : 'none'})` : ''}`);
  if (machine.busyBeforeStart !== null) {
    const busy = machine.busyBeforeStart;
    out(`CPU used by other processes before start: ${(busy * 100).toFixed(0)}%${busy > 0.1 ? '  WARNING: the machine is not idle; timings will be disturbed' : ''}`);
  }
  out(`scratch files: ${tmp} (removed at the end)`);

  const waits = { seconds: WAIT_ALLOWANCE_S };
  const rows = [];
  const targets = [];
  const errors = [];
  let baseline = null;
  try {
    for (const { file, def } of selected) {
      if (json) progress(`bench: ${def.name}`);
      const allowance = wait ? waits : { seconds: 0 };
      let msg;
      let foreign = null;
      let attempts = 0;
      for (;;) {
        attempts++;
        if (wait) await waitIdle(allowance);
        const cpuBefore = machineCpu();
        const m = await forkCase(file, def.name, tmp);
        const f = foreignShare(cpuBefore, machineCpu(), m.cpuSeconds ?? 0);
        if (!msg || !m.ok || (f ?? 0) < (foreign ?? 0)) {
          msg = m;
          foreign = f;
        }
        if (!m.ok || f === null || f < BUSY || attempts > 1 || allowance.seconds <= 0) break;
        progress(`bench: ${def.name} was disturbed by other processes (${(f * 100).toFixed(0)}%), running it again`);
      }
      if (!msg.ok) {
        errors.push({ case: def.name, error: msg.error });
        out(`${def.name}: ERROR\n${msg.error.replace(/^/gm, '    ')}`);
        if (def.baseline) break;  // every ratio needs it
        continue;
      }
      let peer = msg.result.peer ?? null;
      let peerError = null;
      if (!peer && def.peer && machine.numpy) {
        try {
          if (wait) await waitIdle(allowance);
          const cpuBefore = machineCpu();
          const p = runPython(def.peer.script, def.peer.args);
          const f = foreignShare(cpuBefore, machineCpu(), p.cpuSeconds ?? 0);
          peer = { label: def.peer.label, method: p.method, bytes: msg.result.bytes, samples: p.samples, variants: p.variants, foreignCpuShare: f };
        } catch (err) {
          peerError = `${def.peer.label} peer: ${err.message}`;
        }
      }
      const row = summarize(def.name, def, msg.result, peer, baseline);
      if (peerError) row.errors.push(peerError);
      row.foreignCpuShare = foreign;
      row.attempts = attempts;
      if (peer && peer.foreignCpuShare > BUSY) {
        row.warnings.push(`WARNING: other processes used ${(peer.foreignCpuShare * 100).toFixed(0)}% of the CPU while ${peer.label} ran`);
      }
      if (foreign !== null && foreign > BUSY) {
        row.warnings.push(`WARNING: other processes used ${(foreign * 100).toFixed(0)}% of the CPU during this case${attempts > 1 ? ` (the less disturbed of ${attempts} runs)` : ''}`);
      }
      if (def.baseline) {
        baseline = row;
        out(`memcpy baseline (memcpyParallel, 2 threads, ${row.size}): ${row.gbps.toFixed(1)} GB/s read+written, ${fmtTime(row.seconds)}; ${[...row.notes, ...row.warnings].join('; ')}`);
        const cpu = row.metrics.cpu;
        if (cpu) out(`addon: ${row.metrics.threads} threads; ${Object.entries(cpu).filter(([, v]) => v).map(([k]) => k).join(', ')}`);
        out('');
        out(tableLine(COLS.map(([c]) => c)));
        out('-'.repeat(tableLine(COLS.map(([c]) => c)).length));
      } else {
        for (const l of rowLines(row)) out(l);
      }
      for (const e of row.errors) errors.push({ case: def.name, error: e });
      rows.push(row);
      targets.push(...checkTargets(row, def));
    }
  } finally {
    removeTmp();
  }

  const seconds = (Date.now() - started) / 1000;
  if (json) {
    const doc = { machine, memcpy: baseline, cases: rows.filter((r) => r !== baseline), targets, errors, seconds };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    out('');
    out('GB/s counts bytes read + written (1 GB = 1e9 B). vs memcpy: GB/s over the memcpy baseline above.');
    out('vs ref: over our scalar single-thread reference kernel. vs peer: how many times faster than the peer.');
    if (targets.length) {
      out('');
      out('Targets (DESIGN.md section 6; informational, never the exit code):');
      const disturbed = rows.filter((r) => r.warnings.length > 0).map((r) => r.name);
      if (disturbed.length) out(`  (other processes used over 10% of the CPU during: ${disturbed.join(', ')}; those figures are unreliable)`);
      for (const t of targets) out(`  ${t.ok ? 'ok    ' : 'MISSED'}  ${t.case.padEnd(32)} ${t.what.padEnd(38)} ${t.measured}${t.ok ? '' : ` (${t.by})`}`);
    }
    out('');
    out(`${errors.length ? `${errors.length} error(s)` : 'no errors'}; ${seconds.toFixed(0)} s`);
  }
  return errors.length ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { if (code !== undefined) process.exitCode = code; },
  (err) => { process.stderr.write(`bench: ${err && err.stack ? err.stack : err}\n`); process.exitCode = 1; },
);
