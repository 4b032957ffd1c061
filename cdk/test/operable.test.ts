import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exampleConfig } from '../lib/config';
import { COUNT_ONLY_BODY_RULES } from '../lib/construct/waf';
import { build, lambdaEnv, only } from './helpers';

/**
 * What an on-call relies on (issue 11, points 3 and 6): retention on every log group, reserved
 * concurrency, alarms that do not page on one blip, WAF managed rules that leave the Cognito JSON
 * API alone, a dashboard with both directions, and the bridge's trigger Lambda.
 */
const built = build();
const regional = [
  ['primary', built.primary, 'eu-west-1', 'eu-central-1'],
  ['standby', built.standby, 'eu-central-1', 'eu-west-1'],
] as const;

describe('logs', () => {
  for (const [name, t] of regional) {
    test(`${name}: every log group has a retention`, () => {
      const groups = Object.entries<any>(t.findResources('AWS::Logs::LogGroup'));
      assert.ok(groups.length >= 7, `found ${groups.length}`);
      for (const [id, g] of groups) assert.equal(g.Properties.RetentionInDays, 30, id);
    });

    test(`${name}: every Lambda function (the custom-resource provider too) logs to a group of this stack`, () => {
      const groups = new Set(Object.keys(t.findResources('AWS::Logs::LogGroup')));
      const fns = Object.entries<any>(t.findResources('AWS::Lambda::Function'));
      assert.equal(fns.length, 4, 'proxy, replicator, auth-trigger, custom-resource provider');
      for (const [id, f] of fns) {
        const ref = f.Properties.LoggingConfig?.LogGroup?.Ref;
        assert.ok(ref && groups.has(ref), `${id} logs to ${JSON.stringify(f.Properties.LoggingConfig)}`);
      }
    });

    test(`${name}: API Gateway execution logs go to a group with retention, named by API Gateway's rule`, () => {
      const api = only(t, 'AWS::ApiGateway::RestApi');
      const g = Object.values<any>(t.findResources('AWS::Logs::LogGroup')).find((x) =>
        JSON.stringify(x.Properties.LogGroupName ?? '').includes('API-Gateway-Execution-Logs_'),
      );
      assert.ok(g);
      assert.deepEqual(g.Properties.LogGroupName, { 'Fn::Join': ['', ['API-Gateway-Execution-Logs_', { Ref: api.id }, '/prod']] });
    });
  }
});

describe('concurrency', () => {
  const fn = (t: typeof built.primary, name: string) =>
    only(t, 'AWS::Lambda::Function', { Properties: { FunctionName: name } }).props;

  test('by default nothing is reserved (a fresh account with a concurrency quota of 10 can deploy)', () => {
    assert.equal(exampleConfig.replicatorReservedConcurrency, 0);
    for (const [, t] of regional) {
      assert.equal(fn(t, 'cognito-relay-replicator').ReservedConcurrentExecutions, undefined);
      assert.equal(fn(t, 'cognito-relay-proxy').ReservedConcurrentExecutions, undefined);
    }
  });

  test('replicatorReservedConcurrency reserves that much for the replicator (a proxy flood cannot starve it), never for the proxy', () => {
    const b = build({ ...exampleConfig, replicatorReservedConcurrency: 5 });
    const rep = fn(b.primary, 'cognito-relay-replicator');
    assert.equal(rep.ReservedConcurrentExecutions, 5);
    // Two event sources at the service minimum of 2 concurrent batches fit inside it.
    const maps = Object.values<any>(b.primary.findResources('AWS::Lambda::EventSourceMapping'));
    const sum = maps.reduce((n, m) => n + m.Properties.ScalingConfig.MaximumConcurrency, 0);
    assert.ok(sum <= rep.ReservedConcurrentExecutions, `${sum} batches > reserved`);
    assert.equal(fn(b.primary, 'cognito-relay-proxy').ReservedConcurrentExecutions, undefined);
    const throttled = Object.values<any>(b.primary.findResources('AWS::CloudWatch::Alarm')).find((a) =>
      a.Properties.AlarmName.endsWith('-ReplicatorThrottled'),
    );
    assert.match(throttled.Properties.AlarmDescription, /reserved concurrency \(5\)/);
  });

  test('a reservation below the two event sources x 2, negative or fractional, is refused at synth', () => {
    for (const bad of [1, 3, -1, 4.5]) {
      assert.throws(() => build({ ...exampleConfig, replicatorReservedConcurrency: bad }), /replicatorReservedConcurrency must be 0/);
    }
  });
});

describe('alarms', () => {
  const alarms = Object.values<any>(built.primary.findResources('AWS::CloudWatch::Alarm'));
  const byName = (id: string) => alarms.find((a) => a.Properties.AlarmName === `cognito-relay-eu-west-1-${id}`)?.Properties;

  test('CognitoThrottling reads the dimensionless CognitoThrottled series (proxy and replicator), 3 of 5 minutes', () => {
    const a = byName('CognitoThrottling');
    assert.equal(a.Namespace, 'CognitoRelay');
    assert.equal(a.MetricName, 'CognitoThrottled');
    assert.equal(a.Dimensions, undefined);
    assert.equal(a.Statistic, 'Sum');
    assert.equal(a.Period, 60);
    assert.equal(a.EvaluationPeriods, 5);
    assert.equal(a.DatapointsToAlarm, 3);
  });

  test('every alarm is M-of-N except those where a single datapoint is already a real loss (or a long wait)', () => {
    // ReplicatorWaiting: its value is the seconds a dependency has been unreachable, so one
    // datapoint over 5 minutes is already an outage.
    const single = new Set(['DlqNotEmpty', 'ReplicationLost', 'ReplicatorWaiting']);
    assert.equal(alarms.length, 14);
    for (const a of alarms) {
      const id = a.Properties.AlarmName.replace('cognito-relay-eu-west-1-', '');
      if (single.has(id)) {
        assert.equal(a.Properties.DatapointsToAlarm ?? a.Properties.EvaluationPeriods, 1, id);
      } else {
        assert.ok(a.Properties.EvaluationPeriods >= 3 && a.Properties.DatapointsToAlarm >= 2, `${id} pages on one blip`);
        assert.ok(a.Properties.DatapointsToAlarm < a.Properties.EvaluationPeriods, id);
      }
      assert.equal(a.Properties.TreatMissingData, 'notBreaching', id);
      // A query alarm carries its period on the query.
      const period = a.Properties.Period ?? a.Properties.Metrics?.find((m: any) => m.ReturnData !== false)?.Period;
      assert.equal(period, 60, `${id}: minutes, so "3 of 5" means 3 of the last 5 minutes`);
    }
  });

  test('the replicator hitting its reserved concurrency is alarmed', () => {
    const a = byName('ReplicatorThrottled');
    assert.equal(a.MetricName, 'Throttles');
    assert.equal(a.Namespace, 'AWS/Lambda');
  });
});

describe('WAF', () => {
  for (const [name, t] of regional) {
    const acl = only(t, 'AWS::WAFv2::WebACL').props;
    const groups = acl.Rules.filter((r: any) => r.Statement.ManagedRuleGroupStatement);

    test(`${name}: AWS managed rule groups after the own rules; body rules only count; no SQLi set`, () => {
      assert.deepEqual(
        groups.map((r: any) => r.Statement.ManagedRuleGroupStatement.Name),
        ['AWSManagedRulesAmazonIpReputationList', 'AWSManagedRulesCommonRuleSet', 'AWSManagedRulesKnownBadInputsRuleSet'],
      );
      for (const g of groups) assert.ok(g.Priority > 2, 'after deny, allow and rate rules');
      const crs = groups.find((r: any) => r.Statement.ManagedRuleGroupStatement.Name === 'AWSManagedRulesCommonRuleSet');
      const overrides = crs.Statement.ManagedRuleGroupStatement.RuleActionOverrides;
      assert.deepEqual(
        overrides.map((o: any) => o.Name).sort(),
        [...COUNT_ONLY_BODY_RULES].sort(),
      );
      for (const o of overrides) assert.deepEqual(o.ActionToUse, { Count: {} });
      assert.ok(!JSON.stringify(acl).includes('SQLi'));
    });

    test(`${name}: WAF logs to a retained group named aws-waf-logs-... unique per stack instance, auth headers redacted`, () => {
      const cfg = only(t, 'AWS::WAFv2::LoggingConfiguration').props;
      assert.deepEqual(cfg.RedactedFields, [{ SingleHeader: { Name: 'authorization' } }, { SingleHeader: { Name: 'cookie' } }]);
      const g = Object.values<any>(t.findResources('AWS::Logs::LogGroup')).find((x) =>
        JSON.stringify(x.Properties.LogGroupName ?? '').includes('aws-waf-logs-'),
      );
      assert.ok(g);
      assert.match(JSON.stringify(g.Properties.LogGroupName), /AWS::StackId/);
      assert.equal(g.DeletionPolicy, 'RetainExceptOnCreate');
    });
  }
});

describe('dashboard', () => {
  for (const [name, t, region, peer] of regional) {
    test(`${name}: both directions' lag, fallback sent/forwarded, DLQ and throttles of both regions, bridge metrics`, () => {
      const body = JSON.stringify(only(t, 'AWS::CloudWatch::Dashboard').props.DashboardBody);
      for (const r of [region, peer]) {
        assert.ok(body.includes(`into ${r}`), `lag into ${r}`);
        assert.ok(body.includes(`DLQ ${r}`), `DLQ ${r}`);
        assert.ok(body.includes(`throttled ${r}`), `throttled ${r}`);
        assert.ok(body.includes(`retries ${r}`), `retries ${r}`);
      }
      assert.match(body, /cognito-relay-inbound-dlq\.fifo/);
      assert.match(body, /NumberOfMessagesDeleted/);
      assert.match(body, /ReplicationFallback/);
      for (const m of ['BridgeSrpSignIns', 'BridgeRefreshes', 'BridgeRefusals']) assert.ok(body.includes(m), m);
      assert.match(body, /\{CognitoRelay,Reason\}/);
    });
  }
});

describe('bridge (issue 10)', () => {
  for (const [name, t, region] of regional) {
    test(`${name}: the auth-trigger Lambda reads its region's bridge key, Cognito of this pool may invoke it`, () => {
      const env = lambdaEnv(t, 'cognito-relay-auth-trigger');
      assert.equal(env.RELAY_BRIDGE_KEY_SECRET_ID, 'cognito-relay/bridge-key');
      const client = only(t, 'AWS::Cognito::UserPoolClient');
      assert.deepEqual(env.RELAY_TRIGGER_CLIENT_IDS, { Ref: client.id }, 'it acts only for the relay\'s own client');
      const perm = only(t, 'AWS::Lambda::Permission', { Properties: { Principal: 'cognito-idp.amazonaws.com' } }).props;
      assert.equal(perm.Action, 'lambda:InvokeFunction');
      assert.match(JSON.stringify(perm.SourceArn), new RegExp(`userpool/${region}_`));
      assert.equal(perm.SourceAccount, '111111111111');
    });

    test(`${name}: the proxy knows the app pool (the primary's) and the bridge key; its client allows CUSTOM_AUTH`, () => {
      const env = lambdaEnv(t, 'cognito-relay-proxy');
      assert.equal(env.RELAY_APP_USER_POOL_ID, exampleConfig.primary.userPoolId);
      assert.equal(env.RELAY_BRIDGE_KEY_SECRET_ID, 'cognito-relay/bridge-key');
      const client = only(t, 'AWS::Cognito::UserPoolClient').props;
      assert.ok(client.ExplicitAuthFlows.includes('ALLOW_CUSTOM_AUTH'));
    });

    test(`${name}: without requireTriggersAttached there is no attach check (first deploy)`, () => {
      assert.equal(Object.keys(t.findResources('AWS::SSM::Parameter', { Properties: { AllowedPattern: {} } })).length, 0);
    });
  }

  test('with requireTriggersAttached the deploy fails unless the pool uses this function for all three triggers', () => {
    const b = build({ ...exampleConfig, bridge: { requireTriggersAttached: true } });
    const cr = Object.values<any>(b.primary.findResources('Custom::AWS'));
    assert.equal(cr.length, 1);
    const create = JSON.stringify(cr[0].Properties.Create);
    assert.match(create, /describeUserPool/);
    assert.match(create, /eu-west-1_Primary01/);
    for (const k of ['DefineAuthChallenge', 'CreateAuthChallenge', 'VerifyAuthChallengeResponse']) assert.match(create, new RegExp(k));
    const p = Object.values<any>(b.primary.findResources('AWS::SSM::Parameter')).find((x) => x.Properties.AllowedPattern);
    const arn = 'arn:aws:lambda:eu-west-1:111111111111:function:cognito-relay-auth-trigger'.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.equal(p.Properties.AllowedPattern, `^${arn},${arn},${arn}$`);
    const re = new RegExp(p.Properties.AllowedPattern);
    const fn = 'arn:aws:lambda:eu-west-1:111111111111:function:cognito-relay-auth-trigger';
    assert.ok(re.test(`${fn},${fn},${fn}`));
    assert.ok(!re.test(`${fn},arn:aws:lambda:eu-west-1:111111111111:function:other,${fn}`));
    assert.match(JSON.stringify(p.Properties.Value), /Fn::GetAtt/);
  });
});
