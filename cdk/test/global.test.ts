import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build, only } from './helpers';

const { relay, global, primary, standby } = build();

describe('global stack', () => {
  test('deploys in us-east-1 after both regions, without cross-stack references', () => {
    assert.equal(relay.global.region, 'us-east-1');
    const deps = relay.global.dependencies.map((s) => s.stackName).sort();
    assert.deepEqual(deps, ['CognitoRelay-eu-central-1', 'CognitoRelay-eu-west-1']);
    for (const t of [global, primary, standby]) {
      const text = JSON.stringify(t.toJSON());
      assert.ok(!text.includes('Fn::ImportValue'), 'no Fn::ImportValue');
    }
    assert.equal(Object.keys(primary.toJSON().Outputs ?? {}).some((k) => k.startsWith('ExportsOutput')), false);
  });

  for (const [region, id] of [
    ['eu-west-1', 'Primary'],
    ['eu-central-1', 'Standby'],
  ]) {
    test(`HTTPS health check on auth-${region}/health every 10 s, threshold 3`, () => {
      global.hasResourceProperties('AWS::Route53::HealthCheck', {
        HealthCheckConfig: {
          Type: 'HTTPS',
          FullyQualifiedDomainName: `auth-${region}.example.com`,
          Port: 443,
          ResourcePath: '/health',
          RequestInterval: 10,
          FailureThreshold: 3,
          EnableSNI: true,
        },
      });
    });

    test(`${id === 'Primary' ? 'PRIMARY' : 'SECONDARY'} failover record for ${region} with its health check`, () => {
      const hc = only(global, 'AWS::Route53::HealthCheck', {
        Properties: { HealthCheckConfig: { FullyQualifiedDomainName: `auth-${region}.example.com` } },
      });
      const rec = only(global, 'AWS::Route53::RecordSet', {
        Properties: { SetIdentifier: `cognito-relay-${region}` },
      });
      assert.equal(rec.props.Name, 'auth.example.com.');
      assert.equal(rec.props.Type, 'A');
      assert.equal(rec.props.Failover, id === 'Primary' ? 'PRIMARY' : 'SECONDARY');
      assert.deepEqual(rec.props.HealthCheckId, { Ref: hc.id });
      assert.deepEqual(rec.props.AliasTarget, {
        DNSName: `auth-origin-${region}.example.com`,
        HostedZoneId: 'Z0123456789EXAMPLE',
        EvaluateTargetHealth: true,
      });
    });

    test(`alarm on the ${region} health check`, () => {
      const hc = only(global, 'AWS::Route53::HealthCheck', {
        Properties: { HealthCheckConfig: { FullyQualifiedDomainName: `auth-${region}.example.com` } },
      });
      global.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Route53',
        MetricName: 'HealthCheckStatus',
        Dimensions: [{ Name: 'HealthCheckId', Value: { Ref: hc.id } }],
        ComparisonOperator: 'LessThanThreshold',
        Threshold: 1,
      });
    });
  }

  test('the health-check alarms do not page before their first datapoint (missing data is not breaching)', () => {
    const alarms = Object.values<any>(global.findResources('AWS::CloudWatch::Alarm'));
    assert.equal(alarms.length, 2);
    for (const a of alarms) assert.equal(a.Properties.TreatMissingData, 'notBreaching', a.Properties.AlarmName);
  });

  test("outputs each region's health-check id (relayctl's health_check_id)", () => {
    const out = global.toJSON().Outputs;
    for (const [region, id] of [
      ['eu-west-1', 'Primary'],
      ['eu-central-1', 'Standby'],
    ]) {
      const hc = only(global, 'AWS::Route53::HealthCheck', {
        Properties: { HealthCheckConfig: { FullyQualifiedDomainName: `auth-${region}.example.com` } },
      });
      assert.deepEqual(out[`${id}HealthCheckId`].Value, { Ref: hc.id });
      assert.match(out[`${id}HealthCheckId`].Description, new RegExp(region));
    }
  });

  test('exactly two failover records and two health checks', () => {
    global.resourceCountIs('AWS::Route53::RecordSet', 2);
    global.resourceCountIs('AWS::Route53::HealthCheck', 2);
  });

  test('health-check alarms notify the e-mail subscription', () => {
    global.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    for (const a of Object.values(global.findResources('AWS::CloudWatch::Alarm'))) {
      assert.equal(a.Properties.AlarmActions.length, 1);
    }
  });

  test('outputs: global endpoint and ready-to-paste client configuration', () => {
    const out = global.toJSON().Outputs;
    assert.equal(out.GlobalEndpoint.Value, 'https://auth.example.com');
    const amplify = JSON.parse(out.AmplifyConfig.Value);
    assert.deepEqual(amplify.Auth.Cognito, {
      userPoolId: 'eu-west-1_Primary01',
      userPoolClientId: '1example23456789publicclient',
      userPoolEndpoint: 'https://auth.example.com',
      loginWith: { email: true },
    });
    assert.match(out.AwsSdkConfig.Value, /endpoint: 'https:\/\/auth\.example\.com'/);
    assert.match(out.AwsSdkConfig.Value, /1example23456789publicclient/);
  });
});
