import * as path from 'node:path';
import { Annotations, App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  CDK_ROOT,
  PLACEHOLDER_ASSET_DIR,
  RelayConfig,
  hasLambdaBuilds,
  validateConfig,
} from './config';
import { GlobalStack } from './stack/global-stack';
import { RegionalStack } from './stack/regional-stack';

export interface RelayApp {
  readonly app: App;
  readonly primary: RegionalStack;
  readonly standby: RegionalStack;
  readonly global: GlobalStack;
  readonly usedPlaceholderAssets: boolean;
}

export interface BuildOptions {
  readonly app?: App;
  /** Overrides `config.lambdaAssetDir` (tests pass the placeholder folder). */
  readonly lambdaAssetDir?: string;
  /** Run cdk-nag's AwsSolutions checks on every stack (default true). */
  readonly nag?: boolean;
}

/** Builds the three stacks of cognito-relay from one config. */
export function buildRelayApp(config: RelayConfig, options: BuildOptions = {}): RelayApp {
  validateConfig(config);
  const app = options.app ?? new App();
  const wanted = path.resolve(CDK_ROOT, options.lambdaAssetDir ?? config.lambdaAssetDir);
  const usedPlaceholderAssets = !hasLambdaBuilds(wanted);
  const lambdaAssetDir = usedPlaceholderAssets ? PLACEHOLDER_ASSET_DIR : wanted;

  const primary = new RegionalStack(app, `CognitoRelay-${config.primary.region}`, {
    config,
    role: 'primary',
    lambdaAssetDir,
  });
  const standby = new RegionalStack(app, `CognitoRelay-${config.standby.region}`, {
    config,
    role: 'standby',
    lambdaAssetDir,
  });
  const global = new GlobalStack(app, 'CognitoRelay-Global', { config });
  // Deployment order only (no values cross regions): records and health checks need both regions.
  global.addStackDependency(primary);
  global.addStackDependency(standby);

  if (usedPlaceholderAssets) {
    for (const stack of [primary, standby]) {
      Annotations.of(stack).addWarningV2(
        'cognito-relay:placeholder-assets',
        `No Lambda builds in ${wanted} (proxy/bootstrap, replicator/bootstrap): using placeholders ` +
          'that fail every invocation. Build them (README) before deploying.',
      );
    }
  }
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, primary, standby, global, usedPlaceholderAssets };
}
