import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { exampleConfig } from '../lib/config';
import { EXAMPLE_PARAMETERS, PARAMETERS_CONTEXT, loadParameters, parametersFile } from '../lib/parameters';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-params-'));
const write = (name: string, doc: object) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, JSON.stringify(doc));
  return f;
};
const example = JSON.parse(fs.readFileSync(EXAMPLE_PARAMETERS, 'utf8'));

describe('parameters per environment', () => {
  test('parameters/example.json is exactly the example config the tests use', () => {
    assert.deepEqual(loadParameters(EXAMPLE_PARAMETERS), exampleConfig);
  });

  test('an environment file needs only its identity fields; the rest default', () => {
    const f = write('prod.json', {
      account: '222222222222',
      primary: { region: 'us-east-2', userPoolId: 'us-east-2_AbCdEf123' },
      standby: { region: 'us-west-2', userPoolId: 'us-west-2_AbCdEf456', queueGeneration: 2 },
      publicClientIds: ['abc'],
      usernameAttributes: '',
      domainName: 'login.corp.example',
      hostedZone: { id: 'Z1', name: 'corp.example' },
      alarmEmail: 'oncall@corp.example',
      waf: { ratePerIpPer5Min: 500 },
      replicatorQuotas: { userCreation: 10 },
    });
    const c = loadParameters(f);
    assert.equal(c.account, '222222222222');
    assert.equal(c.standby.queueGeneration, 2);
    assert.equal(c.waf.ratePerIpPer5Min, 500);
    assert.deepEqual(c.waf.allowCidrs, exampleConfig.waf.allowCidrs, 'nested objects merge over the defaults');
    assert.equal(c.replicatorQuotas.userCreation, 10);
    assert.equal(c.replicatorQuotas.userUpdate, exampleConfig.replicatorQuotas.userUpdate);
    assert.equal(c.lambdaArchitecture, 'arm64');
    assert.equal(c.replicatorReservedConcurrency, 0, 'no reserved concurrency unless asked for');
    const reserved = loadParameters(write('reserved.json', { ...example, replicatorReservedConcurrency: 8 }));
    assert.equal(reserved.replicatorReservedConcurrency, 8);
  });

  test('missing identity fields, unknown keys (typos) and bad values are refused with every reason', () => {
    const { account, ...noAccount } = example;
    void account;
    const f = write('bad.json', { ...noAccount, lambdaArchitcture: 'x86_64', logRetention: 31 });
    assert.throws(
      () => loadParameters(f),
      (e: Error) =>
        /'account' is required/.test(e.message) &&
        /unknown parameter 'lambdaArchitcture'/.test(e.message) &&
        /logRetention must be/.test(e.message),
    );
    assert.throws(() => loadParameters(write('arch.json', { ...example, lambdaArchitecture: 'mips' })), /lambdaArchitecture/);
    assert.throws(
      () => loadParameters(write('conc.json', { ...example, replicatorReservedConcurrency: 2 })),
      /replicatorReservedConcurrency must be 0 \(none reserved\) or an integer of at least 4/,
    );
    assert.throws(() => loadParameters(path.join(tmp, 'none.json')), /ENOENT/);
  });

  test('the file comes from the context flag, else RELAY_PARAMETERS, else the example', () => {
    const saved = process.env.RELAY_PARAMETERS;
    try {
      delete process.env.RELAY_PARAMETERS;
      assert.deepEqual(parametersFile(new App()), { file: EXAMPLE_PARAMETERS, example: true });
      process.env.RELAY_PARAMETERS = '/x/env.json';
      assert.deepEqual(parametersFile(new App()), { file: '/x/env.json', example: false });
      const ctx = new App({ context: { [PARAMETERS_CONTEXT]: '/y/prod.json' } });
      assert.deepEqual(parametersFile(ctx), { file: '/y/prod.json', example: false });
    } finally {
      if (saved === undefined) delete process.env.RELAY_PARAMETERS;
      else process.env.RELAY_PARAMETERS = saved;
    }
  });
});
