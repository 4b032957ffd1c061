import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { CDK_ROOT } from '../lib/config';
import { build, only } from './helpers';

const { primary } = build();

function alarm(t: Template, name: string): any {
  return only(t, 'AWS::CloudWatch::Alarm', { Properties: { AlarmName: `cognito-relay-eu-west-1-${name}` } }).props;
}

/** The dashboard body as text, with CloudFormation references rendered as JSON. */
function dashboardBody(t: Template): string {
  const d = only(t, 'AWS::CloudWatch::Dashboard');
  const body = d.props.DashboardBody;
  if (typeof body === 'string') return body;
  return body['Fn::Join'][1].map((p: unknown) => (typeof p === 'string' ? p : JSON.stringify(p))).join('');
}

describe('alarms (regional)', () => {
  test('each alarm notifies the SNS topic (alarm and OK)', () => {
    const topic = only(primary, 'AWS::SNS::Topic');
    const alarms = Object.values(primary.findResources('AWS::CloudWatch::Alarm'));
    assert.ok(alarms.length >= 7);
    for (const a of alarms) {
      assert.deepEqual(a.Properties.AlarmActions, [{ Ref: topic.id }]);
      assert.deepEqual(a.Properties.OKActions, [{ Ref: topic.id }]);
    }
    primary.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    assert.ok(topic.props.KmsMasterKeyId, 'topic encrypted');
  });

  test('DLQ not empty', () => {
    const dlq = only(primary, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-inbound-dlq.fifo' } });
    const a = alarm(primary, 'DlqNotEmpty');
    assert.equal(a.MetricName, 'ApproximateNumberOfMessagesVisible');
    assert.deepEqual(a.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq.id, 'QueueName'] } }]);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(a.Threshold, 0);
  });

  test('replication lag above the configured threshold (p99), and oldest inbound event', () => {
    const a = alarm(primary, 'ReplicationLagHigh');
    assert.equal(a.Namespace, 'CognitoRelay');
    assert.equal(a.MetricName, 'ReplicationLagMs');
    assert.equal(a.ExtendedStatistic, 'p99');
    assert.equal(a.Threshold, 60000);
    assert.equal(a.Dimensions, undefined, 'dimension-less aggregate');
    const b = alarm(primary, 'InboundBacklogOld');
    assert.equal(b.MetricName, 'ApproximateAgeOfOldestMessage');
    assert.equal(b.Threshold, 60);
  });

  test('any lost replication event', () => {
    const a = alarm(primary, 'ReplicationLost');
    assert.equal(a.Namespace, 'CognitoRelay');
    assert.equal(a.MetricName, 'ReplicationLost');
    assert.equal(a.Statistic, 'Sum');
    assert.equal(a.Threshold, 1);
    assert.equal(a.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(a.TreatMissingData, 'notBreaching');
  });

  test('proxy 5xx rate', () => {
    const a = alarm(primary, 'Proxy5xxRate');
    assert.equal(a.Namespace, 'AWS/ApiGateway');
    assert.equal(a.MetricName, '5XXError');
    assert.equal(a.Statistic, 'Average');
    assert.equal(a.Threshold, 0.05);
  });

  test('Cognito throttling', () => {
    const a = alarm(primary, 'CognitoThrottling');
    assert.equal(a.Namespace, 'CognitoRelay');
    assert.equal(a.MetricName, 'CognitoThrottled');
    assert.equal(a.Threshold, 0);
  });

  test('fallback queue backlog (peer unreachable)', () => {
    const fb = only(primary, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-fallback.fifo' } });
    const a = alarm(primary, 'FallbackBacklogOld');
    assert.deepEqual(a.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [fb.id, 'QueueName'] } }]);
    assert.match(a.AlarmDescription, /replicator forwards the fallback queue/);
  });
});

describe('alarms on waiting and on the bridge trigger (issue 21 point 5)', () => {
  test('ReplicatorWaiting: the longest DependencyWaitingSeconds of any Dependency above 5 minutes', () => {
    const a = alarm(primary, 'ReplicatorWaiting');
    assert.equal(a.MetricName, undefined, 'a query, not one series');
    assert.equal(a.Metrics.length, 1);
    assert.equal(a.Metrics[0].Expression, 'SELECT MAX(DependencyWaitingSeconds) FROM SCHEMA("CognitoRelay", Dependency)');
    assert.equal(a.Metrics[0].Period, 60);
    assert.equal(a.Threshold, 300);
    assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(a.DatapointsToAlarm, 1);
    assert.equal(a.EvaluationPeriods, 10, 'stays up between two batches (6-minute visibility timeout)');
    assert.equal(a.TreatMissingData, 'notBreaching');
  });

  test('the name, namespace and dimension set are the ones the replicator writes (crates/, read only)', () => {
    const root = path.join(CDK_ROOT, '..');
    const telemetry = fs.readFileSync(path.join(root, 'crates/aws/src/telemetry.rs'), 'utf8');
    assert.match(telemetry, /DEPENDENCY_WAITING_SECONDS: &str = "DependencyWaitingSeconds"/);
    assert.match(telemetry, /NAMESPACE: &str = "CognitoRelay"/);
    const replicator = fs.readFileSync(path.join(root, 'crates/replicator/src/lib.rs'), 'utf8');
    const emf = replicator.slice(replicator.indexOf('pub fn emf_waiting'));
    assert.match(emf.slice(0, 400), /Emf::new\(&\[&\["Dependency"\]\]\)/);
  });

  test('auth-trigger Lambda: errors, p99 duration above 4 s (Cognito allows 5 s), throttles', () => {
    const fn = only(primary, 'AWS::Lambda::Function', { Properties: { FunctionName: 'cognito-relay-auth-trigger' } });
    const dims = [{ Name: 'FunctionName', Value: { Ref: fn.id } }];
    const errors = alarm(primary, 'AuthTriggerErrors');
    assert.equal(errors.Namespace, 'AWS/Lambda');
    assert.equal(errors.MetricName, 'Errors');
    assert.deepEqual(errors.Dimensions, dims);
    assert.equal(errors.Statistic, 'Sum');
    assert.equal(errors.Threshold, 0);
    const slow = alarm(primary, 'AuthTriggerSlow');
    assert.equal(slow.MetricName, 'Duration');
    assert.deepEqual(slow.Dimensions, dims);
    assert.equal(slow.ExtendedStatistic, 'p99');
    assert.equal(slow.Threshold, 4000);
    assert.equal(slow.ComparisonOperator, 'GreaterThanThreshold');
    const throttled = alarm(primary, 'AuthTriggerThrottled');
    assert.equal(throttled.MetricName, 'Throttles');
    assert.deepEqual(throttled.Dimensions, dims);
    for (const a of [errors, slow, throttled]) assert.equal(a.TreatMissingData, 'notBreaching');
    // Where the on-call reads why (runbooks/README.md): the trigger's log group is an output.
    assert.deepEqual(primary.toJSON().Outputs.AuthTriggerLogGroup.Value, fn.props.LoggingConfig.LogGroup);
  });
});

describe('dashboard (regional)', () => {
  const body = dashboardBody(primary);
  const widgets: any[] = JSON.parse(body.replace(/\{"(Ref|Fn::GetAtt)":[^}]*\}/g, 'X')).widgets;
  const titled = (title: string) => {
    const w = widgets.find((x) => x.properties?.title === title);
    assert.ok(w, `widget ${title}`);
    return JSON.stringify(w.properties);
  };

  test('is named per region', () => {
    only(primary, 'AWS::CloudWatch::Dashboard', { Properties: { DashboardName: 'cognito-relay-eu-west-1' } });
  });

  test('replication lag p99 of both directions, side by side (each read in the region that applies it)', () => {
    const w = titled('Replication lag p99 (ms): eu-central-1 -> eu-west-1 | eu-west-1 -> eu-central-1');
    assert.match(w, /"CognitoRelay","ReplicationLagMs",\{[^}]*"region":"eu-west-1"[^}]*"stat":"p99"|"CognitoRelay","ReplicationLagMs",\{[^}]*"stat":"p99"[^}]*"region":"eu-west-1"/);
    assert.match(w, /"CognitoRelay","ReplicationLagMs",\{[^}]*"region":"eu-central-1"[^}]*"stat":"p99"|"CognitoRelay","ReplicationLagMs",\{[^}]*"stat":"p99"[^}]*"region":"eu-central-1"/);
  });

  test('backlog, oldest event age and DLQ depth', () => {
    assert.match(titled('Backlog (messages visible)'), /ApproximateNumberOfMessagesVisible/);
    assert.match(titled('Oldest event age (s)'), /ApproximateAgeOfOldestMessage/);
    const dlq = titled('DLQ depth: eu-west-1 | eu-central-1');
    assert.match(dlq, /ApproximateNumberOfMessagesVisible/);
    assert.match(dlq, /"QueueName","cognito-relay-inbound-dlq.fifo",\{[^}]*"region":"eu-central-1"/);
  });

  test('applied / failed per action and proxy requests / latency / errors per action', () => {
    for (const [title, metric] of [
      ['Replication applied per action', 'ReplicationApplied'],
      ['Replication failed per action', 'ReplicationFailed'],
      ['Proxy requests per action', 'ProxyRequests'],
      ['Proxy latency p99 per action (ms)', 'ProxyLatencyMs'],
      ['Proxy errors per action', 'ProxyErrors'],
    ]) {
      const w = titled(title);
      assert.ok(w.includes(`SEARCH('{CognitoRelay,Action} MetricName=\\"${metric}\\"'`), `${title}: ${w}`);
    }
  });

  test('health check status from us-east-1', () => {
    const w = titled('Route 53 health checks (1 = healthy)');
    assert.match(w, /HealthCheckStatus/);
    assert.match(w, /"region":"us-east-1"/);
  });

  test('dependency waits (per Dependency) and the auth trigger, with their alarm thresholds', () => {
    const waiting = titled('Waiting for a dependency (s, per Dependency)');
    assert.ok(waiting.includes(`SEARCH('{CognitoRelay,Dependency} MetricName=\\"DependencyWaitingSeconds\\"'`), waiting);
    assert.match(waiting, /"value":300/);
    const trigger = titled('Auth trigger: errors, throttles | duration p99 (ms)');
    for (const m of ['"Errors"', '"Throttles"', '"Duration"']) assert.ok(trigger.includes(m), m);
    assert.match(trigger, /"value":4000/);
    assert.match(trigger, /"value":5000/);
  });

  test('lists the alarms', () => {
    const w = widgets.find((x) => x.type === 'alarm');
    assert.ok(w);
    assert.ok(w.properties.alarms.length >= 7);
  });
});
