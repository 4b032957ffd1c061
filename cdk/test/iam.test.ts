import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { REPLICATOR_COGNITO_ACTIONS } from '../lib/construct/permissions';
import { build, LIMITS_TABLE, only, STATE_TABLE } from './helpers';

const built = build();
const templates: Array<[string, Template]> = [
  ['primary', built.primary],
  ['standby', built.standby],
  ['global', built.global],
];

interface Found {
  where: string;
  type: string;
  statement: any;
}

/** Every statement of every policy document (identity and resource policies) in a template. */
function statements(name: string, t: Template): Found[] {
  const out: Found[] = [];
  for (const [id, r] of Object.entries<any>(t.toJSON().Resources)) {
    const docs: any[] = [];
    const p = r.Properties ?? {};
    if (p.PolicyDocument) docs.push(p.PolicyDocument);
    if (p.KeyPolicy) docs.push(p.KeyPolicy);
    if (p.AssumeRolePolicyDocument) docs.push(p.AssumeRolePolicyDocument);
    for (const inline of p.Policies ?? []) docs.push(inline.PolicyDocument);
    for (const d of docs) for (const s of d.Statement) out.push({ where: `${name}/${id}`, type: r.Type, statement: s });
  }
  return out;
}

const all = templates.flatMap(([n, t]) => statements(n, t));
const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Resource strings with a wildcard that are accepted, and why. Anything else with "*" fails.
 */
const JUSTIFIED_WILDCARDS: Array<{ pattern: RegExp; why: string; needs?: (s: any) => boolean }> = [
  {
    pattern: /^arn:aws:kms:(eu-west-1|eu-central-1):111111111111:key\/\*$/,
    why: 'peer queue key: random id in another region; limited by alias and SQS',
    needs: (s) =>
      s.Condition?.['ForAnyValue:StringEquals']?.['kms:ResourceAliases'] === 'alias/cognito-relay-queues' &&
      /^sqs\.[a-z0-9-]+\.amazonaws\.com$/.test(s.Condition?.StringEquals?.['kms:ViaService']),
  },
  {
    pattern: /secret:cognito-relay\/(replication-key|refresh-key|bridge-key)-\?\?\?\?\?\?$/,
    why: 'Secrets Manager suffix of an operator-created secret',
  },
  {
    pattern: /^arn:aws:route53:::healthcheck\/\*$/,
    why: "relayctl failover/failback: the global stack's health checks (ids unknown to a regional stack), read-only",
    needs: (s) => JSON.stringify(s.Action) === JSON.stringify('route53:GetHealthCheckStatus'),
  },
];

/** The role ARNs that may send to (and encrypt for) a region's inbound queue. */
const SENDERS: Record<string, string[]> = {
  'eu-west-1': [
    'arn:aws:iam::111111111111:role/cognito-relay-proxy-eu-central-1',
    'arn:aws:iam::111111111111:role/cognito-relay-replicator-eu-central-1',
    'arn:aws:iam::111111111111:role/cognito-relay-operator-eu-west-1',
  ],
  'eu-central-1': [
    'arn:aws:iam::111111111111:role/cognito-relay-proxy-eu-west-1',
    'arn:aws:iam::111111111111:role/cognito-relay-replicator-eu-west-1',
    'arn:aws:iam::111111111111:role/cognito-relay-operator-eu-central-1',
  ],
};

describe('IAM: every policy document', () => {
  test('has statements to scan', () => {
    assert.ok(all.length > 20, `found ${all.length}`);
  });

  test('no Allow statement grants a "*" action or a service-wide "svc:*" action', () => {
    for (const { where, type, statement } of all) {
      if (statement.Effect !== 'Allow') continue;
      // The one exception: the default statement of a KMS key policy, which gives the key to
      // this account's root so that IAM policies (like the ones tested here) can grant its use.
      if (type === 'AWS::KMS::Key' && JSON.stringify(statement.Principal).includes(':iam::111111111111:root')) {
        assert.deepEqual(list(statement.Action), ['kms:*'], where);
        continue;
      }
      for (const a of list(statement.Action)) {
        assert.ok(typeof a === 'string' && !a.endsWith('*'), `${where}: action ${a}`);
      }
      assert.equal(statement.NotAction, undefined, `${where}: NotAction`);
      assert.equal(statement.NotResource, undefined, `${where}: NotResource`);
    }
  });

  test('"*" as a whole resource only in KMS key policies (where it means "this key") and for cloudwatch:GetMetricData alone', () => {
    for (const { where, type, statement } of all) {
      if (statement.Effect !== 'Allow') continue;
      for (const r of list(statement.Resource)) {
        if (r !== '*') continue;
        // GetMetricData has no resource-level permissions (relayctl status on the Lambda deployment).
        if (JSON.stringify(statement.Action) === JSON.stringify('cloudwatch:GetMetricData')) continue;
        assert.equal(type, 'AWS::KMS::Key', `${where}: Resource "*"`);
      }
    }
  });

  test('wildcards inside resource ARNs only where justified', () => {
    let justified = 0;
    for (const { where, type, statement } of all) {
      if (statement.Effect !== 'Allow' || type === 'AWS::KMS::Key') continue;
      for (const r of list(statement.Resource)) {
        if (r === '*') continue;
        const text = typeof r === 'string' ? r : JSON.stringify(r);
        // A GetAtt of a LogGroup's Arn ends in ":*" (its log streams) and carries no visible "*".
        if (!/[*?]/.test(text)) continue;
        const flat = typeof r === 'string' ? r : ((r as any)['Fn::Join']?.[1] ?? []).filter((x: unknown) => typeof x === 'string').join('');
        const rule = JUSTIFIED_WILDCARDS.find((j) => j.pattern.test(flat));
        assert.ok(rule, `${where}: unjustified wildcard resource ${text}`);
        if (rule.needs) assert.ok(rule.needs(statement), `${where}: ${rule.why} without its conditions`);
        justified++;
      }
    }
    assert.ok(justified >= 4, 'the known wildcards were seen');
  });

  test('resource policies with Principal "*" only deny (non-TLS access, or senders outside the allowed roles)', () => {
    let senderDenies = 0;
    for (const { where, statement } of all) {
      if (statement.Principal !== '*' && statement.Principal?.AWS !== '*') continue;
      assert.equal(statement.Effect, 'Deny', where);
      if (statement.Condition?.ArnNotEquals) {
        assert.deepEqual(Object.keys(statement.Condition), ['ArnNotEquals'], where);
        assert.deepEqual(Object.keys(statement.Condition.ArnNotEquals), ['aws:PrincipalArn'], where);
        senderDenies++;
      } else {
        assert.deepEqual(statement.Condition, { Bool: { 'aws:SecureTransport': 'false' } }, where);
      }
    }
    // inbound queue + queue key, in each region
    assert.equal(senderDenies, 4);
  });
});

function rolePolicy(t: Template, roleLogicalPrefix: string): any[] {
  const p = Object.entries<any>(t.findResources('AWS::IAM::Policy')).find(([id]) =>
    id.startsWith(`${roleLogicalPrefix}DefaultPolicy`),
  );
  assert.ok(p, `policy of ${roleLogicalPrefix}`);
  return p[1].Properties.PolicyDocument.Statement;
}

describe('IAM: proxy role', () => {
  const st = rolePolicy(built.primary, 'ProxyRole');
  const actions = st.flatMap((s) => list(s.Action)).sort();

  test('holds exactly the runtime permissions', () => {
    assert.deepEqual(actions, [
      'cognito-idp:AdminDeleteUser', // half-finished sign-ups: the placeholder
      'cognito-idp:AdminGetUser',
      'cognito-idp:DescribeUserPool', // /health
      'cognito-idp:ListUsers', // a placeholder by its sign-in alias
      'dynamodb:GetItem',
      'dynamodb:GetItem',
      'dynamodb:GetItem', // the peer region's limits table
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:UpdateItem', // the peer region's limits table
      'events:PutEvents', // its event bus
      'kms:Decrypt',
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'kms:GenerateDataKey',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue', // bridge key
      'secretsmanager:GetSecretValue',
      'sqs:GetQueueAttributes',
      'sqs:SendMessage',
      'ssm:GetParameter', // drain switch
      'ssm:GetParameter', // sign-up policy
    ]);
  });

  test('its Cognito actions are on its own pool only', () => {
    const cognito = st.filter((x) => list(x.Action).some((a) => String(a).startsWith('cognito-idp:')));
    const own = JSON.stringify(list(cognito.find((x) => x.Sid === 'HealthDescribeOwnPool').Resource));
    assert.ok(own.includes('userpool/'), own);
    assert.equal(cognito.length, 2);
    for (const s of cognito) assert.equal(JSON.stringify(list(s.Resource)), own, s.Sid);
  });

  test('reads the depth of its own fallback queue only (it stays on the fallback path until that queue drains)', () => {
    const depth = st.filter((s) => list(s.Action).includes('sqs:GetQueueAttributes'));
    const fb = only(built.primary, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-fallback.fifo' } });
    assert.equal(depth.length, 1);
    assert.deepEqual(list(depth[0].Resource), [{ 'Fn::GetAtt': [fb.id, 'Arn'] }]);
  });

  test('sends only to the peer inbound queue and its own fallback queue', () => {
    const send = st.find((s) => list(s.Action).includes('sqs:SendMessage'));
    const fb = only(built.primary, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-fallback.fifo' } });
    assert.deepEqual(send.Resource, [
      'arn:aws:sqs:eu-central-1:111111111111:cognito-relay-inbound.fifo',
      { 'Fn::GetAtt': [fb.id, 'Arn'] },
    ]);
    // The replicator forwards the fallback queue; the proxy only sends to it.
    assert.ok(!actions.includes('sqs:ReceiveMessage') && !actions.includes('sqs:DeleteMessage'));
  });

  test('KMS use is constrained to the queue key alias', () => {
    for (const s of st.filter((x) => list(x.Action).some((a) => String(a).startsWith('kms:')))) {
      assert.equal(s.Condition['ForAnyValue:StringEquals']['kms:ResourceAliases'], 'alias/cognito-relay-queues');
    }
  });

  test('reads the drain parameter and describes only its own pool', () => {
    const param = only(built.primary, 'AWS::SSM::Parameter', { Properties: { Name: '/cognito-relay/drain' } });
    const ssm = st.find((s) => list(s.Action).includes('ssm:GetParameter') && JSON.stringify(s.Resource).includes(param.id));
    const policy = only(built.primary, 'AWS::SSM::Parameter', { Properties: { Name: '/cognito-relay/sign-up-policy' } });
    assert.ok(st.some((s) => list(s.Action).includes('ssm:GetParameter') && JSON.stringify(s.Resource).includes(policy.id)), 'reads the sign-up policy');
    assert.match(JSON.stringify(ssm.Resource), new RegExp(`:parameter",\\{"Ref":"${param.id}"\\}`));
    const cog = st.find((s) => list(s.Action).includes('cognito-idp:DescribeUserPool'));
    assert.match(JSON.stringify(cog.Resource), /userpool\/eu-west-1_Primary01/);
  });

  test('reads its clients secret, the replication key and the refresh-token keyring', () => {
    const sec = st.filter((s) => s.Sid === 'ReadOwnSecrets');
    assert.equal(sec.length, 1);
    const text = JSON.stringify(sec[0].Resource);
    assert.equal(list(sec[0].Resource).length, 3);
    assert.match(text, /secret:cognito-relay\/replication-key-\?\?\?\?\?\?/);
    assert.match(text, /secret:cognito-relay\/refresh-key-\?\?\?\?\?\?/);
    const clients = only(built.primary, 'AWS::SecretsManager::Secret', { Properties: { Name: 'cognito-relay/clients' } });
    assert.ok(list(sec[0].Resource).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: clients.id })));
  });

  test('proxy, replicator and operator roles are named deterministically per region', () => {
    for (const [t, region] of [[built.primary, 'eu-west-1'], [built.standby, 'eu-central-1']] as const) {
      for (const r of ['proxy', 'replicator', 'operator']) {
        only(t, 'AWS::IAM::Role', { Properties: { RoleName: `cognito-relay-${r}-${region}` } });
      }
    }
  });
});

describe('IAM: state table grants', () => {
  for (const [name, t] of [['primary', built.primary], ['standby', built.standby]] as const) {
    test(`${name}: proxy and replicator get exactly dynamodb:GetItem and dynamodb:PutItem on their own table`, () => {
      const table = only(t, 'AWS::DynamoDB::Table', STATE_TABLE);
      for (const prefix of ['ProxyRole', 'ReplicatorRole']) {
        const st = rolePolicy(t, prefix);
        const ddb = st.filter((s) => list(s.Action).some((a) => String(a).startsWith('dynamodb:')) && s.Sid === 'StateTableItems');
        assert.equal(ddb.length, 1, prefix);
        assert.deepEqual([...list(ddb[0].Action)].sort(), ['dynamodb:GetItem', 'dynamodb:PutItem'], prefix);
        assert.deepEqual(ddb[0].Resource, { 'Fn::GetAtt': [table.id, 'Arn'] }, prefix);
        assert.equal(ddb[0].Condition, undefined, prefix);
      }
      // Nothing else in the template touches DynamoDB.
      const others = all.filter(
        (f) => f.where.startsWith(`${name}/`) && list(f.statement.Action).some((a) => String(a).startsWith('dynamodb:')),
      );
      assert.equal(others.length, 4, "the state table for proxy and replicator, this and the peer region's limits table for the proxy");
    });

    test(`${name}: only the proxy reaches the limits table, with exactly GetItem and UpdateItem`, () => {
      const table = only(t, 'AWS::DynamoDB::Table', LIMITS_TABLE);
      const proxy = rolePolicy(t, 'ProxyRole').filter((s) => s.Sid === 'LimitsTableCounters');
      assert.equal(proxy.length, 1);
      assert.deepEqual([...list(proxy[0].Action)].sort(), ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
      assert.deepEqual(proxy[0].Resource, { 'Fn::GetAtt': [table.id, 'Arn'] });
      const replicator = rolePolicy(t, 'ReplicatorRole').filter((s) => JSON.stringify(s.Resource ?? '').includes(table.id));
      assert.equal(replicator.length, 0);
    });
  }
});

describe('IAM: operator role', () => {
  const t = built.primary;
  const role = only(t, 'AWS::IAM::Role', { Properties: { RoleName: 'cognito-relay-operator-eu-west-1' } });
  const st = rolePolicy(t, 'OperatorRole');
  const q = (name: string) => ({ 'Fn::GetAtt': [only(t, 'AWS::SQS::Queue', { Properties: { QueueName: name } }).id, 'Arn'] });

  test('is assumable only by this account, with MFA', () => {
    const trust = role.props.AssumeRolePolicyDocument.Statement;
    assert.equal(trust.length, 1);
    assert.equal(trust[0].Action, 'sts:AssumeRole');
    assert.match(JSON.stringify(trust[0].Principal), /:iam::111111111111:root/);
    assert.deepEqual(trust[0].Condition, { Bool: { 'aws:MultiFactorAuthPresent': 'true' } });
  });

  test('holds exactly the redrive, queue-depth, queue-key, drain-switch, metrics, health-check and reconcile permissions (from the manifest)', () => {
    const bySid = (sid: string) => st.find((s) => s.Sid === sid);
    assert.deepEqual(st.map((s) => s.Sid).sort(), [
      'AllMetrics',
      'DrainParameter',
      'HealthChecks',
      'OwnDlq',
      'OwnFallbackQueue',
      'OwnInboundQueue',
      'OwnPool',
      'OwnQueueKey',
    ]);
    // relayctl status / failover lag check; failover/failback wait for Route 53.
    assert.equal(bySid('AllMetrics').Action, 'cloudwatch:GetMetricData');
    assert.equal(bySid('AllMetrics').Resource, '*');
    assert.equal(bySid('HealthChecks').Action, 'route53:GetHealthCheckStatus');
    assert.equal(bySid('HealthChecks').Resource, 'arn:aws:route53:::healthcheck/*');
    // reconcile / backfill repair this region's pool: no password, MFA, delete or sign-out actions.
    assert.deepEqual(bySid('OwnPool').Action, [
      'cognito-idp:AdminCreateUser',
      'cognito-idp:AdminDeleteUserAttributes',
      'cognito-idp:AdminDisableUser',
      'cognito-idp:AdminEnableUser',
      'cognito-idp:AdminGetUser',
      'cognito-idp:AdminUpdateUserAttributes',
      'cognito-idp:ListUsers',
    ]);
    // The DLQ is read and emptied; the inbound queue only receives the redriven events; the
    // fallback queue is only measured.
    assert.deepEqual(bySid('OwnDlq').Action, ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage']);
    assert.deepEqual(bySid('OwnDlq').Resource, q('cognito-relay-inbound-dlq.fifo'));
    assert.deepEqual(bySid('OwnInboundQueue').Action, ['sqs:GetQueueAttributes', 'sqs:SendMessage']);
    assert.deepEqual(bySid('OwnInboundQueue').Resource, q('cognito-relay-inbound.fifo'));
    assert.equal(bySid('OwnFallbackQueue').Action, 'sqs:GetQueueAttributes');
    assert.deepEqual(bySid('OwnFallbackQueue').Resource, q('cognito-relay-fallback.fifo'));
    const key = only(t, 'AWS::KMS::Alias', { Properties: { AliasName: 'alias/cognito-relay-queues' } });
    const kms = bySid('OwnQueueKey');
    assert.deepEqual(kms.Action, ['kms:Decrypt', 'kms:GenerateDataKey']);
    assert.deepEqual(kms.Resource, { 'Fn::GetAtt': [key.props.TargetKeyId['Fn::GetAtt'][0], 'Arn'] });
    assert.equal(kms.Condition['ForAnyValue:StringEquals']['kms:ResourceAliases'], 'alias/cognito-relay-queues');
    const param = only(t, 'AWS::SSM::Parameter', { Properties: { Name: '/cognito-relay/drain' } });
    assert.deepEqual(bySid('DrainParameter').Action, ['ssm:GetParameter', 'ssm:PutParameter']);
    assert.match(JSON.stringify(bySid('DrainParameter').Resource), new RegExp(`"Ref":"${param.id}"`));
  });
});

describe('resource policies: who may send replication events', () => {
  for (const [name, t, region] of [
    ['primary', built.primary, 'eu-west-1'],
    ['standby', built.standby, 'eu-central-1'],
  ] as const) {
    test(`${name}: the inbound queue denies SendMessage to everyone but the peer proxy, peer replicator and operator roles, and allows those`, () => {
      const inbound = only(t, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-inbound.fifo' } });
      const policy = only(t, 'AWS::SQS::QueuePolicy', { Properties: { Queues: [{ Ref: inbound.id }] } });
      const st: any[] = policy.props.PolicyDocument.Statement;
      const arn = { 'Fn::GetAtt': [inbound.id, 'Arn'] };
      assert.deepEqual(st.find((s) => s.Sid === 'DenySendExceptPeerRolesAndOperator'), {
        Sid: 'DenySendExceptPeerRolesAndOperator',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'sqs:SendMessage',
        Resource: arn,
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': SENDERS[region] } },
      });
      const allow = st.find((s) => s.Sid === 'AllowSendPeerRolesAndOperator');
      assert.equal(allow.Effect, 'Allow');
      assert.equal(allow.Action, 'sqs:SendMessage');
      assert.deepEqual(allow.Resource, arn);
      assert.match(JSON.stringify(allow.Principal), /^\{"AWS":\{"Fn::Join":\["",\["arn:",\{"Ref":"AWS::Partition"\},":iam::111111111111:root"\]\]\}\}$/);
      assert.deepEqual(allow.Condition, { ArnEquals: { 'aws:PrincipalArn': SENDERS[region] } });
      // Besides these two, only the TLS deny.
      assert.equal(st.length, 3);
      // Those role names are the ones the stacks create: the peer's proxy and replicator, this operator.
      const peer = region === 'eu-west-1' ? built.standby : built.primary;
      const names = (tt: typeof t) =>
        Object.values<any>(tt.findResources('AWS::IAM::Role')).map((r) => r.Properties.RoleName).filter(Boolean);
      for (const a of SENDERS[region]) {
        const roleName = a.split(':role/')[1];
        const where = roleName.startsWith('cognito-relay-operator') ? t : peer;
        assert.ok(names(where).includes(roleName), `${roleName} is created by the right stack`);
      }
    });

    test(`${name}: the queue key denies Encrypt/GenerateDataKey to all but the queue senders; Decrypt stays open to IAM`, () => {
      const key = only(t, 'AWS::KMS::Key', { Properties: { Description: 'cognito-relay: encrypts the replication queues' } });
      const st: any[] = key.props.KeyPolicy.Statement;
      assert.equal(st.length, 2);
      const own = [
        `arn:aws:iam::111111111111:role/cognito-relay-proxy-${region}`,
        `arn:aws:iam::111111111111:role/cognito-relay-replicator-${region}`,
      ];
      assert.deepEqual(st.find((s) => s.Sid === 'DenyEncryptExceptQueueSenders'), {
        Sid: 'DenyEncryptExceptQueueSenders',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
        Resource: '*',
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': [...SENDERS[region], ...own] } },
      });
      const deny = st.find((s) => s.Effect === 'Deny');
      assert.ok(!list(deny.Action).includes('kms:Decrypt'));
    });
  }
});

describe('IAM: replicator role', () => {
  const st = rolePolicy(built.standby, 'ReplicatorRole');

  test('holds exactly the runtime permissions (besides the replayed Cognito actions)', () => {
    const actions = st
      .flatMap((s) => list(s.Action))
      .filter((a) => !String(a).startsWith('cognito-idp:'))
      .sort();
    assert.deepEqual(actions, [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'kms:Decrypt', // own queue key (event sources)
      'kms:Decrypt', // peer queue key (forwarding)
      'kms:GenerateDataKey', // own queue key (DLQ with reason)
      'kms:GenerateDataKey', // peer queue key (forwarding)
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
      'sqs:ChangeMessageVisibility',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
      'sqs:SendMessage',
    ]);
  });

  test('only the replayed Admin actions (+ ListUsers), on its own pool', () => {
    const cog = st.filter((s) => list(s.Action).some((a) => String(a).startsWith('cognito-idp:')));
    assert.equal(cog.length, 1);
    assert.deepEqual(
      [...list(cog[0].Action)].sort(),
      REPLICATOR_COGNITO_ACTIONS.map((a) => `cognito-idp:${a}`).sort(),
    );
    assert.match(JSON.stringify(cog[0].Resource), /userpool\/eu-central-1_Standby1"/);
  });

  test('sends only to its own DLQ and the peer inbound queue, reads no other secret', () => {
    const dlq = only(built.standby, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-inbound-dlq.fifo' } });
    const send = st.filter((s) => list(s.Action).includes('sqs:SendMessage'));
    assert.equal(send.length, 2);
    assert.deepEqual(
      send.find((s) => s.Sid === 'DeadLetterWithReason').Resource,
      { 'Fn::GetAtt': [dlq.id, 'Arn'] },
    );
    const sec = st.filter((s) => list(s.Action).includes('secretsmanager:GetSecretValue'));
    assert.equal(sec.length, 1);
    assert.match(JSON.stringify(sec[0].Resource), /replication-key-\?\?\?\?\?\?/);
    assert.doesNotMatch(JSON.stringify(st), /refresh-key/, 'the replicator never reads the refresh-token keyring');
    assert.doesNotMatch(JSON.stringify(st), /bridge-key/, 'the replicator never reads the bridge keyring');
  });

  test('forwards the fallback queue: SendMessage (no "*") on the peer inbound queue ARN only', () => {
    const fwd = st.find((s) => s.Sid === 'ForwardFallbackToPeerInbound');
    assert.ok(fwd, 'forward statement');
    assert.equal(fwd.Effect, 'Allow');
    assert.deepEqual(list(fwd.Action), ['sqs:SendMessage']);
    assert.equal(fwd.Resource, 'arn:aws:sqs:eu-west-1:111111111111:cognito-relay-inbound.fifo');
    assert.equal(fwd.Condition, undefined);
    const primaryFwd = rolePolicy(built.primary, 'ReplicatorRole').find((s) => s.Sid === 'ForwardFallbackToPeerInbound');
    assert.equal(primaryFwd.Resource, 'arn:aws:sqs:eu-central-1:111111111111:cognito-relay-inbound.fifo');
  });

  test('consumes its inbound and fallback queues (event sources), nothing else', () => {
    const recv = st.filter((s) => list(s.Action).includes('sqs:ReceiveMessage'));
    const arns = recv.flatMap((s) => list(s.Resource)).map((r) => JSON.stringify(r)).sort();
    const q = (name: string) =>
      JSON.stringify({ 'Fn::GetAtt': [only(built.standby, 'AWS::SQS::Queue', { Properties: { QueueName: name } }).id, 'Arn'] });
    assert.deepEqual(arns, [q('cognito-relay-fallback.fifo'), q('cognito-relay-inbound.fifo')].sort());
    for (const s of recv) for (const a of list(s.Action)) assert.ok(!String(a).includes('*'), `action ${a}`);
  });

  test('KMS: its own queue key, and the peer queue key only by alias through SQS in the peer region', () => {
    const key = only(built.standby, 'AWS::KMS::Alias', { Properties: { AliasName: 'alias/cognito-relay-queues' } });
    const own = { 'Fn::GetAtt': [key.props.TargetKeyId['Fn::GetAtt'][0], 'Arn'] };
    const kms = st.filter((s) => list(s.Action).some((a) => String(a).startsWith('kms:')));
    const peer = kms.filter((s) => s.Sid === 'PeerQueueKeyByAlias');
    assert.equal(peer.length, 1);
    assert.deepEqual(list(peer[0].Action).sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    assert.equal(peer[0].Resource, 'arn:aws:kms:eu-west-1:111111111111:key/*');
    assert.deepEqual(peer[0].Condition, {
      'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/cognito-relay-queues' },
      StringEquals: { 'kms:ViaService': 'sqs.eu-west-1.amazonaws.com' },
    });
    const rest = kms.filter((s) => s !== peer[0]);
    assert.deepEqual([...new Set(rest.flatMap((s) => list(s.Action)))].sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    for (const s of rest) assert.deepEqual(s.Resource, own);
  });
});
