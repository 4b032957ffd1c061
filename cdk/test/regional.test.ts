import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { exampleConfig } from '../lib/config';
import { build, lambdaEnv, LIMITS_TABLE, only, STATE_TABLE } from './helpers';

const { primary, standby } = build();

describe('Lambda functions', () => {
  for (const name of ['cognito-relay-proxy', 'cognito-relay-replicator']) {
    test(`${name} runs on provided.al2023 / arm64 with handler bootstrap`, () => {
      primary.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: name,
        Runtime: 'provided.al2023',
        Architectures: ['arm64'],
        Handler: 'bootstrap',
      });
    });
  }

  test('proxy environment follows the runtime contract', () => {
    const env = lambdaEnv(primary, 'cognito-relay-proxy');
    assert.equal(env.AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH, 'true');
    assert.equal(env.RELAY_REGION, 'eu-west-1');
    assert.equal(env.RELAY_PEER_REGION, 'eu-central-1');
    assert.equal(env.RELAY_USER_POOL_ID, 'eu-west-1_Primary01');
    assert.equal(env.RELAY_PEER_USER_POOL_ID, 'eu-central-1_Standby1');
    assert.equal(env.RELAY_USERNAME_ATTRIBUTES, 'email');
    assert.equal(env.RELAY_CLIENTS_SECRET_ID, 'cognito-relay/clients');
    assert.equal(env.RELAY_REPLICATION_KEY_SECRET_ID, 'cognito-relay/replication-key');
    assert.equal(env.RELAY_REFRESH_KEY_SECRET_ID, 'cognito-relay/refresh-key');
    assert.deepEqual(env.RELAY_STATE_TABLE, { Ref: only(primary, 'AWS::DynamoDB::Table', STATE_TABLE).id });
    assert.equal(
      env.RELAY_PEER_QUEUE_URL,
      'https://sqs.eu-central-1.amazonaws.com/111111111111/cognito-relay-inbound.fifo',
    );
    assert.ok(env.RELAY_FALLBACK_QUEUE_URL, 'fallback queue url');
    assert.equal(env.RELAY_DRAIN_PARAMETER, '/cognito-relay/drain');
    assert.equal(env.RELAY_CORS_ORIGINS, '*');
    assert.equal(env.RELAY_RATE_PER_IP, '120');
    assert.equal(env.RELAY_RATE_PER_USERNAME, '30');
    assert.equal(env.RUST_LOG, 'info');
  });

  test('the standby proxy sends to the primary inbound queue', () => {
    const env = lambdaEnv(standby, 'cognito-relay-proxy');
    assert.equal(env.RELAY_REGION, 'eu-central-1');
    assert.equal(env.RELAY_PEER_REGION, 'eu-west-1');
    assert.equal(env.RELAY_USER_POOL_ID, 'eu-central-1_Standby1');
    assert.equal(env.RELAY_PEER_USER_POOL_ID, 'eu-west-1_Primary01');
    assert.deepEqual(env.RELAY_STATE_TABLE, { Ref: only(standby, 'AWS::DynamoDB::Table', STATE_TABLE).id });
    assert.equal(
      env.RELAY_PEER_QUEUE_URL,
      'https://sqs.eu-west-1.amazonaws.com/111111111111/cognito-relay-inbound.fifo',
    );
  });

  test('replicator environment follows the runtime contract', () => {
    const env = lambdaEnv(standby, 'cognito-relay-replicator');
    const dlq = only(standby, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-inbound-dlq.fifo' } });
    const fb = only(standby, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-fallback.fifo' } });
    const table = only(standby, 'AWS::DynamoDB::Table', STATE_TABLE);
    assert.deepEqual(env, {
      RELAY_DLQ_URL: { Ref: dlq.id },
      RELAY_MAX_RECEIVES: '5',
      RELAY_MAX_DELIVERIES: '40',
      RELAY_STATE_TABLE: { Ref: table.id },
      RELAY_PEER_USER_POOL_ID: 'eu-west-1_Primary01',
      RELAY_FALLBACK_QUEUE_URL: { Ref: fb.id },
      RELAY_PEER_REGION: 'eu-west-1',
      RELAY_PEER_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/111111111111/cognito-relay-inbound.fifo',
      RELAY_REGION: 'eu-central-1',
      RELAY_USER_POOL_ID: 'eu-central-1_Standby1',
      RELAY_USERNAME_ATTRIBUTES: 'email',
      RELAY_REPLICATION_KEY_SECRET_ID: 'cognito-relay/replication-key',
      RELAY_QUOTA_USER_CREATION: '50',
      RELAY_QUOTA_USER_UPDATE: '25',
      RELAY_QUOTA_USER_AUTHENTICATION: '120',
      RELAY_QUOTA_USER_ACCOUNT_RECOVERY: '30',
      RUST_LOG: 'info',
    });
    // The replicator never gets the refresh-token keyring.
    assert.equal((env as any).RELAY_REFRESH_KEY_SECRET_ID, undefined);
  });

  test('RELAY_ORIGIN_SUB_ATTRIBUTE is set only when configured', () => {
    const { primary: p } = build({ ...exampleConfig, originSubAttribute: 'custom:origin_sub' });
    assert.equal(lambdaEnv(p, 'cognito-relay-replicator').RELAY_ORIGIN_SUB_ATTRIBUTE, 'custom:origin_sub');
  });

  test('log groups have a retention', () => {
    const groups = primary.findResources('AWS::Logs::LogGroup');
    assert.ok(Object.keys(groups).length >= 3);
    for (const [id, g] of Object.entries(groups)) {
      assert.equal(g.Properties.RetentionInDays, 30, `${id} retention`);
    }
    primary.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'cognito-relay-proxy',
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
  });
});

describe('queues', () => {
  test('inbound FIFO queue with a FIFO DLQ after 50 receives (above the replicator caps 5 and 40), KMS-encrypted', () => {
    const dlq = only(primary, 'AWS::SQS::Queue', {
      Properties: { QueueName: 'cognito-relay-inbound-dlq.fifo' },
    });
    assert.equal(dlq.props.FifoQueue, true);
    const inbound = only(primary, 'AWS::SQS::Queue', {
      Properties: { QueueName: 'cognito-relay-inbound.fifo' },
    });
    assert.equal(inbound.props.FifoQueue, true);
    assert.deepEqual(inbound.props.RedrivePolicy, {
      deadLetterTargetArn: { 'Fn::GetAtt': [dlq.id, 'Arn'] },
      maxReceiveCount: 50,
    });
    // The redrive policy is the safety net: it must lie above both of the replicator's own caps.
    const env = lambdaEnv(primary, 'cognito-relay-replicator');
    assert.ok(Number(env.RELAY_MAX_DELIVERIES) < 50 && Number(env.RELAY_MAX_RECEIVES) < Number(env.RELAY_MAX_DELIVERIES));
    assert.equal(inbound.props.VisibilityTimeout, 360);
  });

  test('all three queues use the customer key with alias alias/cognito-relay-queues and TLS only', () => {
    const alias = only(primary, 'AWS::KMS::Alias', {
      Properties: { AliasName: 'alias/cognito-relay-queues' },
    });
    const keyId = alias.props.TargetKeyId['Fn::GetAtt'][0];
    primary.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    // The three replication queues (FIFO); the event stream's example queues (not FIFO, no
    // replication data) use SQS-managed encryption.
    const queues = primary.findResources('AWS::SQS::Queue', { Properties: { FifoQueue: true } });
    assert.equal(Object.keys(queues).length, 3);
    for (const q of Object.values(queues)) {
      assert.deepEqual(q.Properties.KmsMasterKeyId, { 'Fn::GetAtt': [keyId, 'Arn'] });
    }
    const others = Object.values(primary.findResources('AWS::SQS::Queue')).filter((q: any) => !q.Properties.FifoQueue);
    assert.equal(others.length, 2);
    for (const q of others) assert.equal(q.Properties.SqsManagedSseEnabled, true);
    primary.resourceCountIs('AWS::SQS::QueuePolicy', 5);
    primary.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  test('fallback FIFO queue exists', () => {
    const fb = only(primary, 'AWS::SQS::Queue', {
      Properties: { QueueName: 'cognito-relay-fallback.fifo' },
    });
    assert.equal(fb.props.FifoQueue, true);
  });

  test('two replicator event sources (inbound queue, fallback queue), both reporting batch item failures', () => {
    primary.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    const fn = only(primary, 'AWS::Lambda::Function', {
      Properties: { FunctionName: 'cognito-relay-replicator' },
    });
    for (const name of ['cognito-relay-inbound.fifo', 'cognito-relay-fallback.fifo']) {
      const q = only(primary, 'AWS::SQS::Queue', { Properties: { QueueName: name } });
      const esm = only(primary, 'AWS::Lambda::EventSourceMapping', {
        Properties: { EventSourceArn: { 'Fn::GetAtt': [q.id, 'Arn'] } },
      });
      assert.deepEqual(esm.props.FunctionName, { Ref: fn.id }, name);
      assert.deepEqual(esm.props.FunctionResponseTypes, ['ReportBatchItemFailures'], name);
      assert.equal(esm.props.BatchSize, 10, name);
      assert.deepEqual(esm.props.ScalingConfig, { MaximumConcurrency: 2 }, name);
    }
  });

  test('the fallback queue is visible again after at most the replicator timeout', () => {
    const fb = only(primary, 'AWS::SQS::Queue', { Properties: { QueueName: 'cognito-relay-fallback.fifo' } });
    const fn = only(primary, 'AWS::Lambda::Function', { Properties: { FunctionName: 'cognito-relay-replicator' } });
    assert.equal(fb.props.VisibilityTimeout, fn.props.Timeout);
  });
});

describe('limits table', () => {
  for (const [name, t] of [['primary', primary], ['standby', standby]] as const) {
    test(`${name}: key pk (S), TTL on ttl, on-demand, PITR off, deleted with the stack, named to the proxy`, () => {
      const table = only(t, 'AWS::DynamoDB::Table', LIMITS_TABLE);
      assert.deepEqual(table.props.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }]);
      assert.deepEqual(table.props.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
      assert.equal(table.props.BillingMode, 'PAY_PER_REQUEST');
      assert.equal(table.props.ProvisionedThroughput, undefined);
      assert.equal(t.toJSON().Resources[table.id].DeletionPolicy, 'Delete');
      assert.deepEqual(lambdaEnv(t, 'cognito-relay-proxy').RELAY_LIMITS_TABLE, { Ref: table.id });
      assert.equal(lambdaEnv(t, 'cognito-relay-replicator').RELAY_LIMITS_TABLE, undefined);
    });
  }
  test('failed sign-ins count in both regions: each proxy names the other region\'s table (fixed name) and may write it', () => {
    for (const [t, peerRegion] of [[primary, exampleConfig.standby.region], [standby, exampleConfig.primary.region]] as const) {
      const table = only(t, 'AWS::DynamoDB::Table', LIMITS_TABLE);
      assert.equal(table.props.TableName, 'cognito-relay-limits');
      assert.equal(lambdaEnv(t, 'cognito-relay-proxy').RELAY_PEER_LIMITS_TABLE, 'cognito-relay-limits');
      const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
      assert.ok(policies.includes(`:dynamodb:${peerRegion}:`) && policies.includes('table/cognito-relay-limits'),
        'the proxy role may update the peer region\'s limits table');
    }
  });
  test('the standby bridges only while the other region is unhealthy: each proxy watches the other\'s /health', () => {
    assert.equal(lambdaEnv(primary, 'cognito-relay-proxy').RELAY_PEER_HEALTH_URL,
      `https://auth-${exampleConfig.standby.region}.${exampleConfig.hostedZone.name}/health`);
    assert.equal(lambdaEnv(standby, 'cognito-relay-proxy').RELAY_PEER_HEALTH_URL,
      `https://auth-${exampleConfig.primary.region}.${exampleConfig.hostedZone.name}/health`);
  });
});

describe('state table', () => {
  for (const [name, t] of [['primary', primary], ['standby', standby]] as const) {
    test(`${name}: one table, key pk (S), TTL on ttl, on-demand, PITR on, retained, no fixed name`, () => {
      const table = only(t, 'AWS::DynamoDB::Table', STATE_TABLE);
      assert.deepEqual(table.props.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }]);
      assert.deepEqual(table.props.AttributeDefinitions, [{ AttributeName: 'pk', AttributeType: 'S' }]);
      assert.deepEqual(table.props.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
      assert.equal(table.props.BillingMode, 'PAY_PER_REQUEST');
      assert.equal(table.props.ProvisionedThroughput, undefined);
      assert.deepEqual(table.props.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
      assert.equal(table.props.DeletionProtectionEnabled, true);
      assert.equal(table.props.TableName, undefined, 'a fixed name would collide with the retained table');
      const raw = t.toJSON().Resources[table.id];
      assert.equal(raw.DeletionPolicy, 'RetainExceptOnCreate');
      assert.equal(raw.UpdateReplacePolicy, 'Retain');
    });
  }
});

describe('drain switch, app client, secrets', () => {
  test('SSM String parameter /cognito-relay/drain = false', () => {
    primary.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/cognito-relay/drain',
      Type: 'String',
      Value: 'false',
    });
  });

  test('regional app client with a secret on the existing pool', () => {
    const c = only(primary, 'AWS::Cognito::UserPoolClient');
    assert.equal(c.props.UserPoolId, 'eu-west-1_Primary01');
    assert.equal(c.props.GenerateSecret, true);
    assert.equal(c.props.EnablePropagateAdditionalUserContextData, true);
    assert.deepEqual([...c.props.ExplicitAuthFlows].sort(), [
      'ALLOW_CUSTOM_AUTH', // the bridge mints tokens through the custom challenge
      'ALLOW_REFRESH_TOKEN_AUTH',
      'ALLOW_USER_PASSWORD_AUTH',
      'ALLOW_USER_SRP_AUTH',
    ]);
    primary.resourceCountIs('AWS::Cognito::UserPool', 0);
  });

  test('clients secret maps every public id to the regional client, secret never in plaintext', () => {
    const client = only(primary, 'AWS::Cognito::UserPoolClient');
    const s = only(primary, 'AWS::SecretsManager::Secret', { Properties: { Name: 'cognito-relay/clients' } });
    const join = s.props.SecretString['Fn::Join'][1];
    const text = join.map((p: unknown) => (typeof p === 'string' ? p : JSON.stringify(p))).join('');
    assert.match(text, /^\{"clients":\[\{"public_client_id":"1example23456789publicclient","client_id":/);
    assert.ok(join.some((p: any) => p?.Ref === client.id), 'client id is a Ref');
    assert.ok(
      join.some((p: any) => p?.['Fn::GetAtt']?.[1] === 'UserPoolClient.ClientSecret'),
      'client secret resolved by CloudFormation',
    );
  });
});

describe('API Gateway', () => {
  test('regional REST API, execute-api endpoint disabled', () => {
    primary.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['REGIONAL'] },
      DisableExecuteApiEndpoint: true,
    });
  });

  test('ANY on / and on {proxy+}, Lambda proxy integration', () => {
    primary.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{proxy+}' });
    const methods = primary.findResources('AWS::ApiGateway::Method');
    assert.equal(Object.keys(methods).length, 2);
    for (const m of Object.values(methods)) {
      assert.equal(m.Properties.HttpMethod, 'ANY');
      assert.equal(m.Properties.Integration.Type, 'AWS_PROXY');
    }
  });

  test('stage logs without data tracing', () => {
    primary.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      MethodSettings: [Match.objectLike({ DataTraceEnabled: false, LoggingLevel: 'ERROR' })],
    });
  });

  test('global and per-region custom domains, both mapped to the stage with an empty base path', () => {
    for (const name of ['auth.example.com', 'auth-eu-west-1.example.com']) {
      const d = only(primary, 'AWS::ApiGateway::DomainName', { Properties: { DomainName: name } });
      assert.deepEqual(d.props.EndpointConfiguration, { Types: ['REGIONAL'] });
      assert.equal(d.props.SecurityPolicy, 'TLS_1_2');
      const m = only(primary, 'AWS::ApiGateway::BasePathMapping', {
        Properties: { DomainName: { Ref: d.id } },
      });
      assert.equal(m.props.BasePath, undefined);
    }
  });

  test('one certificate per region: created DNS-validated when no ARN is given', () => {
    primary.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'auth.example.com',
      SubjectAlternativeNames: ['auth-eu-west-1.example.com'],
      ValidationMethod: 'DNS',
    });
    standby.resourceCountIs('AWS::CertificateManager::Certificate', 0);
    standby.hasResourceProperties('AWS::ApiGateway::DomainName', {
      DomainName: 'auth.example.com',
      RegionalCertificateArn: exampleConfig.standby.certificateArn,
    });
  });

  test('alias records auth-<region> and auth-origin-<region> point at the custom domains', () => {
    for (const [name, domain] of [
      ['auth-eu-west-1.example.com.', 'auth-eu-west-1.example.com'],
      ['auth-origin-eu-west-1.example.com.', 'auth.example.com'],
    ]) {
      const d = only(primary, 'AWS::ApiGateway::DomainName', { Properties: { DomainName: domain } });
      primary.hasResourceProperties('AWS::Route53::RecordSet', {
        Name: name,
        Type: 'A',
        HostedZoneId: 'Z0123456789EXAMPLE',
        AliasTarget: {
          DNSName: { 'Fn::GetAtt': [d.id, 'RegionalDomainName'] },
          HostedZoneId: { 'Fn::GetAtt': [d.id, 'RegionalHostedZoneId'] },
        },
      });
    }
  });
});

describe('WAF', () => {
  test('REGIONAL WebACL with deny list, allow list and a per-IP rate rule', () => {
    const acl = only(primary, 'AWS::WAFv2::WebACL');
    assert.equal(acl.props.Scope, 'REGIONAL');
    assert.deepEqual(acl.props.DefaultAction, { Allow: {} });
    const rules = acl.props.Rules as any[];
    assert.deepEqual(
      rules.map((r) => r.Name),
      [
        'deny-ips',
        'allow-ips',
        'rate-per-ip',
        'aws-AWSManagedRulesAmazonIpReputationList',
        'aws-AWSManagedRulesCommonRuleSet',
        'aws-AWSManagedRulesKnownBadInputsRuleSet',
      ],
    );
    const rate = rules[2];
    assert.deepEqual(rate.Statement.RateBasedStatement, {
      Limit: 1000,
      AggregateKeyType: 'IP',
      EvaluationWindowSec: 300,
    });
    assert.ok(rate.Action.Block, 'rate rule blocks');
    assert.ok(rules[0].Action.Block, 'deny rule blocks');
    assert.ok(rules[1].Action.Allow, 'allow rule allows');
    // allow list mixes IPv4 and IPv6 in the example: two sets, OR-ed
    assert.equal(rules[1].Statement.OrStatement.Statements.length, 2);
    assert.ok(rules[0].Statement.IPSetReferenceStatement, 'deny list is IPv4 only');
  });

  test('IP sets carry the configured CIDRs', () => {
    primary.hasResourceProperties('AWS::WAFv2::IPSet', {
      Name: 'cognito-relay-deny-v4',
      Scope: 'REGIONAL',
      IPAddressVersion: 'IPV4',
      Addresses: ['198.51.100.0/24'],
    });
    primary.hasResourceProperties('AWS::WAFv2::IPSet', {
      Name: 'cognito-relay-allow-v6',
      IPAddressVersion: 'IPV6',
      Addresses: ['2001:db8::/32'],
    });
  });

  test('WebACL is associated with the API stage', () => {
    const acl = only(primary, 'AWS::WAFv2::WebACL');
    const stage = only(primary, 'AWS::ApiGateway::Stage');
    const assoc = only(primary, 'AWS::WAFv2::WebACLAssociation');
    assert.deepEqual(assoc.props.WebACLArn, { 'Fn::GetAtt': [acl.id, 'Arn'] });
    assert.ok(JSON.stringify(assoc.props.ResourceArn).includes(stage.id), 'stage ARN');
  });
});
