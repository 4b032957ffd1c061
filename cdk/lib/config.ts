/**
 * All deployment parameters of cognito-relay, in one typed place.
 *
 * A real deployment does NOT edit this file: its parameters live in a JSON file per environment
 * (`parameters/<env>.json`, see parameters.ts and the README), passed with
 * `-c cognito-relay:parameters=<file>`. `exampleConfig` is what the tests use and what
 * `parameters/example.json` holds: a fake account and fake pools, so nothing is looked up in AWS.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** Settings that differ per region. */
export interface RegionConfig {
  /** AWS region, e.g. `eu-west-1`. */
  readonly region: string;
  /** The EXISTING Cognito user pool in that region (the stack does not create pools). */
  readonly userPoolId: string;
  /**
   * ACM certificate (in this region) covering BOTH the global name and `auth-<region>.<zone>`.
   * When absent, the stack creates one, DNS-validated in the hosted zone.
   */
  readonly certificateArn?: string;
  /**
   * Generation of this region's replication queues (default 1). The inbound, dead-letter and
   * fallback queues are RETAINED when the region stack is deleted (they may hold undelivered
   * events) and have fixed names (the peer addresses the inbound queue by name), so a deleted
   * stack is recreated with the next generation: names get a `-g<N>` suffix and do not collide
   * with the retained queues (README, "Delete and recreate a region stack"). Deploy BOTH
   * regional stacks after changing it (the peer sends to the new inbound queue).
   */
  readonly queueGeneration?: number;
}

export interface WafConfig {
  /** Requests per IP per 5-minute window before WAF blocks that IP (AWS minimum: 10). */
  readonly ratePerIpPer5Min: number;
  /** CIDRs that always pass (exempt from the rate rule). IPv4 and IPv6 may be mixed. */
  readonly allowCidrs: string[];
  /** CIDRs that are always blocked. IPv4 and IPv6 may be mixed. */
  readonly denyCidrs: string[];
}

/** The proxy's event stream (docs/event-stream.md). */
export interface EventStreamConfig {
  /** Publish to this existing EventBridge bus instead of creating `cognito-relay-events-<region>`. */
  readonly existingBusArn?: string;
  /** How events name the user: `hash` (keyed HMAC), `plain`, `none`. */
  readonly user: 'hash' | 'plain' | 'none';
  /** Under Lambda, how long a request waits for its event to be published (ms). */
  readonly lambdaFlushMs: number;
}

export interface RelayConfig {
  /** The AWS account both regions live in. */
  readonly account: string;
  /** The region that normally serves (Route 53 PRIMARY). */
  readonly primary: RegionConfig;
  /** The region that serves after failover (Route 53 SECONDARY). */
  readonly standby: RegionConfig;
  /**
   * Region of the global stack (health checks, failover records, health-check alarms).
   * Route 53 publishes health-check metrics only in us-east-1, so the alarms on them only
   * work there: keep `us-east-1` unless you drop those alarms.
   */
  readonly globalRegion: string;
  /**
   * The ClientId(s) the apps were built with (app clients of the primary pool, usually
   * without a secret). Each is mapped to the regional app client (with a secret) that each
   * regional stack creates.
   */
  readonly publicClientIds: string[];
  /**
   * The pools' `UsernameAttributes`, comma separated: '' (plain usernames), 'email',
   * 'phone_number' or 'email,phone_number'. Both pools must agree.
   */
  readonly usernameAttributes: string;
  /** Optional custom attribute (e.g. `custom:origin_sub`) the replicator copies the origin `sub` into. */
  readonly originSubAttribute?: string;
  /** The global name apps use as their Cognito endpoint, e.g. `auth.example.com`. */
  readonly domainName: string;
  /** The public hosted zone holding `domainName` and the per-region names. */
  readonly hostedZone: { readonly id: string; readonly name: string };
  /**
   * Name (not ARN) of the Secrets Manager secret holding the replication sealing key,
   * created ONCE by the operator with a replica in the standby region (see README), so the
   * very same key exists under the same name in both regions.
   */
  readonly replicationKeySecretName: string;
  /**
   * Name (not ARN) of the Secrets Manager secret holding the refresh-token keyring (the key the
   * proxy seals the refresh tokens it hands out with). Separate from the replication key (a
   * different key for a different purpose, rotated on its own), and like it created ONCE by the
   * operator with a replica in the standby region, so both proxies open each other's tokens.
   * Only the proxies read it.
   */
  readonly refreshKeySecretName: string;
  /**
   * Name of the Secrets Manager secret holding this region's bridge keyring (standby sign-in
   * bridge, DESIGN.md): the proxy signs assertions with it and the auth-trigger Lambda of the
   * same region verifies them. One per region (same name in each region, different values, no
   * replica), created once by the operator (README) and rotated by adding a key to the ring.
   */
  readonly bridgeKeySecretName: string;
  /** The standby sign-in bridge's trigger Lambda (README, "Attach the bridge triggers"). */
  readonly bridge: {
    /**
     * Fail the deploy unless each region's pool uses `cognito-relay-auth-trigger` as its
     * Define/Create/Verify Auth Challenge triggers. Off for the very first deploy (the function
     * must exist before it can be attached), on after the one-time attach step.
     */
    readonly requireTriggersAttached: boolean;
  };
  readonly waf: WafConfig;
  /** Proxy-side limits beyond WAF (requests per minute), answered with TooManyRequestsException. */
  readonly proxyRatePerIp: number;
  readonly proxyRatePerUsername: number;
  /** The event stream to EventBridge (bus, example rule, drop alarm). */
  readonly eventStream: EventStreamConfig;
  /**
   * The sign-up policy document (JSON, docs/sign-up-policy.md), stored in the SSM parameter
   * `SIGN_UP_POLICY_PARAMETER_NAME` that the proxy re-reads. `{}` refuses nothing.
   */
  readonly signUpPolicy: string;
  /** `RELAY_CORS_ORIGINS`: comma-separated origins, or `*`. */
  readonly corsOrigins: string;
  /**
   * Concurrent executions reserved for the replicator, so a flood of proxy invocations cannot
   * starve replication. `0` (the default) reserves none: the property is left out of the
   * function. A reservation comes out of the account's regional concurrency quota, and Lambda
   * refuses one that leaves less than its minimum unreserved (a fresh account with a quota of 10
   * cannot reserve anything). Otherwise at least 4: two event sources with the service minimum
   * of 2 concurrent batches each.
   */
  readonly replicatorReservedConcurrency: number;
  /** Replicator pacing per quota category (requests per second per replicator process). */
  readonly replicatorQuotas: {
    readonly userCreation: number;
    readonly userUpdate: number;
    readonly userAuthentication: number;
    readonly userAccountRecovery: number;
  };
  /** E-mail address subscribed to the alarm topics (confirm the subscription mail). */
  readonly alarmEmail: string;
  /** Alarm when replication lag (p99, and the oldest inbound event's age) exceeds this. */
  readonly lagAlarmThresholdMs: number;
  /** Alarm when more than this share (0..1) of API requests answer 5xx. */
  readonly proxy5xxRateThreshold: number;
  /** Retention of every log group the app creates. */
  readonly logRetention: RetentionDays;
  /**
   * Folder holding the Lambda builds: `<dir>/proxy/bootstrap` and `<dir>/replicator/bootstrap`
   * (what `cargo lambda build --release --arm64 --output-format binary` writes to
   * `target/lambda`). Relative paths are resolved against the `cdk/` folder.
   */
  readonly lambdaAssetDir: string;
  /**
   * The functions' architecture: `arm64` (Graviton, the default: cheaper per GB-s) or `x86_64`.
   * The builds in `lambdaAssetDir` must be ELF executables for it (`scripts/build-lambdas --arch`).
   */
  readonly lambdaArchitecture: 'arm64' | 'x86_64';
}

/** Example parameters: used by the tests and by `npm run synth`. Not real resources. */
export const exampleConfig: RelayConfig = {
  account: '111111111111',
  primary: { region: 'eu-west-1', userPoolId: 'eu-west-1_Primary01' },
  standby: {
    region: 'eu-central-1',
    userPoolId: 'eu-central-1_Standby1',
    certificateArn:
      'arn:aws:acm:eu-central-1:111111111111:certificate/00000000-0000-4000-8000-000000000000',
  },
  globalRegion: 'us-east-1',
  publicClientIds: ['1example23456789publicclient'],
  usernameAttributes: 'email',
  domainName: 'auth.example.com',
  hostedZone: { id: 'Z0123456789EXAMPLE', name: 'example.com' },
  replicationKeySecretName: 'cognito-relay/replication-key',
  refreshKeySecretName: 'cognito-relay/refresh-key',
  bridgeKeySecretName: 'cognito-relay/bridge-key',
  bridge: { requireTriggersAttached: false },
  waf: {
    ratePerIpPer5Min: 1000,
    allowCidrs: ['192.0.2.0/24', '2001:db8::/32'],
    denyCidrs: ['198.51.100.0/24'],
  },
  proxyRatePerIp: 120,
  proxyRatePerUsername: 30,
  corsOrigins: '*',
  eventStream: { user: 'hash', lambdaFlushMs: 200 },
  signUpPolicy: JSON.stringify({ dry_run: true, blocked_email_domains: [], signups_per_ip_per_minute: 10 }),
  replicatorReservedConcurrency: 0,
  replicatorQuotas: {
    userCreation: 50,
    userUpdate: 25,
    userAuthentication: 120,
    userAccountRecovery: 30,
  },
  alarmEmail: 'ops@example.com',
  lagAlarmThresholdMs: 60_000,
  proxy5xxRateThreshold: 0.05,
  logRetention: RetentionDays.ONE_MONTH,
  lambdaAssetDir: '../target/lambda',
  lambdaArchitecture: 'arm64',
};


/** The folder `cdk/` itself (this file lives in `cdk/lib`). */
export const CDK_ROOT = path.resolve(__dirname, '..');

/** Placeholder Lambda builds, used when the real ones have not been built (tests, offline synth). */
export const PLACEHOLDER_ASSET_DIR = path.join(CDK_ROOT, 'test', 'fixtures', 'lambda');

/** True when `<dir>/<function>/bootstrap` exists for every function (whatever it is). */
export function hasLambdaBuilds(dir: string): boolean {
  const abs = path.resolve(CDK_ROOT, dir);
  return ['proxy', 'replicator', 'auth-trigger'].every((f) => fs.existsSync(path.join(abs, f, 'bootstrap')));
}

/** The per-region public name, used by health checks: `auth-<region>.<zone>`. */
export function regionalDomainName(config: RelayConfig, region: string): string {
  return `auth-${region}.${config.hostedZone.name}`;
}

/**
 * The per-region name of the GLOBAL custom domain's endpoint: `auth-origin-<region>.<zone>`, an
 * alias to the API Gateway target of the global name in that region. The global stack's failover
 * records alias these, so the global name resolves to the endpoint whose TLS certificate and
 * Host mapping are the global name's, with no cross-region stack reference.
 */
export function originDomainName(config: RelayConfig, region: string): string {
  return `auth-origin-${region}.${config.hostedZone.name}`;
}

/** The fixed name of the inbound replication queue in every region. */
export const INBOUND_QUEUE_NAME = 'cognito-relay-inbound.fifo';
export const INBOUND_DLQ_NAME = 'cognito-relay-inbound-dlq.fifo';
export const FALLBACK_QUEUE_NAME = 'cognito-relay-fallback.fifo';
export const QUEUE_KEY_ALIAS = 'alias/cognito-relay-queues';
export const DRAIN_PARAMETER_NAME = '/cognito-relay/drain';
/**
 * The fixed name of each region's limits table: the other region's proxy writes failed
 * sign-ins and locks there too (RELAY_PEER_LIMITS_TABLE), so it must be nameable without a
 * cross-region reference. Nothing in it is retained (counters of a window or two).
 */
export const LIMITS_TABLE_NAME = 'cognito-relay-limits';
export const CLIENTS_SECRET_NAME = 'cognito-relay/clients';
export const SIGN_UP_POLICY_PARAMETER_NAME = '/cognito-relay/sign-up-policy';
export const METRIC_NAMESPACE = 'CognitoRelay';
export const HEALTH_PATH = '/health';
export const STAGE_NAME = 'prod';

/** The settings of `region` (one of the two configured regions). */
export function regionConfig(config: RelayConfig, region: string): RegionConfig {
  const r = [config.primary, config.standby].find((x) => x.region === region);
  if (!r) throw new Error(`${region} is neither the primary nor the standby region`);
  return r;
}

/**
 * The name of one of a region's queues in its current generation: the base name at generation
 * 1 (so existing deployments keep their queues), `<base>-g<N>.fifo` after.
 */
export function queueName(config: RelayConfig, region: string, base: string): string {
  const gen = regionConfig(config, region).queueGeneration ?? 1;
  return gen === 1 ? base : base.replace(/\.fifo$/, `-g${gen}.fifo`);
}

/** Deterministic URL of a region's inbound queue (no cross-region stack reference needed). */
export function inboundQueueUrl(config: RelayConfig, region: string): string {
  return `https://sqs.${region}.amazonaws.com/${config.account}/${queueName(config, region, INBOUND_QUEUE_NAME)}`;
}

export function inboundQueueArn(config: RelayConfig, region: string): string {
  return `arn:aws:sqs:${region}:${config.account}:${queueName(config, region, INBOUND_QUEUE_NAME)}`;
}

/** The two regions as seen from one of them: its own settings and its peer's. */
export function regionPair(
  config: RelayConfig,
  role: 'primary' | 'standby',
): { readonly self: RegionConfig; readonly peer: RegionConfig } {
  return role === 'primary'
    ? { self: config.primary, peer: config.standby }
    : { self: config.standby, peer: config.primary };
}

/**
 * Deterministic IAM role names, one set per region (IAM names are account-wide, so the region
 * is part of the name). The inbound queue and queue key policies of one region name the peer
 * region's proxy and replicator roles by ARN, built from these names, so no stack reads a value
 * from the other region's stack.
 */
export function proxyRoleName(region: string): string {
  return `cognito-relay-proxy-${region}`;
}
export function replicatorRoleName(region: string): string {
  return `cognito-relay-replicator-${region}`;
}
/** The operator role (relayctl: DLQ redrive, queue depth, drain switch) of a region. */
export function operatorRoleName(region: string): string {
  return `cognito-relay-operator-${region}`;
}
export function roleArn(config: RelayConfig, roleName: string): string {
  return `arn:aws:iam::${config.account}:role/${roleName}`;
}

/** Fails fast on parameters that would only break at deploy time. */
export function validateConfig(config: RelayConfig): void {
  const errors: string[] = [];
  if (!/^\d{12}$/.test(config.account)) errors.push('account must be 12 digits');
  if (config.primary.region === config.standby.region) errors.push('primary and standby regions must differ');
  for (const r of [config.primary, config.standby]) {
    if (!r.userPoolId.startsWith(`${r.region}_`)) {
      errors.push(`user pool ${r.userPoolId} is not in region ${r.region}`);
    }
    if (r.certificateArn && !r.certificateArn.startsWith(`arn:aws:acm:${r.region}:`)) {
      errors.push(`certificate for ${r.region} must be an ACM certificate in ${r.region}`);
    }
  }
  if (!config.replicationKeySecretName || !config.refreshKeySecretName || !config.bridgeKeySecretName) {
    errors.push('replicationKeySecretName, refreshKeySecretName and bridgeKeySecretName are required');
  } else if (
    new Set([config.replicationKeySecretName, config.refreshKeySecretName, config.bridgeKeySecretName]).size !== 3
  ) {
    errors.push('replicationKeySecretName, refreshKeySecretName and bridgeKeySecretName must name three different secrets');
  }
  if (config.publicClientIds.length === 0) errors.push('at least one public ClientId is needed');
  if (!/^(|email|phone_number|email,phone_number|phone_number,email)$/.test(config.usernameAttributes)) {
    errors.push(`usernameAttributes must be '', 'email', 'phone_number' or both, got '${config.usernameAttributes}'`);
  }
  const zone = config.hostedZone.name.replace(/\.$/, '');
  if (config.domainName !== zone && !config.domainName.endsWith(`.${zone}`)) {
    errors.push(`domainName ${config.domainName} is not in hosted zone ${zone}`);
  }
  if (!['arm64', 'x86_64'].includes(config.lambdaArchitecture)) {
    errors.push(`lambdaArchitecture must be 'arm64' or 'x86_64', got '${config.lambdaArchitecture}'`);
  }
  for (const r of [config.primary, config.standby]) {
    const g = r.queueGeneration;
    if (g !== undefined && !(Number.isInteger(g) && g >= 1 && g <= 999)) {
      errors.push(`queueGeneration of ${r.region} must be an integer from 1 to 999`);
    }
  }
  const reserved = config.replicatorReservedConcurrency;
  if (!(Number.isInteger(reserved) && (reserved === 0 || reserved >= 4))) {
    errors.push(
      `replicatorReservedConcurrency must be 0 (none reserved) or an integer of at least 4 (two event sources x 2), got ${reserved}`,
    );
  }
  if (config.waf.ratePerIpPer5Min < 10) errors.push('waf.ratePerIpPer5Min must be at least 10');
  if (config.lagAlarmThresholdMs <= 0) errors.push('lagAlarmThresholdMs must be positive');
  if (!(config.proxy5xxRateThreshold > 0 && config.proxy5xxRateThreshold < 1)) {
    errors.push('proxy5xxRateThreshold must be between 0 and 1');
  }
  try {
    const doc = JSON.parse(config.signUpPolicy);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) errors.push('signUpPolicy must be a JSON object');
  } catch {
    errors.push('signUpPolicy is not valid JSON');
  }
  if (!['hash', 'plain', 'none'].includes(config.eventStream.user)) errors.push("eventStream.user must be 'hash', 'plain' or 'none'");
  if (!(config.eventStream.lambdaFlushMs >= 0 && config.eventStream.lambdaFlushMs <= 5000)) {
    errors.push('eventStream.lambdaFlushMs must be between 0 and 5000');
  }
  const busArn = config.eventStream.existingBusArn;
  if (busArn !== undefined && !/^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/.+$/.test(busArn)) {
    errors.push('eventStream.existingBusArn must be an EventBridge event bus ARN');
  }
  if (errors.length > 0) throw new Error(`invalid cognito-relay config:\n- ${errors.join('\n- ')}`);
}
