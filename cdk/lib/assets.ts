/**
 * The Lambda builds the stacks deploy: `<dir>/<function>/bootstrap` for each function, checked
 * at synth time (so `cdk synth` and `cdk deploy` both refuse a bad assembly): the file must be
 * an ELF executable for the function's architecture whose glibc needs the `provided.al2023`
 * runtime meets (2.34). Placeholders (the shell scripts under
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

/** The newest glibc the `provided.al2023` runtime has (Amazon Linux 2023). */
export const RUNTIME_GLIBC = '2.34';

/** Compares two dotted versions (`2.34` < `2.39`). */
function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The newest glibc symbol version (`2.39`) a 64-bit little-endian ELF file needs, from its
 * version-needs section (`.gnu.version_r`, SHT_GNU_verneed, whose names are in the string table
 * it links to); undefined when it needs none (a static or musl build). A file without section
 * headers is scanned for `GLIBC_x.y` strings, as scripts/build-lambdas does.
 */
export function glibcNeeded(file: string): string | undefined {
  const data = fs.readFileSync(file);
  const versions: string[] = [];
  const header = data.length >= 64;
  const shoff = header ? Number(data.readBigUInt64LE(0x28)) : 0;
  const shentsize = header ? data.readUInt16LE(0x3a) : 0;
  const shnum = header ? data.readUInt16LE(0x3c) : 0;
  if (shoff > 0 && shnum > 0 && shentsize >= 64 && shoff + shnum * shentsize <= data.length) {
    const section = (i: number) => {
      const at = shoff + i * shentsize;
      return {
        type: data.readUInt32LE(at + 4),
        offset: Number(data.readBigUInt64LE(at + 24)),
        size: Number(data.readBigUInt64LE(at + 32)),
        link: data.readUInt32LE(at + 40),
        info: data.readUInt32LE(at + 44),
      };
    };
    for (let i = 0; i < shnum; i++) {
      const vr = section(i);
      if (vr.type !== 0x6ffffffe /* SHT_GNU_verneed */ || vr.link >= shnum) continue;
      const strtab = section(vr.link);
      const str = (at: number) => {
        const start = strtab.offset + at;
        const end = data.indexOf(0, start);
        return data.subarray(start, end < 0 ? strtab.offset + strtab.size : end).toString('latin1');
      };
      let need = vr.offset;
      for (let n = 0; n < vr.info && need + 16 <= data.length; n++) {
        const count = data.readUInt16LE(need + 2);
        let aux = need + data.readUInt32LE(need + 8);
        for (let k = 0; k < count && aux + 16 <= data.length; k++) {
          versions.push(str(data.readUInt32LE(aux + 8)));
          const next = data.readUInt32LE(aux + 12);
          if (next === 0) break;
          aux += next;
        }
        const next = data.readUInt32LE(need + 12);
        if (next === 0) break;
        need += next;
      }
    }
  } else {
    versions.push(...(data.toString('latin1').match(/GLIBC_\d+\.\d+(\.\d+)?/g) ?? []));
  }
  const glibc = versions
    .filter((v) => /^GLIBC_\d+\.\d+(\.\d+)?$/.test(v))
    .map((v) => v.slice('GLIBC_'.length))
    .sort(compareVersions);
  return glibc[glibc.length - 1];
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
    // A build for the right architecture must also run on provided.al2023: a plain host
    // `cargo build` on a newer distribution links against a newer glibc, and Lambda would fail
    // every cold start with "GLIBC_2.xx not found".
    const glibc = what === arch ? glibcNeeded(file) : undefined;
    if (what === arch && (glibc === undefined || compareVersions(glibc, RUNTIME_GLIBC) <= 0)) {
      dirs[fn] = path.join(dir, fn);
      continue;
    }
    problems.push(
      `${file}: ${
        glibc !== undefined
          ? `needs glibc ${glibc}, the provided.al2023 runtime has ${RUNTIME_GLIBC} (a host build? build with cargo-lambda)`
          : what === 'arm64' || what === 'x86_64'
            ? `built for ${what}, the functions run on ${arch}`
            : what
      }`,
    );
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
