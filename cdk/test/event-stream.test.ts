import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build, lambdaEnv, only } from './helpers';
import { exampleConfig, validateConfig } from '../lib/config';

const { primary, standby } = build();

describe('event stream and sign-up policy (regional)', () => {
  test('each region creates its bus and the proxy publishes to it', () => {
    for (const [t, region] of [[primary, 'eu-west-1'], [standby, 'eu-central-1']] as const) {
      const bus = only(t, 'AWS::Events::EventBus');
      assert.equal(bus.props.Name, `cognito-relay-events-${region}`);
      const env = lambdaEnv(t, 'cognito-relay-proxy');
      assert.deepEqual(env.RELAY_EVENTS_BUS, { Ref: bus.id });
      assert.equal(env.RELAY_EVENTS_USER, 'hash');
      assert.equal(env.RELAY_EVENTS_FLUSH_MS, '200');
      assert.equal(env.RELAY_POLICY, 'ssm:/cognito-relay/sign-up-policy');
    }
    const statements = Object.values(primary.findResources('AWS::IAM::Policy')).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    const put = statements.find((s: any) => s.Action === 'events:PutEvents');
    assert.ok(put, 'the proxy may put events');
    assert.deepEqual(put.Resource, { 'Fn::GetAtt': [only(primary, 'AWS::Events::EventBus').id, 'Arn'] });
    assert.ok(statements.some((s: any) => [s.Action].flat().includes('ssm:GetParameter')), 'the proxy may read the policy');
  });

  test('an example rule sends policy refusals to a queue with a DLQ', () => {
    const rule = only(primary, 'AWS::Events::Rule');
    assert.deepEqual(rule.props.EventPattern.source, ['cognito-relay.proxy']);
    assert.deepEqual(rule.props.EventPattern.detail.outcome, ['relay_refused']);
    assert.equal(rule.props.Targets.length, 1);
    assert.ok(rule.props.Targets[0].DeadLetterConfig, 'failed deliveries land in a DLQ');
  });

  test('drops are alarmed', () => {
    const a = only(primary, 'AWS::CloudWatch::Alarm', { Properties: { AlarmName: 'cognito-relay-eu-west-1-EventsDropped' } }).props;
    assert.equal(a.MetricName, 'EventsDropped');
    assert.equal(a.Namespace, 'CognitoRelay');
    assert.equal(a.Threshold, 0);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
  });

  test('the policy document is kept in SSM as configured', () => {
    const p = only(primary, 'AWS::SSM::Parameter', { Properties: { Name: '/cognito-relay/sign-up-policy' } });
    assert.deepEqual(JSON.parse(p.props.Value), JSON.parse(exampleConfig.signUpPolicy));
  });

  test('an existing bus can be used instead', () => {
    const arn = 'arn:aws:events:eu-west-1:111111111111:event-bus/shared';
    const t = build({ ...exampleConfig, eventStream: { ...exampleConfig.eventStream, existingBusArn: arn } }).primary;
    assert.equal(Object.keys(t.findResources('AWS::Events::EventBus')).length, 0);
    assert.equal(lambdaEnv(t, 'cognito-relay-proxy').RELAY_EVENTS_BUS, 'shared');
  });

  test('bad settings fail before deploy', () => {
    assert.throws(() => validateConfig({ ...exampleConfig, signUpPolicy: '{nope' }), /signUpPolicy/);
    assert.throws(() => validateConfig({ ...exampleConfig, eventStream: { user: 'hash', lambdaFlushMs: -1 } }), /lambdaFlushMs/);
    assert.throws(() => validateConfig({ ...exampleConfig, eventStream: { user: 'hash', lambdaFlushMs: 200, existingBusArn: 'shared' } }), /existingBusArn/);
  });
});
