import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildRelayApp } from '../lib/app';
import { ALLOW_PLACEHOLDERS_CONTEXT } from '../lib/assets';
import { exampleConfig, PLACEHOLDER_ASSET_DIR } from '../lib/config';
import { nagAcknowledgements } from '../lib/nag';

const dirs: string[] = [];
const outdir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-nag-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

interface Violation {
  ruleName: string;
  severity?: string;
  violatingConstructs?: Array<{ constructPath: string }>;
}

function report(dir: string): { pluginReports: Array<{ pluginName: string; conclusion: string; violations: Violation[] }> } | undefined {
  const file = path.join(dir, 'validation-report.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
}

describe('cdk-nag AwsSolutions', () => {
  test('the checks are live: an unsuppressed finding fails synthesis', () => {
    const dir = outdir();
    const app = new App({ outdir: dir });
    new sqs.Queue(new Stack(app, 'Bad'), 'NoDlqNoTls');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    assert.throws(() => app.synth(), /Validation failed/);
    const r = report(dir);
    assert.ok(r?.pluginReports.some((p) => p.violations.some((v) => v.ruleName === 'AwsSolutions-SQS3')));
  });

  test('the whole app synthesizes with zero unacknowledged findings', () => {
    const dir = outdir();
    const before = nagAcknowledgements.length;
    const { app } = buildRelayApp(exampleConfig, {
      app: new App({ outdir: dir, context: { [ALLOW_PLACEHOLDERS_CONTEXT]: true } }),
      lambdaAssetDir: PLACEHOLDER_ASSET_DIR,
    });
    let error: unknown;
    try {
      app.synth();
    } catch (e) {
      error = e;
    }
    const r = report(dir);
    const errors = (r?.pluginReports ?? []).flatMap((p) =>
      p.violations
        .filter((v) => (v.severity ?? 'error') === 'error')
        .map((v) => `${v.ruleName} @ ${(v.violatingConstructs ?? []).map((c) => c.constructPath).join(', ')}`),
    );
    assert.deepEqual(errors, [], 'unacknowledged errors');
    assert.equal(error, undefined, String(error));
    for (const p of r?.pluginReports ?? []) assert.equal(p.conclusion, 'success', p.pluginName);
    assert.ok(nagAcknowledgements.length > before, 'acknowledgements were made');
  });

  test('every acknowledgement names an AwsSolutions rule and gives a reason', () => {
    assert.ok(nagAcknowledgements.length > 0);
    for (const a of nagAcknowledgements) {
      assert.match(a.id, /^AwsSolutions-[A-Z]+\d+(\[.+\])?$/, a.id);
      assert.ok(a.reason.length >= 60, `${a.id} at ${a.path}: reason too short`);
    }
    const ids = new Set(nagAcknowledgements.map((a) => a.id.replace(/\[.*$/, '')));
    assert.deepEqual([...ids].sort(), [
      'AwsSolutions-APIG2',
      'AwsSolutions-APIG4',
      'AwsSolutions-COG4',
      'AwsSolutions-DDB3',
      'AwsSolutions-IAM4',
      'AwsSolutions-IAM5',
      'AwsSolutions-SMG4',
      'AwsSolutions-SQS3',
    ]);
  });
});
