import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { buildRelayApp } from '../lib/app';
import { ALLOW_PLACEHOLDERS_CONTEXT, LAMBDA_FUNCTIONS, describeBuild, glibcNeeded } from '../lib/assets';
import {
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

/** A minimal ELF header: 64-bit, little endian, executable, for `machine`. */
function fakeElf(file: string, machine: number): void {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2; // 64-bit
  h[5] = 1; // little endian
  h[6] = 1;
  h.writeUInt16LE(2, 16); // ET_EXEC
  h.writeUInt16LE(machine, 18);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, h, { mode: 0o755 });
}
/**
 * A minimal dynamically linked ELF executable for `machine` that needs the glibc symbol
 * versions `needs` (`GLIBC_2.17`, ...): a string table and a version-needs section
 * (SHT_GNU_verneed) naming them, as a linker writes them.
 */
function fakeDynamicElf(file: string, machine: number, needs: string[]): void {
  const strings = ['', 'libc.so.6', ...needs];
  const strtab = Buffer.from(strings.join('\0') + '\0', 'latin1');
  const offsetOf = (s: string) => strings.slice(0, strings.indexOf(s)).reduce((n, x) => n + x.length + 1, 0);
  const verneed = Buffer.alloc(16 + 16 * needs.length);
  verneed.writeUInt16LE(1, 0); // vn_version
  verneed.writeUInt16LE(needs.length, 2); // vn_cnt
  verneed.writeUInt32LE(offsetOf('libc.so.6'), 4); // vn_file
  verneed.writeUInt32LE(16, 8); // vn_aux
  verneed.writeUInt32LE(0, 12); // vn_next
  needs.forEach((v, i) => {
    const at = 16 + 16 * i;
    verneed.writeUInt32LE(offsetOf(v), at + 8); // vna_name
    verneed.writeUInt32LE(i === needs.length - 1 ? 0 : 16, at + 12); // vna_next
  });
  const strtabAt = 64;
  const verneedAt = strtabAt + strtab.length;
  const shoff = verneedAt + verneed.length;
  const sh = Buffer.alloc(3 * 64); // null, .dynstr, .gnu.version_r
  const section = (i: number, type: number, offset: number, size: number, link: number, info: number) => {
    sh.writeUInt32LE(type, i * 64 + 4);
    sh.writeBigUInt64LE(BigInt(offset), i * 64 + 24);
    sh.writeBigUInt64LE(BigInt(size), i * 64 + 32);
    sh.writeUInt32LE(link, i * 64 + 40);
    sh.writeUInt32LE(info, i * 64 + 44);
  };
  section(1, 3 /* SHT_STRTAB */, strtabAt, strtab.length, 0, 0);
  section(2, 0x6ffffffe /* SHT_GNU_verneed */, verneedAt, verneed.length, 1, 1);
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2;
  h[5] = 1;
  h[6] = 1;
  h.writeUInt16LE(2, 16);
  h.writeUInt16LE(machine, 18);
  h.writeBigUInt64LE(BigInt(shoff), 0x28);
  h.writeUInt16LE(64, 0x3a);
  h.writeUInt16LE(3, 0x3c);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([h, strtab, verneed, sh]), { mode: 0o755 });
}
const ARM64 = 183;
const X86_64 = 62;
const allow = () => new App({ context: { [ALLOW_PLACEHOLDERS_CONTEXT]: true } });

describe('Lambda assets', () => {
  test('missing builds are refused, naming the build command and the override flag', () => {
    const missing = path.join(tmp, 'does-not-exist');
    assert.equal(hasLambdaBuilds(missing), false);
    assert.throws(
      () => buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: missing, nag: false }),
      (e: Error) =>
        /proxy\/bootstrap: missing/.test(e.message) &&
        /scripts\/build-lambdas --arch arm64/.test(e.message) &&
        e.message.includes(ALLOW_PLACEHOLDERS_CONTEXT),
    );
  });

  test('the placeholder scripts themselves are refused without the flag', () => {
    assert.throws(
      () => buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: PLACEHOLDER_ASSET_DIR, nag: false }),
      /a script, not an ELF executable/,
    );
  });

  test('with the context flag, missing builds fall back to the placeholders, with a warning', () => {
    const missing = path.join(tmp, 'does-not-exist');
    const r = buildRelayApp(exampleConfig, { app: allow(), lambdaAssetDir: missing, nag: false });
    assert.equal(r.usedPlaceholderAssets, true);
    assert.deepEqual(r.placeholderFunctions, ['proxy', 'replicator', 'auth-trigger']);
    Annotations.fromStack(r.primary).hasWarning('*', Match.stringLikeRegexp('Placeholder Lambda builds'));
    assert.equal(hasLambdaBuilds(PLACEHOLDER_ASSET_DIR), true);
  });

  test('the flag can allow placeholders for named functions only', () => {
    const dir = path.join(tmp, 'lambda-no-trigger');
    for (const f of ['proxy', 'replicator']) fakeElf(path.join(dir, f, 'bootstrap'), ARM64);
    const only = new App({ context: { [ALLOW_PLACEHOLDERS_CONTEXT]: 'auth-trigger' } });
    const r = buildRelayApp(exampleConfig, { app: only, lambdaAssetDir: dir, nag: false });
    assert.deepEqual(r.placeholderFunctions, ['auth-trigger']);
    // A missing proxy is still refused when only the trigger may be a placeholder.
    fs.rmSync(path.join(dir, 'proxy'), { recursive: true });
    const again = new App({ context: { [ALLOW_PLACEHOLDERS_CONTEXT]: 'auth-trigger' } });
    assert.throws(() => buildRelayApp(exampleConfig, { app: again, lambdaAssetDir: dir, nag: false }), /proxy\/bootstrap: missing/);
  });

  test('ELF builds for the configured architecture are used (no warning, one asset per function)', () => {
    const dir = path.join(tmp, 'lambda-arm64');
    for (const f of LAMBDA_FUNCTIONS) fakeElf(path.join(dir, f, 'bootstrap'), ARM64);
    // Distinct contents, so distinct assets.
    for (const f of LAMBDA_FUNCTIONS) fs.appendFileSync(path.join(dir, f, 'bootstrap'), f);
    const r = buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: dir, nag: false });
    assert.equal(r.usedPlaceholderAssets, false);
    Annotations.fromStack(r.primary).hasNoWarning('*', Match.stringLikeRegexp('Placeholder'));
    const fns = Template.fromStack(r.primary).findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'provided.al2023' },
    });
    for (const f of Object.values<any>(fns)) assert.deepEqual(f.Properties.Architectures, ['arm64']);
    const keys = new Set(Object.values(fns).map((f) => JSON.stringify(f.Properties.Code.S3Key)));
    assert.equal(keys.size, Object.keys(fns).length);
  });

  test('a build for the other architecture is refused', () => {
    const dir = path.join(tmp, 'lambda-x86');
    for (const f of LAMBDA_FUNCTIONS) fakeElf(path.join(dir, f, 'bootstrap'), X86_64);
    assert.throws(
      () => buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: dir, nag: false }),
      /built for x86_64, the functions run on arm64/,
    );
    // ... and accepted when the functions are x86_64 (parameter, or the build script's context).
    const ctx = new App({ context: { 'cognito-relay:architecture': 'x86_64' } });
    assert.equal(buildRelayApp(exampleConfig, { app: ctx, lambdaAssetDir: dir, nag: false }).usedPlaceholderAssets, false);
    const r = buildRelayApp({ ...exampleConfig, lambdaArchitecture: 'x86_64' }, { app: new App(), lambdaAssetDir: dir, nag: false });
    const fns = Template.fromStack(r.primary).findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'provided.al2023' },
    });
    for (const f of Object.values<any>(fns)) assert.deepEqual(f.Properties.Architectures, ['x86_64']);
  });

  test('a host build that needs a newer glibc than provided.al2023 (2.34) fails synth, naming the glibc', () => {
    const dir = path.join(tmp, 'lambda-host');
    for (const f of LAMBDA_FUNCTIONS) fakeDynamicElf(path.join(dir, f, 'bootstrap'), ARM64, ['GLIBC_2.17', 'GLIBC_2.39', 'GLIBC_2.28']);
    assert.equal(glibcNeeded(path.join(dir, 'proxy', 'bootstrap')), '2.39');
    assert.throws(
      () => buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: dir, nag: false }),
      (e: Error) =>
        /proxy\/bootstrap: needs glibc 2\.39, the provided\.al2023 runtime has 2\.34/.test(e.message) &&
        /scripts\/build-lambdas --arch arm64/.test(e.message),
    );
    // The same binaries built against glibc <= 2.34 (cargo-lambda's zig linker) are deployable.
    const ok = path.join(tmp, 'lambda-al2023');
    for (const f of LAMBDA_FUNCTIONS) fakeDynamicElf(path.join(ok, f, 'bootstrap'), ARM64, ['GLIBC_2.17', 'GLIBC_2.34']);
    for (const f of LAMBDA_FUNCTIONS) fs.appendFileSync(path.join(ok, f, 'bootstrap'), f);
    assert.equal(glibcNeeded(path.join(ok, 'proxy', 'bootstrap')), '2.34');
    assert.equal(buildRelayApp(exampleConfig, { app: new App(), lambdaAssetDir: ok, nag: false }).usedPlaceholderAssets, false);
  });

  test('the glibc check reads a real executable (this node binary) like the build script does', () => {
    const scanned = (fs.readFileSync(process.execPath).toString('latin1').match(/GLIBC_\d+\.\d+/g) ?? [])
      .map((v) => v.slice(6))
      .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
    const needed = glibcNeeded(process.execPath);
    assert.match(needed ?? '', /^2\.\d+$/);
    assert.equal(needed, scanned[scanned.length - 1]);
  });

  test('the ELF check reads real executables (this node binary) and rejects non-executables', () => {
    assert.equal(describeBuild(process.execPath), process.arch === 'arm64' ? 'arm64' : 'x86_64');
    const text = path.join(tmp, 'not-elf');
    fs.writeFileSync(text, 'hello world, not a binary at all');
    assert.equal(describeBuild(text), 'not an ELF file');
    const arm32 = path.join(tmp, 'arm32', 'bootstrap');
    fakeElf(arm32, 40);
    assert.equal(describeBuild(arm32), 'an ELF executable for machine 40');
    assert.equal(describeBuild(path.join(tmp, 'nope')), 'missing');
  });
});
