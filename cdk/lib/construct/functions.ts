/**
 * The two Lambda functions of a region (proxy, replicator), their log groups, their roles (with
 * deterministic names, see config.ts) and the replicator's two SQS event sources (the inbound
 * queue, replayed into the pool; the fallback queue, forwarded to the peer's inbound queue).
 * Their permissions beyond their own logs are in `permissions.ts`.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  CLIENTS_SECRET_NAME,
  DRAIN_PARAMETER_NAME,
  LIMITS_TABLE_NAME,
  RegionConfig,
  RelayConfig,
  inboundQueueUrl,
  proxyRoleName,
  regionalDomainName,
  replicatorRoleName,
} from '../config';
import { LambdaFunctionName } from '../assets';
import { MAX_DELIVERIES, MAX_RECEIVES, REPLICATOR_TIMEOUT_S, RelayQueues } from './queues';
import { RelaySecrets } from './secrets';
import { RelayState } from './state';

/** The Lambda architecture of the config (arm64 by default). */
export function architecture(cfg: RelayConfig): lambda.Architecture {
  return cfg.lambdaArchitecture === 'x86_64' ? lambda.Architecture.X86_64 : lambda.Architecture.ARM_64;
}

export interface RelayFunctionsProps {
  readonly config: RelayConfig;
  readonly self: RegionConfig;
  readonly peer: RegionConfig;
  /** Absolute folder of each function's build (holding its `bootstrap`), see assets.ts. */
  readonly lambdaAssets: Record<LambdaFunctionName, string>;
  readonly queues: RelayQueues;
  readonly state: RelayState;
  readonly secrets: RelaySecrets;
}

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayFunctions {
  public readonly proxyLogs: logs.LogGroup;
  public readonly replicatorLogs: logs.LogGroup;
  public readonly proxyRole: iam.Role;
  public readonly replicatorRole: iam.Role;
  public readonly proxy: lambda.Function;
  public readonly replicator: lambda.Function;

  constructor(scope: Construct, props: RelayFunctionsProps) {
    const { config: cfg, self, peer, queues, state, secrets } = props;
    const region = self.region;
    // No fixed log group names: the groups are retained when the stack is deleted, and a fixed
    // name would make the recreated stack fail on "already exists". The functions log to them
    // through their logging config; the names are stack outputs.
    this.proxyLogs = new logs.LogGroup(scope, 'ProxyLogs', {
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    this.replicatorLogs = new logs.LogGroup(scope, 'ReplicatorLogs', {
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });

    // Deterministic role names (config.ts): the PEER region's inbound queue and queue key policies
    // admit exactly these roles by ARN, built from the names, without a cross-region reference.
    // Deleting the stack deletes the roles, so a recreated stack reuses the names.
    this.proxyRole = new iam.Role(scope, 'ProxyRole', {
      roleName: proxyRoleName(region),
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cognito-relay proxy Lambda (least privilege)',
    });
    this.replicatorRole = new iam.Role(scope, 'ReplicatorRole', {
      roleName: replicatorRoleName(region),
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cognito-relay replicator Lambda (least privilege)',
    });
    for (const [role, group] of [
      [this.proxyRole, this.proxyLogs],
      [this.replicatorRole, this.replicatorLogs],
    ] as const) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'WriteOwnLogs',
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          // LogGroup.logGroupArn ends in ":*" (its log streams).
          resources: [group.logGroupArn],
        }),
      );
    }

    const peerQueueUrl = inboundQueueUrl(cfg, peer.region);
    this.proxy = new lambda.Function(scope, 'Proxy', {
      functionName: 'cognito-relay-proxy',
      description: 'cognito-relay proxy: Cognito user API -> own pool, mutations -> peer queue',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: architecture(cfg),
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.lambdaAssets.proxy),
      role: this.proxyRole,
      logGroup: this.proxyLogs,
      memorySize: 512,
      timeout: Duration.seconds(25),
      environment: {
        AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH: 'true',
        RELAY_REGION: region,
        RELAY_PEER_REGION: peer.region,
        RELAY_USER_POOL_ID: self.userPoolId,
        RELAY_PEER_USER_POOL_ID: peer.userPoolId,
        RELAY_USERNAME_ATTRIBUTES: cfg.usernameAttributes,
        RELAY_CLIENTS_SECRET_ID: CLIENTS_SECRET_NAME,
        RELAY_REPLICATION_KEY_SECRET_ID: cfg.replicationKeySecretName,
        RELAY_REFRESH_KEY_SECRET_ID: cfg.refreshKeySecretName,
        RELAY_STATE_TABLE: state.stateTable.tableName,
        RELAY_LIMITS_TABLE: state.limitsTable.tableName,
        // Failed sign-ins and locks count in both regions (issue 19 point 1).
        RELAY_PEER_LIMITS_TABLE: LIMITS_TABLE_NAME,
        // The bridge opens only while the other region is not healthy (issue 19 point 7).
        RELAY_PEER_HEALTH_URL: `https://${regionalDomainName(cfg, peer.region)}/health`,
        RELAY_PEER_QUEUE_URL: peerQueueUrl,
        RELAY_FALLBACK_QUEUE_URL: queues.fallbackQueue.queueUrl,
        RELAY_DRAIN_PARAMETER: DRAIN_PARAMETER_NAME,
        RELAY_CORS_ORIGINS: cfg.corsOrigins,
        RELAY_RATE_PER_IP: String(cfg.proxyRatePerIp),
        RELAY_RATE_PER_USERNAME: String(cfg.proxyRatePerUsername),
        RUST_LOG: 'info',
      },
    });
    this.proxy.node.addDependency(secrets.clientsSecret);

    const replicatorEnv: Record<string, string> = {
      RELAY_REGION: region,
      RELAY_USER_POOL_ID: self.userPoolId,
      // Events are authenticated against their origin pool: the replicator refuses events from
      // anywhere but this one.
      RELAY_PEER_USER_POOL_ID: peer.userPoolId,
      RELAY_USERNAME_ATTRIBUTES: cfg.usernameAttributes,
      RELAY_REPLICATION_KEY_SECRET_ID: cfg.replicationKeySecretName,
      RELAY_STATE_TABLE: state.stateTable.tableName,
      RELAY_QUOTA_USER_CREATION: String(cfg.replicatorQuotas.userCreation),
      RELAY_QUOTA_USER_UPDATE: String(cfg.replicatorQuotas.userUpdate),
      RELAY_QUOTA_USER_AUTHENTICATION: String(cfg.replicatorQuotas.userAuthentication),
      RELAY_QUOTA_USER_ACCOUNT_RECOVERY: String(cfg.replicatorQuotas.userAccountRecovery),
      // The replicator writes an event it gives up on to the DLQ itself, with the reason as a
      // message attribute: after RELAY_MAX_RECEIVES failed attempts of that event (counted in the
      // state table), or after RELAY_MAX_DELIVERIES deliveries of it whatever the cause. The
      // redrive policy (maxReceiveCount 50, above both) stays as the safety net when the
      // replicator cannot do its own accounting. See the constants in queues.ts.
      RELAY_DLQ_URL: queues.deadLetterQueue.queueUrl,
      RELAY_MAX_RECEIVES: String(MAX_RECEIVES),
      RELAY_MAX_DELIVERIES: String(MAX_DELIVERIES),
      // The replicator also forwards this region's fallback queue (second event source below)
      // to the peer's inbound queue; records whose eventSourceARN names the fallback queue are
      // sent there (same message group, dedup id = event id) instead of being replayed here.
      RELAY_FALLBACK_QUEUE_URL: queues.fallbackQueue.queueUrl,
      RELAY_PEER_REGION: peer.region,
      RELAY_PEER_QUEUE_URL: peerQueueUrl,
      RUST_LOG: 'info',
    };
    if (cfg.originSubAttribute) replicatorEnv.RELAY_ORIGIN_SUB_ATTRIBUTE = cfg.originSubAttribute;
    this.replicator = new lambda.Function(scope, 'Replicator', {
      functionName: 'cognito-relay-replicator',
      description:
        'cognito-relay replicator: inbound FIFO queue -> own pool (Admin APIs); fallback queue -> peer inbound queue',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: architecture(cfg),
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.lambdaAssets.replicator),
      role: this.replicatorRole,
      logGroup: this.replicatorLogs,
      memorySize: 256,
      timeout: Duration.seconds(REPLICATOR_TIMEOUT_S),
      environment: replicatorEnv,
      // Its own share of the region's concurrency when configured: a proxy flood cannot starve
      // replication (and replication cannot grow past what the pool's quotas pace anyway). 0 =
      // none reserved (the property is left out): a fresh account's quota of 10 allows no
      // reservation at all, and the deploy would fail on it.
      reservedConcurrentExecutions: cfg.replicatorReservedConcurrency > 0 ? cfg.replicatorReservedConcurrency : undefined,
    });
    // Grants ReceiveMessage/DeleteMessage/ChangeMessageVisibility/GetQueueAttributes/GetQueueUrl
    // on the inbound queue and kms:Decrypt on its key, nothing more.
    this.replicator.addEventSource(
      new SqsEventSource(queues.inboundQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        // The minimum the service allows: each replicator process paces itself to the quotas,
        // so fewer concurrent processes keep the pool further from throttling.
        maxConcurrency: 2,
      }),
    );
    // The forwarder: this region's fallback queue -> the peer's inbound queue. Same grants as
    // above, on the fallback queue and (kms:Decrypt) the same queue key. A record that could not
    // be sent is reported as a batch item failure (and the later records of its message group
    // with it), so SQS retries it in order. Forwarding never calls Cognito, so it does not count
    // against the replay pacing; the service minimum of 2 concurrent batches bounds the burst
    // on the peer queue when a long fallback backlog drains.
    this.replicator.addEventSource(
      new SqsEventSource(queues.fallbackQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: 2,
      }),
    );
  }
}
