import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exampleConfig } from '../lib/config';
import { SECRET_CHECK_RESOURCE_TYPE } from '../lib/construct/preflight';
import { build, only, STATE_TABLE } from './helpers';

/**
 * Missing secrets fail the deploy, not the traffic (issue 21 point 3): every operator-created
 * secret the regional stack uses by name is described by a deploy-time custom resource, whose
 * provider may describe exactly that secret, and the stateful resources wait for the checks.
 */
const built = build();
const SECRETS = [exampleConfig.replicationKeySecretName, exampleConfig.refreshKeySecretName, exampleConfig.bridgeKeySecretName];

describe('deploy-time secret checks', () => {
  for (const [name, t, region] of [
    ['primary', built.primary, 'eu-west-1'],
    ['standby', built.standby, 'eu-central-1'],
  ] as const) {
    const resources = t.toJSON().Resources as Record<string, any>;
    const checks = Object.entries(resources).filter(([, r]) => r.Type === SECRET_CHECK_RESOURCE_TYPE);

    test(`${name}: one DescribeSecret check per operator-created secret (replication key, refresh key, bridge key)`, () => {
      const described = checks.map(([, r]) => {
        const create = JSON.parse(r.Properties.Create);
        assert.deepEqual(JSON.parse(r.Properties.Update), create, 'the same call on update (a renamed secret is checked again)');
        assert.equal(create.service, 'SecretsManager');
        assert.equal(create.action, 'describeSecret');
        assert.deepEqual(create.outputPaths, ['ARN'], 'nothing but the ARN comes back to CloudFormation');
        return create.parameters.SecretId;
      });
      assert.deepEqual(described.sort(), [...SECRETS].sort());
      // The app's own clients secret is created by the stack: nothing to check.
      assert.ok(!described.includes('cognito-relay/clients'));
    });

    test(`${name}: each check may call secretsmanager:DescribeSecret on its own secret only, never read a value`, () => {
      for (const [id, r] of checks) {
        const secret = JSON.parse(r.Properties.Create).parameters.SecretId;
        const policies = (r.DependsOn as string[]).map((d) => resources[d]).filter((p) => p?.Type === 'AWS::IAM::Policy');
        assert.equal(policies.length, 1, id);
        const statements = policies[0].Properties.PolicyDocument.Statement;
        assert.equal(statements.length, 1, id);
        const [s] = statements;
        assert.equal(s.Effect, 'Allow');
        assert.equal(s.Action, 'secretsmanager:DescribeSecret', id);
        const arn = s.Resource['Fn::Join'][1].filter((x: unknown) => typeof x === 'string').join('');
        assert.equal(arn, `arn::secretsmanager:${region}:111111111111:secret:${secret}-??????`, id);
      }
      // Across every policy of the deploy-time provider's role: no secret value is readable.
      const providerRole = Object.keys(resources).find((k) => k.startsWith('AWS679f53fac002430cb0da5b7982bd2287ServiceRole'));
      assert.ok(providerRole);
      const granted = Object.values(resources)
        .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(providerRole!))
        .flatMap((r) => r.Properties.PolicyDocument.Statement.flatMap((s: any) => [s.Action].flat()));
      assert.ok(granted.includes('secretsmanager:DescribeSecret'));
      assert.deepEqual(granted.filter((a: string) => a.startsWith('secretsmanager:')), SECRETS.map(() => 'secretsmanager:DescribeSecret'));
    });

    test(`${name}: the state table, the queue key and the fixed-name queues are created only after every check passed`, () => {
      const ids = checks.map(([id]) => id);
      const waiting = [
        only(t, 'AWS::DynamoDB::Table', STATE_TABLE).id,
        only(t, 'AWS::KMS::Key', { Properties: { Description: 'cognito-relay: encrypts the replication queues' } }).id,
        ...Object.entries(resources)
          .filter(([, r]) => r.Type === 'AWS::SQS::Queue' && typeof r.Properties.QueueName === 'string' && r.Properties.QueueName.startsWith('cognito-relay-'))
          .map(([id]) => id),
      ];
      assert.equal(waiting.length, 5);
      for (const w of waiting) {
        for (const c of ids) assert.ok((resources[w].DependsOn ?? []).includes(c), `${w} waits for ${c}`);
      }
    });
  }

  test('the checks follow the configured secret names', () => {
    const b = build({ ...exampleConfig, bridgeKeySecretName: 'prod/relay-bridge' });
    const named = Object.values<any>(b.standby.findResources(SECRET_CHECK_RESOURCE_TYPE)).map(
      (r) => JSON.parse(r.Properties.Create).parameters.SecretId,
    );
    assert.ok(named.includes('prod/relay-bridge'));
    assert.ok(!named.includes('cognito-relay/bridge-key'));
  });
});
