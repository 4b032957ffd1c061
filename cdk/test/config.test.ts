import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { buildRelayApp } from '../lib/app';
import {
  deploymentConfig,
  exampleConfig,
  hasLambdaBuilds,
  inboundQueueUrl,
  operatorRoleName,
  originDomainName,
  PLACEHOLDER_ASSET_DIR,
  proxyRoleName,
  regionPair,
  regionalDomainName,
  RelayConfig,
  replicatorRoleName,
  roleArn,
  validateConfig,
} from '../lib/config';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-assets-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('config', () => {
  test('the example config is valid and is what bin/app.ts deploys by default', () => {
    validateConfig(exampleConfig);
    assert.equal(deploymentConfig, exampleConfig);
    assert.equal(exampleConfig.lambdaAssetDir, '../target/lambda');
  });

  test('deterministic names', () => {
    assert.equal(regionalDomainName(exampleConfig, 'eu-west-1'), 'auth-eu-west-1.example.com');
    assert.equal(originDomainName(exampleConfig, 'eu-west-1'), 'auth-origin-eu-west-1.example.com');
    assert.equal(
      inboundQueueUrl(exampleConfig, 'eu-central-1'),
      'https://sqs.eu-central-1.amazonaws.com/111111111111/cognito-relay-inbound.fifo',
    );
    assert.equal(proxyRoleName('eu-west-1'), 'cognito-relay-proxy-eu-west-1');
    assert.equal(replicatorRoleName('eu-west-1'), 'cognito-relay-replicator-eu-west-1');
    assert.equal(operatorRoleName('eu-central-1'), 'cognito-relay-operator-eu-central-1');
    assert.equal(
      roleArn(exampleConfig, proxyRoleName('eu-central-1')),
      'arn:aws:iam::111111111111:role/cognito-relay-proxy-eu-central-1',
    );
  });

  test("each region's pool id, and its peer's", () => {
    const p = regionPair(exampleConfig, 'primary');
    const s = regionPair(exampleConfig, 'standby');
    assert.equal(p.self.userPoolId, 'eu-west-1_Primary01');
    assert.equal(p.peer.userPoolId, 'eu-central-1_Standby1');
    assert.equal(s.self.userPoolId, 'eu-central-1_Standby1');
    assert.equal(s.peer.userPoolId, 'eu-west-1_Primary01');
  });

  test('the refresh-token keyring is its own secret, named like the replication key', () => {
    assert.equal(exampleConfig.refreshKeySecretName, 'cognito-relay/refresh-key');
    assert.notEqual(exampleConfig.refreshKeySecretName, exampleConfig.replicationKeySecretName);
  });

  const bad: Array<[string, Partial<RelayConfig>, RegExp]> = [
    ['same regions', { standby: { ...exampleConfig.primary } }, /must differ/],
    ['pool in another region', { primary: { region: 'eu-west-1', userPoolId: 'us-east-1_X' } }, /not in region/],
    ['bad username attributes', { usernameAttributes: 'mail' }, /usernameAttributes/],
    ['domain outside the zone', { domainName: 'auth.example.org' }, /not in hosted zone/],
    ['no public client', { publicClientIds: [] }, /public ClientId/],
    ['tiny WAF limit', { waf: { ...exampleConfig.waf, ratePerIpPer5Min: 5 } }, /at least 10/],
    ['bad account', { account: '123' }, /12 digits/],
    [
      'the refresh key in the replication key secret',
      { refreshKeySecretName: 'cognito-relay/replication-key' },
      /different secret/,
    ],
    ['no refresh key secret', { refreshKeySecretName: '' }, /refreshKeySecretName/],
    [
      'certificate from another region',
      { standby: { ...exampleConfig.standby, certificateArn: 'arn:aws:acm:us-east-1:111111111111:certificate/x' } },
      /must be an ACM certificate in eu-central-1/,
    ],
  ];
  for (const [name, patch, message] of bad) {
    test(`rejects ${name}`, () => {
      assert.throws(() => validateConfig({ ...exampleConfig, ...patch }), message);
    });
  }

  test('plain-username pools are accepted', () => {
    validateConfig({ ...exampleConfig, usernameAttributes: '' });
  });
});

describe('Lambda assets', () => {
  test('missing builds fall back to the placeholders, with a warning', () => {
    const missing = path.join(tmp, 'does-not-exist');
    assert.equal(hasLambdaBuilds(missing), false);
    const r = buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: missing, nag: false });
    assert.equal(r.usedPlaceholderAssets, true);
    Annotations.fromStack(r.primary).hasWarning('*', Match.stringLikeRegexp('placeholders'));
    assert.equal(hasLambdaBuilds(PLACEHOLDER_ASSET_DIR), true);
  });

  test('real builds are used when present (no warning)', () => {
    const dir = path.join(tmp, 'lambda');
    for (const f of ['proxy', 'replicator']) {
      fs.mkdirSync(path.join(dir, f), { recursive: true });
      fs.writeFileSync(path.join(dir, f, 'bootstrap'), `fake ${f} binary\n`, { mode: 0o755 });
    }
    const r = buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: dir, nag: false });
    assert.equal(r.usedPlaceholderAssets, false);
    Annotations.fromStack(r.primary).hasNoWarning('*', Match.stringLikeRegexp('placeholders'));
    // The two functions get different code assets.
    const fns = Template.fromStack(r.primary).findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'provided.al2023' },
    });
    const keys = new Set(Object.values(fns).map((f) => JSON.stringify(f.Properties.Code.S3Key)));
    assert.equal(keys.size, 2);
  });
});
