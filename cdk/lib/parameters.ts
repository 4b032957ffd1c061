/**
 * Parameters per environment (BLEA style), kept OUT of the tracked source: a JSON file per
 * environment (account, regions, pools, domain, quotas, ...) chosen at synth time with
 * `-c cognito-relay:parameters=<file>` (or the RELAY_PARAMETERS environment variable). Without
 * one, the app synthesises `parameters/example.json` (fake account and pools, for tests and
 * offline synth) and says so. Identity fields are required; the rest default to the example's
 * operational values. Unknown keys are refused (a typo must not silently keep a default).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CDK_ROOT, RelayConfig, exampleConfig, validateConfig } from './config';

export const PARAMETERS_CONTEXT = 'cognito-relay:parameters';
export const EXAMPLE_PARAMETERS = path.join(CDK_ROOT, 'parameters', 'example.json');

/** Fields every environment must set itself. */
export const REQUIRED_PARAMETERS = [
  'account',
  'primary',
  'standby',
  'publicClientIds',
  'usernameAttributes',
  'domainName',
  'hostedZone',
  'alarmEmail',
] as const;

/** Operational defaults (the example's), for the fields an environment may leave out. */
const DEFAULTS: Omit<RelayConfig, (typeof REQUIRED_PARAMETERS)[number]> = (() => {
  const { account, primary, standby, publicClientIds, usernameAttributes, domainName, hostedZone, alarmEmail, ...rest } =
    exampleConfig;
  void [account, primary, standby, publicClientIds, usernameAttributes, domainName, hostedZone, alarmEmail];
  return rest;
})();

const KNOWN = new Set<string>([...REQUIRED_PARAMETERS, ...Object.keys(DEFAULTS), 'originSubAttribute', '$comment']);
const NESTED = ['waf', 'eventStream', 'replicatorQuotas', 'bridge'] as const;

/** Reads and validates one parameter file. */
export function loadParameters(file: string): RelayConfig {
  let doc: any;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cognito-relay parameters ${file}: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${file}: not a JSON object`);
  const errors: string[] = [];
  for (const k of Object.keys(doc)) if (!KNOWN.has(k)) errors.push(`unknown parameter '${k}'`);
  for (const k of REQUIRED_PARAMETERS) if (doc[k] === undefined) errors.push(`'${k}' is required`);
  if (doc.logRetention !== undefined && !Object.values(RetentionDays).includes(doc.logRetention)) {
    errors.push(`logRetention must be a CloudWatch Logs retention in days (1, 3, 5, 7, 14, 30, ...), got ${doc.logRetention}`);
  }
  if (errors.length > 0) throw new Error(`cognito-relay parameters ${file}:\n- ${errors.join('\n- ')}`);
  const { $comment, ...values } = doc;
  void $comment;
  const config: any = { ...DEFAULTS, ...values };
  for (const k of NESTED) if (doc[k] !== undefined) config[k] = { ...(DEFAULTS as any)[k], ...doc[k] };
  // lambdaAssetDir stays relative to cdk/ (as in config.ts).
  validateConfig(config as RelayConfig);
  return config as RelayConfig;
}

/** The parameter file the app synthesises: the context flag, RELAY_PARAMETERS, or the example. */
export function parametersFile(app: App): { file: string; example: boolean } {
  const chosen = app.node.tryGetContext(PARAMETERS_CONTEXT) ?? process.env.RELAY_PARAMETERS;
  if (chosen) return { file: path.resolve(process.cwd(), String(chosen)), example: false };
  return { file: EXAMPLE_PARAMETERS, example: true };
}
