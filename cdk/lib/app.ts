/**
 * Builds the three stacks of cognito-relay from one config: the two regional stacks and the
 * global failover stack. Refuses Lambda builds that cannot run (see assets.ts).
 */
import * as path from 'node:path';
import { Annotations, App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  ALLOW_PLACEHOLDERS_CONTEXT,
  ARCHITECTURE_CONTEXT,
  LambdaFunctionName,
  placeholderAllowance,
  resolveLambdaAssets,
} from './assets';
import { CDK_ROOT, RelayConfig, validateConfig } from './config';
import { GlobalStack } from './stack/global-stack';
import { RegionalStack } from './stack/regional-stack';

export interface RelayApp {
  readonly app: App;
  readonly primary: RegionalStack;
  readonly standby: RegionalStack;
  readonly global: GlobalStack;
  readonly usedPlaceholderAssets: boolean;
  /** The functions deployed with a placeholder build (only with the context flag). */
  readonly placeholderFunctions: LambdaFunctionName[];
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
  const app = options.app ?? new App();
  const archOverride = app.node.tryGetContext(ARCHITECTURE_CONTEXT);
  if (archOverride !== undefined) config = { ...config, lambdaArchitecture: archOverride };
  validateConfig(config);
  const wanted = path.resolve(CDK_ROOT, options.lambdaAssetDir ?? config.lambdaAssetDir);
  const assets = resolveLambdaAssets(
    wanted,
    config.lambdaArchitecture,
    placeholderAllowance(app.node.tryGetContext(ALLOW_PLACEHOLDERS_CONTEXT)),
  );
  const usedPlaceholderAssets = assets.placeholders.length > 0;

  const primary = new RegionalStack(app, `CognitoRelay-${config.primary.region}`, {
    config,
    role: 'primary',
    lambdaAssets: assets.dirs,
  });
  const standby = new RegionalStack(app, `CognitoRelay-${config.standby.region}`, {
    config,
    role: 'standby',
    lambdaAssets: assets.dirs,
  });
  const global = new GlobalStack(app, 'CognitoRelay-Global', { config });
  // Deployment order only (no values cross regions): records and health checks need both regions.
  global.addStackDependency(primary);
  global.addStackDependency(standby);

  if (usedPlaceholderAssets) {
    for (const stack of [primary, standby]) {
      Annotations.of(stack).addWarningV2(
        'cognito-relay:placeholder-assets',
        `Placeholder Lambda builds (they fail every invocation) for ${assets.placeholders.join(', ')}, ` +
          `allowed by ${ALLOW_PLACEHOLDERS_CONTEXT}: ${assets.problems.join('; ')}. ` +
          `Do not deploy this assembly; build with scripts/build-lambdas.`,
      );
    }
  }
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, primary, standby, global, usedPlaceholderAssets, placeholderFunctions: assets.placeholders };
}
