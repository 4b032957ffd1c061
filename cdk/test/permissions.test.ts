import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { grantFromManifest } from '../lib/construct/permissions';
import { ManifestRole, deployedRows, loadManifest } from '../lib/permissions';
import { RegionalStack } from '../lib/stack/regional-stack';
import { build } from './helpers';

/**
 * Each deployed role grants exactly the rows of the permission manifest (cdk/permissions.json,
 * generated from crates/aws/src/permissions.rs): the same actions on the same resources, nothing
 * more and nothing less.
 */
const built = build();
const manifest = loadManifest();
const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** "action resource" pairs a role's policies grant, resources named by their manifest symbol. */
function granted(stack: RegionalStack, role: iam.IRole, ownLogs: string | undefined): string[] {
  const symbols = new Map<string, string>();
  for (const [sym, arn] of Object.entries(stack.permissions.resources)) symbols.set(JSON.stringify(stack.resolve(arn)), sym);
  if (ownLogs) symbols.set(JSON.stringify(stack.resolve(ownLogs)), 'own-log-group');
  const roleId = stack.getLogicalId((role as iam.Role).node.defaultChild as any);
  const template = Template.fromStack(stack).toJSON();
  const pairs: string[] = [];
  for (const [id, r] of Object.entries<any>(template.Resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    if (!list(r.Properties.Roles).some((x: any) => x.Ref === roleId)) continue;
    for (const s of r.Properties.PolicyDocument.Statement) {
      assert.equal(s.Effect, 'Allow', `${id}: only Allow statements in role policies`);
      for (const res of list(s.Resource)) {
        const sym = symbols.get(JSON.stringify(res));
        assert.ok(sym, `${id}: resource ${JSON.stringify(res)} is not a resource of the manifest`);
        for (const a of list(s.Action)) pairs.push(`${a} ${sym}`);
      }
    }
  }
  // Managed policies would grant outside the manifest.
  assert.equal(template.Resources[roleId].Properties.ManagedPolicyArns, undefined, `${roleId}: managed policies`);
  return [...new Set(pairs)].sort();
}

function expected(role: ManifestRole): string[] {
  return [...new Set(deployedRows(role, manifest).map((r) => `${r.action} ${r.resource}`))].sort();
}

describe('permissions: each role grants exactly its manifest rows', () => {
  for (const [name, stack] of [
    ['primary', built.relay.primary],
    ['standby', built.relay.standby],
  ] as const) {
    test(`${name}: proxy`, () => {
      assert.deepEqual(granted(stack, stack.functions.proxyRole, stack.functions.proxyLogs.logGroupArn), expected('proxy'));
    });
    test(`${name}: replicator`, () => {
      assert.deepEqual(
        granted(stack, stack.functions.replicatorRole, stack.functions.replicatorLogs.logGroupArn),
        expected('replicator'),
      );
    });
    test(`${name}: auth-trigger (reads its region's bridge key, nothing else)`, () => {
      assert.deepEqual(granted(stack, stack.bridge.role, stack.bridge.logs.logGroupArn), expected('auth-trigger'));
    });
    test(`${name}: operator (relayctl)`, () => {
      assert.deepEqual(granted(stack, stack.operatorRole, undefined), expected('operator'));
    });
  }

  test('the fixes the review asked for hold: fallback depth granted, AdminConfirmSignUp gone', () => {
    assert.ok(expected('proxy').includes('sqs:GetQueueAttributes own-fallback-queue'));
    for (const role of ['proxy', 'replicator', 'operator'] as const) {
      assert.ok(!expected(role).some((p) => p.startsWith('cognito-idp:AdminConfirmSignUp')), role);
    }
  });

  test('standalone-only calls are not granted to the Lambda roles', () => {
    const standalone = manifest.replicator.filter((r) => r.via === 'standalone');
    assert.ok(standalone.some((r) => r.action === 'cognito-idp:DescribeUserPool'));
    const replicator = granted(
      built.relay.primary,
      built.relay.primary.functions.replicatorRole,
      built.relay.primary.functions.replicatorLogs.logGroupArn,
    );
    assert.ok(!replicator.includes('cognito-idp:DescribeUserPool own-pool'));
  });

  test('every sdk row names the source file that makes the call', () => {
    for (const [role, rows] of Object.entries(manifest)) {
      for (const r of rows) {
        if (r.via === 'sdk' || r.via === 'standalone') assert.match(r.site ?? '', /^crates\/[a-z-]+\/src\/.+\.rs$/, `${role} ${r.action}`);
        if (r.via === 'planned') assert.ok((r.planned ?? '').length > 5, `${role} ${r.action}: planned by what`);
      }
    }
  });

  test('a stack that would need an unmapped resource refuses to synthesise', () => {
    const role = new iam.Role(new Stack(), 'R', { assumedBy: new iam.AccountRootPrincipal() });
    assert.throws(() => grantFromManifest(role, 'operator', {}), /does not map/);
  });
});
