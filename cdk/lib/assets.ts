/**
 * The Lambda builds the stacks deploy: `<dir>/<function>/bootstrap` for each function, checked
 * at synth time (so `cdk synth` and `cdk deploy` both refuse a bad assembly): the file must be
 * an ELF executable for the function's architecture. Placeholders (the shell scripts under
 * test/fixtures/lambda, which fail every invocation) are used only when the context flag
 * `cognito-relay:allowPlaceholders` is true, as the tests and an offline synth set it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PLACEHOLDER_ASSET_DIR } from './config';

export type LambdaArchitecture = 'arm64' | 'x86_64';

/** The functions a regional stack deploys, by the folder their build is in. */
export const LAMBDA_FUNCTIONS = ['proxy', 'replicator', 'auth-trigger'] as const;
export type LambdaFunctionName = (typeof LAMBDA_FUNCTIONS)[number];

/**
 * Context flag that lets synth fall back to the placeholder builds: `true` for every function,
 * or a comma-separated list of functions (`auth-trigger`).
 */
export const ALLOW_PLACEHOLDERS_CONTEXT = 'cognito-relay:allowPlaceholders';

/** ELF e_machine values. */
const EM: Record<LambdaArchitecture, number> = { arm64: 183, x86_64: 62 };

/**
 * What the file at `file` is, as far as Lambda cares: `arm64`, `x86_64`, or a description of
 * why it cannot run (`missing`, `not an ELF file`, `ELF for machine 40`, ...).
 */
export function describeBuild(file: string): LambdaArchitecture | string {
  let head: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      head = Buffer.alloc(20);
      const n = fs.readSync(fd, head, 0, 20, 0);
      head = head.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return 'missing';
  }
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) {
    return head.subarray(0, 2).toString() === '#!' ? 'a script, not an ELF executable (a placeholder?)' : 'not an ELF file';
  }
  if (head[4] !== 2) return 'a 32-bit ELF file';
  if (head[5] !== 1) return 'a big-endian ELF file';
  const type = head.readUInt16LE(16);
  if (type !== 2 && type !== 3) return `an ELF file of type ${type}, not an executable`;
  const machine = head.readUInt16LE(18);
  for (const [arch, em] of Object.entries(EM)) if (em === machine) return arch as LambdaArchitecture;
  return `an ELF executable for machine ${machine}`;
}

export interface ResolvedAssets {
  /** The folder each function's asset is taken from. */
  readonly dirs: Record<LambdaFunctionName, string>;
  /** The functions that got a placeholder (only with the context flag). */
  readonly placeholders: LambdaFunctionName[];
  /** One line per function that had no usable build. */
  readonly problems: string[];
}

/**
 * Picks each function's build from `dir`, checking it is an ELF executable for `arch`. Without
 * `allowPlaceholders`, any problem is an error naming the command that builds them.
 */
export function resolveLambdaAssets(
  dir: string,
  arch: LambdaArchitecture,
  allowPlaceholders: boolean | readonly string[],
): ResolvedAssets {
  const allowed = (fn: string) => allowPlaceholders === true || (Array.isArray(allowPlaceholders) && allowPlaceholders.includes(fn));
  const dirs = {} as Record<LambdaFunctionName, string>;
  const placeholders: LambdaFunctionName[] = [];
  const problems: string[] = [];
  for (const fn of LAMBDA_FUNCTIONS) {
    const file = path.join(dir, fn, 'bootstrap');
    const what = describeBuild(file);
    if (what === arch) {
      dirs[fn] = path.join(dir, fn);
      continue;
    }
    problems.push(`${file}: ${what === 'arm64' || what === 'x86_64' ? `built for ${what}, the functions run on ${arch}` : what}`);
    dirs[fn] = path.join(PLACEHOLDER_ASSET_DIR, fn);
    placeholders.push(fn);
  }
  const refused = placeholders.filter((fn) => !allowed(fn));
  if (refused.length > 0) {
    throw new Error(
      `cognito-relay: no deployable Lambda builds for ${arch}:\n- ${problems.join('\n- ')}\n` +
        `Build them with: scripts/build-lambdas --arch ${arch}  (from the repository root; it synthesises too)\n` +
        `Placeholders (which fail every invocation) are used only with -c ${ALLOW_PLACEHOLDERS_CONTEXT}=true ` +
        `(or =<function>,<function> for just those).`,
    );
  }
  return { dirs, placeholders, problems };
}

/** Reads the placeholder context value: true, false, or the functions listed. */
export function placeholderAllowance(value: unknown): boolean | string[] {
  if (value === true || value === 'true') return true;
  if (typeof value === 'string' && value.trim() !== '' && value !== 'false') {
    return value.split(',').map((v) => v.trim()).filter(Boolean);
  }
  return false;
}

/** Context key that overrides the parameter file's lambdaArchitecture (scripts/build-lambdas). */
export const ARCHITECTURE_CONTEXT = 'cognito-relay:architecture';
