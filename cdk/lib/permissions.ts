/**
 * The permission manifest (`cdk/permissions.json`), generated from `crates/aws/src/permissions.rs`
 * by that crate's tests: per role, each IAM action the binary needs and the symbolic resource it
 * is called on. The CDK tests assert that each deployed role grants exactly these rows
 * (test/permissions.test.ts); the operator role is built from them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CDK_ROOT } from './config';

export type ManifestRole = 'proxy' | 'replicator' | 'auth-trigger' | 'operator';

export interface ManifestRow {
  readonly action: string;
  /** Symbolic resource, e.g. `own-fallback-queue` (mapped to an ARN by the regional stack). */
  readonly resource: string;
  /** `sdk`, `standalone`, `event-source`, `queue-encryption`, `lambda-runtime` or `planned`. */
  readonly via: string;
  readonly site?: string;
  readonly planned?: string;
  readonly why: string;
}

export const PERMISSIONS_FILE = path.join(CDK_ROOT, 'permissions.json');

export function loadManifest(file = PERMISSIONS_FILE): Record<ManifestRole, ManifestRow[]> {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const role of ['proxy', 'replicator', 'auth-trigger', 'operator']) {
    if (!Array.isArray(doc.roles?.[role])) throw new Error(`${file}: no rows for role ${role}`);
  }
  return doc.roles;
}

/**
 * The rows a role of the Lambda deployment grants: everything but `standalone` (calls only the
 * standalone processes make; on Lambda the event source mapping does that queue work).
 */
export function deployedRows(role: ManifestRole, manifest = loadManifest()): ManifestRow[] {
  return manifest[role].filter((r) => r.via !== 'standalone');
}
