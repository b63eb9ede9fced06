// SPDX-License-Identifier: MIT
/**
 * The `weightsmith` command line. Exit codes: 0 success, 1 error (code and message on stderr), 2 usage.
 * @internal
 */
import { UsageError, type Io } from './args';
import { inspectCommand, INSPECT_HELP } from './inspect';
import { convertCommand, CONVERT_HELP } from './convert';
import { quantizeCommand, QUANTIZE_HELP } from './quantize';
import { pruneCommand, PRUNE_HELP } from './prune';
import { extractLoraCommand, EXTRACT_LORA_HELP, lowrankCommand, LOWRANK_HELP } from './lowrank';
import { version } from '../index';

const HELP = `weightsmith ${version}: post-training surgery on neural-network weights

Usage: weightsmith <command> [options]

Commands:
  inspect <file|dir>                  tensors, dtypes, shapes, parameters, sizes, metadata, validation
  convert <in> <out> --dtype <dtype>  convert floating-point tensors, streaming tensor by tensor
  quantize <in> <out> --scheme ggml --type q8_0
                                      quantize to ggml block types (GGUF), with an error report
                                      (--scheme int|fp8|nf4|fp4: compressed-tensors / bitsandbytes)
  prune <in> <out> --method magnitude|wanda --sparsity 0.5|2:4
                                      prune weights (unstructured or N:M), optionally compressed
  lowrank <in> <out> --rank 64 | --energy 0.99
                                      replace weights by low-rank factors (SVD), with an error report
  extract-lora --base <dir> --tuned <dir> <out-dir> --rank 16
                                      extract a PEFT LoRA adapter from a fine-tune's difference

Options:
  -h, --help                          help (also: weightsmith <command> --help)
  -v, --version                       print the version

Exit codes: 0 success, 1 error (code and message on stderr), 2 usage error.`;

type Command = (args: string[], io: Io) => Promise<number>;
const COMMANDS: Record<string, { run: Command; help: string }> = {
  inspect: { run: inspectCommand, help: INSPECT_HELP },
  convert: { run: convertCommand, help: CONVERT_HELP },
  quantize: { run: quantizeCommand, help: QUANTIZE_HELP },
  prune: { run: pruneCommand, help: PRUNE_HELP },
  lowrank: { run: lowrankCommand, help: LOWRANK_HELP },
  'extract-lora': { run: extractLoraCommand, help: EXTRACT_LORA_HELP },
};

/** Runs the CLI with argv (without node and script) and returns the exit code. */
export async function main(argv: string[], io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    const target = cmd === 'help' ? rest[0] : undefined;
    if (target && COMMANDS[target]) {
      io.out(`${COMMANDS[target].help}\n`);
      return 0;
    }
    io.out(`${HELP}\n`);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '-v' || cmd === '--version') {
    io.out(`${version}\n`);
    return 0;
  }
  const command = COMMANDS[cmd];
  if (!command) {
    io.err(`weightsmith: unknown command '${cmd}'\n\n${HELP}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${command.help}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`weightsmith ${cmd}: ${err.message}\n\n${command.help}\n`);
      return 2;
    }
    const e = err as { code?: string; message?: string };
    const code = e.code ?? 'ERR_INTERNAL';
    const message = (e.message ?? String(err)).replace(new RegExp(`^${code}: `), '');
    io.err(`weightsmith ${cmd}: error ${code}: ${message}\n`);
    return 1;
  }
}
