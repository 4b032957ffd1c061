import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildRelayApp, RelayApp } from '../lib/app';
import { ALLOW_PLACEHOLDERS_CONTEXT } from '../lib/assets';
import { exampleConfig, PLACEHOLDER_ASSET_DIR, RelayConfig } from '../lib/config';

export interface Built {
  readonly relay: RelayApp;
  readonly primary: Template;
  readonly standby: Template;
  readonly global: Template;
}

/** Builds the example app on the placeholder Lambda builds (no Rust build needed). */
export function build(config: RelayConfig = exampleConfig): Built {
  const relay = buildRelayApp(config, {
    app: new App({ context: { [ALLOW_PLACEHOLDERS_CONTEXT]: true } }),
    lambdaAssetDir: PLACEHOLDER_ASSET_DIR,
    nag: false,
  });
  return {
    relay,
    primary: Template.fromStack(relay.primary),
    standby: Template.fromStack(relay.standby),
    global: Template.fromStack(relay.global),
  };
}

/** The one resource of `type` in the template (fails when there are 0 or several). */
export function only(template: Template, type: string, props: object = {}): { id: string; props: any } {
  const found = template.findResources(type, props);
  const ids = Object.keys(found);
  if (ids.length !== 1) throw new Error(`expected one ${type}, found ${ids.length}`);
  return { id: ids[0], props: found[ids[0]].Properties };
}

/** The environment of the Lambda function with that FunctionName. */
export function lambdaEnv(template: Template, functionName: string): Record<string, unknown> {
  return only(template, 'AWS::Lambda::Function', { Properties: { FunctionName: functionName } }).props
    .Environment.Variables;
}

/** Selectors for the two DynamoDB tables of a regional stack. */
export const STATE_TABLE = { Properties: { DeletionProtectionEnabled: true } };
export const LIMITS_TABLE = { Properties: { PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false } } };
