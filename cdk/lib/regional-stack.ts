import * as path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, SecretValue, Stack, StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';
import { acknowledge } from './nag';
import {
  CLIENTS_SECRET_NAME,
  DRAIN_PARAMETER_NAME,
  FALLBACK_QUEUE_NAME,
  INBOUND_DLQ_NAME,
  INBOUND_QUEUE_NAME,
  METRIC_NAMESPACE,
  QUEUE_KEY_ALIAS,
  RelayConfig,
  STAGE_NAME,
  inboundQueueArn,
  inboundQueueUrl,
  operatorRoleName,
  originDomainName,
  proxyRoleName,
  regionPair,
  regionalDomainName,
  replicatorRoleName,
  roleArn,
} from './config';
import { RelayDashboard } from './dashboard';
import { RelayEventStream } from './event-stream';

/** Construct id of the singleton provider Lambda of CDK's AwsCustomResource. */
const AWS_CUSTOM_RESOURCE_PROVIDER_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

export type RegionRole = 'primary' | 'standby';

export interface RegionalStackProps extends StackProps {
  readonly config: RelayConfig;
  /** Which of the two configured regions this stack deploys. */
  readonly role: RegionRole;
  /** Absolute folder holding `proxy/bootstrap` and `replicator/bootstrap`. */
  readonly lambdaAssetDir: string;
}

/**
 * Failed attempts of ONE event before the replicator dead-letters it itself, with the reason
 * (`RELAY_MAX_RECEIVES`). The replicator counts these per event in the state table: an SQS
 * receive count is not the event's own failures, because when one event of a FIFO message group
 * fails, the later events of that group are handed back with it (unattempted) and their receive
 * counts rise too. Counting receives would dead-letter innocent events behind one bad one.
 */
const MAX_RECEIVES = 5;

/**
 * The replicator's own hard cap on deliveries of one event, whatever the reason
 * (`RELAY_MAX_DELIVERIES`): an event held back again and again behind others of its group is
 * dead-lettered by the replicator, with the reason, after this many receives.
 */
const MAX_DELIVERIES = 40;

/**
 * The inbound queue's redrive policy: a safety net ABOVE the replicator's own caps
 * (MAX_RECEIVES failed attempts, MAX_DELIVERIES deliveries), so in normal operation the
 * replicator always dead-letters an event itself, with a reason, before SQS would. SQS only
 * moves an event here when the replicator cannot run its own accounting at all (it crashes on
 * that batch, or cannot reach the state table), after 50 receives x 6 min visibility = ~5 h,
 * well inside the 14-day retention.
 */
const INBOUND_MAX_RECEIVE_COUNT = 50;

/** Seconds the replicator Lambda may run; the inbound queue's visibility timeout is 6x this. */
const REPLICATOR_TIMEOUT_S = 60;

/**
 * One region of cognito-relay: API Gateway + WAF in front of the proxy Lambda, the inbound
 * replication queue (+ DLQ) drained by the replicator Lambda into the region's existing pool,
 * the fallback queue, secrets, the drain switch, alarms and a dashboard.
 *
 * Nothing here references the other region's stack: the peer's queue URL/ARN, KMS key and role
 * ARNs are derived from deterministic names (see config.ts).
 */
export class RegionalStack extends Stack {
  public readonly api: apigw.LambdaRestApi;
  public readonly proxyFunction: lambda.Function;
  public readonly replicatorFunction: lambda.Function;
  public readonly inboundQueue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly fallbackQueue: sqs.Queue;
  public readonly stateTable: dynamodb.Table;
  public readonly limitsTable: dynamodb.Table;
  public readonly operatorRole: iam.Role;
  public readonly eventStream: RelayEventStream;

  constructor(scope: Construct, id: string, props: RegionalStackProps) {
    const cfg = props.config;
    const { self, peer } = regionPair(cfg, props.role);
    super(scope, id, {
      ...props,
      env: { account: cfg.account, region: self.region },
      description: `cognito-relay ${props.role} region ${self.region} (peer ${peer.region})`,
    });
    const region = self.region;
    const regionalName = regionalDomainName(cfg, region);

    // ---------------------------------------------------------------- queues
    const queueKey = new kms.Key(this, 'QueueKey', {
      alias: QUEUE_KEY_ALIAS,
      description: 'cognito-relay: encrypts the replication queues',
      enableKeyRotation: true,
    });
    const fifoCommon: Partial<sqs.QueueProps> = {
      fifo: true,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: queueKey,
      dataKeyReuse: Duration.minutes(5),
      retentionPeriod: Duration.days(14),
      enforceSSL: true,
    };
    this.deadLetterQueue = new sqs.Queue(this, 'InboundDeadLetterQueue', {
      ...fifoCommon,
      queueName: INBOUND_DLQ_NAME,
    });
    this.inboundQueue = new sqs.Queue(this, 'InboundQueue', {
      ...fifoCommon,
      queueName: INBOUND_QUEUE_NAME,
      // The event id is the deduplication id; ordering is per user (MessageGroupId), so
      // high-throughput FIFO (dedup and throughput per message group) fits.
      contentBasedDeduplication: false,
      deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      visibilityTimeout: Duration.seconds(6 * REPLICATOR_TIMEOUT_S),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: INBOUND_MAX_RECEIVE_COUNT },
    });
    this.fallbackQueue = new sqs.Queue(this, 'FallbackQueue', {
      ...fifoCommon,
      queueName: FALLBACK_QUEUE_NAME,
      contentBasedDeduplication: false,
      deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      // The replicator forwards this queue through an event source: the visibility timeout must
      // be at least the function timeout. It stays at that minimum (not 6x, as for the inbound
      // queue) so that a forward that failed while the peer is unreachable is retried within a
      // minute; a message that reappears early is harmless (no DLQ here, and the peer queue
      // deduplicates on the event id).
      visibilityTimeout: Duration.seconds(REPLICATOR_TIMEOUT_S),
    });
    // cdk-nag acknowledgements: see acknowledgeNagFindings() below.

    // ---------------------------------------------------------------- state table
    // Per-user high-water marks (the replicator skips an event that is not newer than what it
    // already applied for that user: redelivery, DLQ redrive and fallback forwarding alike) and
    // per-event attempt counts (RELAY_MAX_RECEIVES / RELAY_MAX_DELIVERIES below). Items expire
    // through the `ttl` attribute.
    this.stateTable = new dynamodb.Table(this, 'StateTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'ttl',
      // Point-in-time recovery ON: losing this table would lose the high-water marks, and then
      // stale replication events (a redriven or re-forwarded older change) would apply over newer
      // state. PITR lets an operator restore it to any second of the last 35 days.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      // Kept when the stack is deleted. No fixed table name on purpose: CloudFormation generates
      // one, so a deleted and recreated region stack creates a new table next to the retained
      // one instead of failing on a name collision (restore the retained table's items, or
      // reconcile, before traffic flows again: README).
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---------------------------------------------------------------- limits table
    // Rate-limit and failed-sign-in counters shared by every proxy instance of the region
    // (RELAY_LIMITS_TABLE): one item per key and window, incremented with UpdateItem ADD, expiring
    // through `ttl` a window or two after it ends. On-demand: the load follows sign-in traffic.
    this.limitsTable = new dynamodb.Table(this, 'LimitsTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'ttl',
      // Point-in-time recovery OFF: every item is a counter that is useless a window later (a
      // minute for rates, 15 minutes for failed sign-ins); a restore could only bring back expired
      // counts. Losing the table loses at most one window of counting.
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
      // Nothing to keep: deleted with the stack.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // ---------------------------------------------------------------- drain switch
    const drain = new ssm.StringParameter(this, 'DrainSwitch', {
      parameterName: DRAIN_PARAMETER_NAME,
      stringValue: 'false',
      description:
        'cognito-relay drain switch: "true" makes GET /health answer 503 so Route 53 fails over. ' +
        'Flip it with relayctl drain/undrain; a redeploy does not reset it unless this resource changes.',
      tier: ssm.ParameterTier.STANDARD,
    });

    // ---------------------------------------------------------------- Cognito app client + secrets
    const userPool = cognito.UserPool.fromUserPoolId(this, 'UserPool', self.userPoolId);
    const regionalClient = new cognito.UserPoolClient(this, 'RegionalClient', {
      userPool,
      userPoolClientName: 'cognito-relay',
      generateSecret: true,
      // CDK adds ALLOW_REFRESH_TOKEN_AUTH whenever explicit auth flows are given.
      authFlows: { userPassword: true, userSrp: true },
      enablePropagateAdditionalUserContextData: true,
      disableOAuth: true,
      preventUserExistenceErrors: true,
    });
    // The client secret is read at deploy time by a CDK custom resource (DescribeUserPoolClient)
    // and lands in the template only as a Fn::GetAtt of that resource, resolved by CloudFormation:
    // the plaintext secret never appears in the synthesized template or in cdk.out.
    const clientSecret = regionalClient.userPoolClientSecret;
    const mapping = this.toJsonString({
      clients: cfg.publicClientIds.map((publicId) => ({
        public_client_id: publicId,
        client_id: regionalClient.userPoolClientId,
        client_secret: clientSecret.unsafeUnwrap(),
      })),
    });
    const clientsSecret = new secretsmanager.Secret(this, 'ClientsSecret', {
      secretName: CLIENTS_SECRET_NAME,
      description: 'cognito-relay: public ClientId -> regional app client id + secret',
      secretStringValue: SecretValue.unsafePlainText(mapping),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // The replication key is created ONCE by the operator in the primary region with a replica
    // in the standby region (README): both regions must seal/open with the very same key, and
    // a CloudFormation-generated value could not be base64 of 32 random bytes nor be shared.
    const replicationKey = secretsmanager.Secret.fromSecretNameV2(
      this,
      'ReplicationKey',
      cfg.replicationKeySecretName,
    );
    // Secrets Manager appends "-" and 6 random characters to secret ARNs.
    const replicationKeyArn = `${replicationKey.secretArn}-??????`;
    // The refresh-token keyring: created out of band exactly like the replication key (same
    // value in both regions, through a Secrets Manager replica), a separate secret so the two
    // keys rotate independently and the replicator never holds it. Only the proxy reads it.
    const refreshKey = secretsmanager.Secret.fromSecretNameV2(this, 'RefreshKey', cfg.refreshKeySecretName);
    const refreshKeyArn = `${refreshKey.secretArn}-??????`;

    // ---------------------------------------------------------------- Lambdas
    // No fixed log group names: the groups are retained when the stack is deleted, and a fixed
    // name would make the recreated stack fail on "already exists". The functions log to them
    // through their logging config; the names are stack outputs.
    const proxyLogs = new logs.LogGroup(this, 'ProxyLogs', {
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const replicatorLogs = new logs.LogGroup(this, 'ReplicatorLogs', {
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Deterministic role names (config.ts): the PEER region's inbound queue and queue key policies
    // admit exactly these roles by ARN, built from the names, without a cross-region reference.
    // Deleting the stack deletes the roles, so a recreated stack reuses the names.
    const proxyRole = new iam.Role(this, 'ProxyRole', {
      roleName: proxyRoleName(region),
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cognito-relay proxy Lambda (least privilege)',
    });
    const replicatorRole = new iam.Role(this, 'ReplicatorRole', {
      roleName: replicatorRoleName(region),
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cognito-relay replicator Lambda (least privilege)',
    });
    for (const [role, group] of [
      [proxyRole, proxyLogs],
      [replicatorRole, replicatorLogs],
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
    this.proxyFunction = new lambda.Function(this, 'Proxy', {
      functionName: 'cognito-relay-proxy',
      description: 'cognito-relay proxy: Cognito user API -> own pool, mutations -> peer queue',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(path.join(props.lambdaAssetDir, 'proxy')),
      role: proxyRole,
      logGroup: proxyLogs,
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
        RELAY_STATE_TABLE: this.stateTable.tableName,
        RELAY_LIMITS_TABLE: this.limitsTable.tableName,
        RELAY_PEER_QUEUE_URL: peerQueueUrl,
        RELAY_FALLBACK_QUEUE_URL: this.fallbackQueue.queueUrl,
        RELAY_DRAIN_PARAMETER: DRAIN_PARAMETER_NAME,
        RELAY_CORS_ORIGINS: cfg.corsOrigins,
        RELAY_RATE_PER_IP: String(cfg.proxyRatePerIp),
        RELAY_RATE_PER_USERNAME: String(cfg.proxyRatePerUsername),
        RUST_LOG: 'info',
      },
    });
    this.proxyFunction.node.addDependency(clientsSecret);
    this.eventStream = new RelayEventStream(this, 'EventStream', {
      region,
      proxy: this.proxyFunction,
      config: cfg.eventStream,
      signUpPolicy: cfg.signUpPolicy,
    });

    const replicatorEnv: Record<string, string> = {
      RELAY_REGION: region,
      RELAY_USER_POOL_ID: self.userPoolId,
      // Events are authenticated against their origin pool: the replicator refuses events from
      // anywhere but this one.
      RELAY_PEER_USER_POOL_ID: peer.userPoolId,
      RELAY_USERNAME_ATTRIBUTES: cfg.usernameAttributes,
      RELAY_REPLICATION_KEY_SECRET_ID: cfg.replicationKeySecretName,
      RELAY_STATE_TABLE: this.stateTable.tableName,
      RELAY_QUOTA_USER_CREATION: String(cfg.replicatorQuotas.userCreation),
      RELAY_QUOTA_USER_UPDATE: String(cfg.replicatorQuotas.userUpdate),
      RELAY_QUOTA_USER_AUTHENTICATION: String(cfg.replicatorQuotas.userAuthentication),
      RELAY_QUOTA_USER_ACCOUNT_RECOVERY: String(cfg.replicatorQuotas.userAccountRecovery),
      // The replicator writes an event it gives up on to the DLQ itself, with the reason as a
      // message attribute: after RELAY_MAX_RECEIVES failed attempts of that event (counted in the
      // state table), or after RELAY_MAX_DELIVERIES deliveries of it whatever the cause. The
      // redrive policy (maxReceiveCount 50, above both) stays as the safety net when the
      // replicator cannot do its own accounting. See the constants at the top of this file.
      RELAY_DLQ_URL: this.deadLetterQueue.queueUrl,
      RELAY_MAX_RECEIVES: String(MAX_RECEIVES),
      RELAY_MAX_DELIVERIES: String(MAX_DELIVERIES),
      // The replicator also forwards this region's fallback queue (second event source below)
      // to the peer's inbound queue; records whose eventSourceARN names the fallback queue are
      // sent there (same message group, dedup id = event id) instead of being replayed here.
      RELAY_FALLBACK_QUEUE_URL: this.fallbackQueue.queueUrl,
      RELAY_PEER_REGION: peer.region,
      RELAY_PEER_QUEUE_URL: peerQueueUrl,
      RUST_LOG: 'info',
    };
    if (cfg.originSubAttribute) replicatorEnv.RELAY_ORIGIN_SUB_ATTRIBUTE = cfg.originSubAttribute;
    this.replicatorFunction = new lambda.Function(this, 'Replicator', {
      functionName: 'cognito-relay-replicator',
      description:
        'cognito-relay replicator: inbound FIFO queue -> own pool (Admin APIs); fallback queue -> peer inbound queue',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(path.join(props.lambdaAssetDir, 'replicator')),
      role: replicatorRole,
      logGroup: replicatorLogs,
      memorySize: 256,
      timeout: Duration.seconds(REPLICATOR_TIMEOUT_S),
      environment: replicatorEnv,
    });
    // Grants ReceiveMessage/DeleteMessage/ChangeMessageVisibility/GetQueueAttributes/GetQueueUrl
    // on the inbound queue and kms:Decrypt on its key, nothing more.
    this.replicatorFunction.addEventSource(
      new SqsEventSource(this.inboundQueue, {
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
    this.replicatorFunction.addEventSource(
      new SqsEventSource(this.fallbackQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: 2,
      }),
    );

    // ---------------------------------------------------------------- IAM (least privilege)
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'SendToPeerInboundAndOwnFallback',
        actions: ['sqs:SendMessage'],
        resources: [inboundQueueArn(cfg, peer.region), this.fallbackQueue.queueArn],
      }),
    );
    // After one event went to the fallback queue, the proxy sends the user's later events there
    // too until the queue is empty, which it checks with GetQueueAttributes (queue depth).
    // Without it an instance would stay on the fallback path for good.
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OwnFallbackDepth',
        actions: ['sqs:GetQueueAttributes'],
        resources: [this.fallbackQueue.queueArn],
      }),
    );
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OwnQueueKey',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [queueKey.keyArn],
        conditions: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': QUEUE_KEY_ALIAS } },
      }),
    );
    // Sending to the peer's inbound queue (proxy: mutations; replicator: fallback forwarding)
    // encrypts with the peer region's queue key.
    const peerQueueKeyByAlias = () =>
      new iam.PolicyStatement({
        sid: 'PeerQueueKeyByAlias',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        // The peer region's queue key is created by the peer's stack, and its id is random:
        // without a cross-region reference it can only be named by pattern. The pattern is
        // limited to this account and the peer region, and the conditions limit it to the one
        // key carrying the alias alias/cognito-relay-queues, used through SQS in that region.
        resources: [`arn:aws:kms:${peer.region}:${cfg.account}:key/*`],
        conditions: {
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': QUEUE_KEY_ALIAS },
          StringEquals: { 'kms:ViaService': `sqs.${peer.region}.amazonaws.com` },
        },
      });
    proxyRole.addToPolicy(peerQueueKeyByAlias());
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadOwnSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [clientsSecret.secretArn, replicationKeyArn, refreshKeyArn],
      }),
    );
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadDrainSwitch',
        actions: ['ssm:GetParameter'],
        resources: [drain.parameterArn],
      }),
    );
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'HealthDescribeOwnPool',
        actions: ['cognito-idp:DescribeUserPool'],
        resources: [userPool.userPoolArn],
      }),
    );
    replicatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReplayOnOwnPool',
        actions: REPLICATOR_COGNITO_ACTIONS.map((a) => `cognito-idp:${a}`),
        resources: [userPool.userPoolArn],
      }),
    );
    replicatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DeadLetterWithReason',
        actions: ['sqs:SendMessage'],
        resources: [this.deadLetterQueue.queueArn],
      }),
    );
    replicatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EncryptForDeadLetterQueue',
        actions: ['kms:GenerateDataKey'],
        resources: [queueKey.keyArn],
        conditions: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': QUEUE_KEY_ALIAS } },
      }),
    );
    replicatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ForwardFallbackToPeerInbound',
        actions: ['sqs:SendMessage'],
        // Built from strings, as for the proxy: the peer's queue lives in the peer's stack.
        resources: [inboundQueueArn(cfg, peer.region)],
      }),
    );
    replicatorRole.addToPolicy(peerQueueKeyByAlias());
    replicatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadReplicationKey',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [replicationKeyArn],
      }),
    );
    // The state table: read and write single items by key, nothing else (no Query/Scan/Delete/
    // Update; the items expire through TTL). Not grantReadWriteData(), which grants far more.
    for (const role of [proxyRole, replicatorRole]) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'StateTableItems',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
          resources: [this.stateTable.tableArn],
        }),
      );
    }

    // The limits table: the proxy adds to a counter (UpdateItem ADD) and reads one (GetItem);
    // the replicator never touches it.
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'LimitsTableCounters',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [this.limitsTable.tableArn],
      }),
    );

    // ---------------------------------------------------------------- operator role
    // For relayctl against this region: DLQ inspect and redrive (receive from the DLQ, send to the
    // inbound queue, delete from the DLQ), queue depths, and the drain switch. Assumable by
    // principals of this account (their own IAM policy must allow sts:AssumeRole on it), with MFA.
    this.operatorRole = new iam.Role(this, 'OperatorRole', {
      roleName: operatorRoleName(region),
      description: 'cognito-relay operator (relayctl): DLQ redrive, queue depth, drain switch',
      assumedBy: new iam.AccountRootPrincipal().withConditions({
        Bool: { 'aws:MultiFactorAuthPresent': 'true' },
      }),
      maxSessionDuration: Duration.hours(1),
    });
    this.operatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RedriveDeadLetters',
        actions: ['sqs:SendMessage', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        resources: [this.deadLetterQueue.queueArn, this.inboundQueue.queueArn],
      }),
    );
    this.operatorRole.addToPolicy(
      new iam.PolicyStatement({
        // relayctl status shows the fallback backlog too (attributes only, no message bodies).
        sid: 'FallbackQueueDepth',
        actions: ['sqs:GetQueueAttributes'],
        resources: [this.fallbackQueue.queueArn],
      }),
    );
    this.operatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'QueueKey',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [queueKey.keyArn],
        conditions: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': QUEUE_KEY_ALIAS } },
      }),
    );
    this.operatorRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DrainSwitch',
        actions: ['ssm:GetParameter', 'ssm:PutParameter'],
        resources: [drain.parameterArn],
      }),
    );

    // ---------------------------------------------------------------- queue and key policies
    // Only the peer's proxy (mutations), the peer's replicator (fallback forwarding) and this
    // region's operator role (DLQ redrive) may put events into this region's inbound queue. The
    // roles are matched by aws:PrincipalArn in a condition, not named as principals: a principal
    // ARN must exist when the policy is written (the peer's roles may not exist yet on the first
    // deploy) and is pinned to the role's unique id (a recreated role would silently stop
    // matching); a condition on the ARN string has neither problem.
    const inboundSenders = [
      roleArn(cfg, proxyRoleName(peer.region)),
      roleArn(cfg, replicatorRoleName(peer.region)),
      roleArn(cfg, operatorRoleName(region)),
    ];
    this.inboundQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenySendExceptPeerRolesAndOperator',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['sqs:SendMessage'],
        resources: [this.inboundQueue.queueArn],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': inboundSenders } },
      }),
    );
    this.inboundQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        // This account's principals, and among them only these roles (their IAM policies grant
        // the send; this statement documents and bounds it).
        sid: 'AllowSendPeerRolesAndOperator',
        principals: [new iam.AccountPrincipal(cfg.account)],
        actions: ['sqs:SendMessage'],
        resources: [this.inboundQueue.queueArn],
        conditions: { ArnEquals: { 'aws:PrincipalArn': inboundSenders } },
      }),
    );
    // The queue key encrypts all three queues of this region, so its senders are the inbound
    // queue's senders plus this region's proxy (fallback queue) and replicator (DLQ, with the
    // reason). Nobody else may make the key encrypt (SQS calls GenerateDataKey as the sender).
    // Decrypt is not restricted here: the consumers (the replicator's event sources, relayctl)
    // keep it through their IAM policies, and the default statement keeps key administration.
    queueKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyEncryptExceptQueueSenders',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: {
          ArnNotEquals: {
            'aws:PrincipalArn': [
              ...inboundSenders,
              roleArn(cfg, proxyRoleName(region)),
              roleArn(cfg, replicatorRoleName(region)),
            ],
          },
        },
      }),
    );

    // ---------------------------------------------------------------- API Gateway
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.api = new apigw.LambdaRestApi(this, 'Api', {
      restApiName: 'cognito-relay',
      description: 'cognito-relay: Cognito user API endpoint (everything goes to the proxy Lambda)',
      handler: this.proxyFunction,
      proxy: true, // ANY on "/" and on "{proxy+}"
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // Only the custom domains (behind WAF, with the right certificate) are reachable.
      disableExecuteApiEndpoint: true,
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: STAGE_NAME,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
          caller: false,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: false,
        }),
        // Execution logs at ERROR, never with data tracing: bodies carry passwords and tokens.
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        throttlingRateLimit: 1000,
        throttlingBurstLimit: 2000,
      },
    });

    const zone = route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', {
      hostedZoneId: cfg.hostedZone.id,
      zoneName: cfg.hostedZone.name,
    });
    const certificate = self.certificateArn
      ? acm.Certificate.fromCertificateArn(this, 'Certificate', self.certificateArn)
      : new acm.Certificate(this, 'Certificate', {
          domainName: cfg.domainName,
          subjectAlternativeNames: [regionalName],
          validation: acm.CertificateValidation.fromDns(zone),
        });
    // The global name, so TLS (SNI) and Host match when Route 53 sends the global name here.
    const globalDomain = new apigw.DomainName(this, 'GlobalDomain', {
      domainName: cfg.domainName,
      certificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
      mapping: this.api, // empty base path: the stage is hidden, GET /health is /health
    });
    // The per-region name, probed by the Route 53 health checks (and by relayctl status).
    const regionalDomain = new apigw.DomainName(this, 'RegionalDomain', {
      domainName: regionalName,
      certificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
      mapping: this.api,
    });
    new route53.ARecord(this, 'RegionalRecord', {
      zone,
      recordName: regionalName,
      target: route53.RecordTarget.fromAlias(new targets.ApiGatewayDomain(regionalDomain)),
      comment: 'cognito-relay: this region, probed by the health checks',
    });
    // Deterministic name for "the global name's endpoint in this region": the global stack's
    // failover records alias it, so they need no cross-region reference.
    new route53.ARecord(this, 'OriginRecord', {
      zone,
      recordName: originDomainName(cfg, region),
      target: route53.RecordTarget.fromAlias(new targets.ApiGatewayDomain(globalDomain)),
      comment: `cognito-relay: target of the ${cfg.domainName} failover record for ${region}`,
    });

    // ---------------------------------------------------------------- WAF
    const webAcl = this.buildWebAcl(cfg);
    new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
      resourceArn: this.api.deploymentStage.stageArn,
      webAclArn: webAcl.attrArn,
    });

    // ---------------------------------------------------------------- alarms + dashboard
    const alarmTopic = new AlarmTopic(this, 'Alarms', { email: cfg.alarmEmail }).topic;
    const action = new cwActions.SnsAction(alarmTopic);
    const relayMetric = (metricName: string, statistic: string, period = Duration.minutes(1)) =>
      new cw.Metric({ namespace: METRIC_NAMESPACE, metricName, statistic, period });
    const alarms: cw.Alarm[] = [];
    const alarm = (id: string, props: cw.AlarmProps) => {
      const a = new cw.Alarm(this, id, { ...props, alarmName: `cognito-relay-${region}-${id}` });
      a.addAlarmAction(action);
      a.addOkAction(action);
      alarms.push(a);
      return a;
    };
    alarm('DlqNotEmpty', {
      alarmDescription:
        `Replication events are in the DLQ (an event failed ${MAX_RECEIVES} times, or was delivered ` +
        `${MAX_DELIVERIES} times): inspect and redrive (relayctl dlq).`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('ReplicationLagHigh', {
      alarmDescription: `p99 replication lag above ${cfg.lagAlarmThresholdMs} ms.`,
      metric: relayMetric('ReplicationLagMs', 'p99'),
      threshold: cfg.lagAlarmThresholdMs,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    // A stuck replicator emits no lag at all: the age of the oldest waiting event catches that.
    alarm('InboundBacklogOld', {
      alarmDescription: `The oldest waiting replication event is older than ${cfg.lagAlarmThresholdMs} ms.`,
      metric: this.inboundQueue.metricApproximateAgeOfOldestMessage({
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      threshold: Math.ceil(cfg.lagAlarmThresholdMs / 1000),
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('ReplicationLost', {
      alarmDescription: 'The proxy could not enqueue a replication event anywhere: run relayctl reconcile.',
      metric: relayMetric('ReplicationLost', 'Sum'),
      threshold: 1,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('FallbackBacklogOld', {
      alarmDescription:
        'Events wait in the fallback queue for over 5 minutes: the replicator forwards the fallback queue ' +
        'to the peer inbound queue, and it cannot (peer queue unreachable, or forwarding fails: see the ' +
        'replicator logs and ReplicatorErrors).',
      metric: this.fallbackQueue.metricApproximateAgeOfOldestMessage({
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      threshold: 300,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('Proxy5xxRate', {
      alarmDescription: `More than ${cfg.proxy5xxRateThreshold * 100}% of requests answer 5xx.`,
      // The Average of API Gateway's 5XXError is the share of requests that answered 5xx.
      metric: this.api.metricServerError({ statistic: 'Average', period: Duration.minutes(1) }),
      threshold: cfg.proxy5xxRateThreshold,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('EventsDropped', {
      alarmDescription:
        'The proxy dropped request events (EventBridge bus slow, unreachable or refusing, or the buffer full): ' +
        'downstream systems miss them. Requests are not affected. See docs/event-stream.md.',
      metric: this.eventStream.droppedMetric,
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('CognitoThrottling', {
      alarmDescription: 'Cognito throttled the proxy or the replicator (TooManyRequestsException).',
      metric: relayMetric('CognitoThrottled', 'Sum', Duration.minutes(5)),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('ReplicatorErrors', {
      alarmDescription: 'Replicator invocations fail as a whole (not single events).',
      metric: this.replicatorFunction.metricErrors({ period: Duration.minutes(5) }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });

    new RelayDashboard(this, 'Dashboard', {
      dashboardName: `cognito-relay-${region}`,
      api: this.api,
      inboundQueue: this.inboundQueue,
      deadLetterQueue: this.deadLetterQueue,
      fallbackQueue: this.fallbackQueue,
      alarms,
      healthCheckRegion: cfg.globalRegion,
    });

    this.acknowledgeNagFindings(clientsSecret, [proxyRole, replicatorRole], peer.region);

    // ---------------------------------------------------------------- outputs
    new CfnOutput(this, 'RegionalEndpoint', {
      value: `https://${regionalName}`,
      description: 'This region only (health checks, drills). Apps use the global endpoint.',
    });
    new CfnOutput(this, 'HealthUrl', { value: `https://${regionalName}/health` });
    new CfnOutput(this, 'RegionalClientId', {
      value: regionalClient.userPoolClientId,
      description: 'The app client (with secret) the proxy maps the public ClientId(s) to here.',
    });
    new CfnOutput(this, 'InboundQueueUrl', { value: this.inboundQueue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'FallbackQueueUrl', { value: this.fallbackQueue.queueUrl });
    new CfnOutput(this, 'DrainParameter', { value: drain.parameterName });
    new CfnOutput(this, 'StateTableName', { value: this.stateTable.tableName });
    new CfnOutput(this, 'LimitsTableName', { value: this.limitsTable.tableName });
    new CfnOutput(this, 'OperatorRoleArn', {
      value: this.operatorRole.roleArn,
      description: 'relayctl assumes this role (with MFA) for DLQ redrive and the drain switch.',
    });
    new CfnOutput(this, 'ProxyLogGroup', { value: proxyLogs.logGroupName });
    new CfnOutput(this, 'ReplicatorLogGroup', { value: replicatorLogs.logGroupName });
  }

  /**
   * cdk-nag (AwsSolutions) findings that are accepted on purpose, each with its reason. The
   * tests fail on any other finding, and on an acknowledgement without a reason.
   */
  private acknowledgeNagFindings(
    clientsSecret: secretsmanager.Secret,
    peerKeyRoles: iam.Role[],
    peerRegion: string,
  ): void {
    acknowledge(
      this.fallbackQueue,
      'AwsSolutions-SQS3',
      'The fallback queue holds events while the peer inbound queue is unreachable; the replicator ' +
        'forwards it through an event source, and every failed forward attempt raises the receive count, so a DLQ would dead-letter events merely because ' +
        'the peer outage lasted long. Its backlog age is alarmed (FallbackBacklogOld) instead.',
    );
    acknowledge(
      this.limitsTable,
      'AwsSolutions-DDB3',
      'The limits table holds only rate-limit counters that expire within minutes (TTL); a ' +
        'point-in-time restore could bring back nothing but stale counts, so recovery is off on purpose.',
    );
    acknowledge(
      clientsSecret,
      'AwsSolutions-SMG4',
      'This secret is a copy of the Cognito app client secret, which Secrets Manager cannot rotate; ' +
        'CloudFormation re-derives it from the app client on every deploy, and the proxy re-fetches ' +
        'it on NotAuthorizedException.',
    );
    acknowledge(
      this.api,
      'AwsSolutions-APIG2',
      'The API is a Cognito protocol endpoint (POST / with X-Amz-Target): the proxy validates every ' +
        'request against its action catalog and answers Cognito-shaped errors; API Gateway models ' +
        'cannot express that catalog.',
    );
    acknowledge(
      this.api,
      'AwsSolutions-APIG4',
      'The Cognito user API is unauthenticated by design (SignUp, InitiateAuth...): callers ' +
        'authenticate to Cognito through it. WAF (deny list, per-IP rate) and the proxy limits protect it.',
    );
    acknowledge(
      this.api,
      'AwsSolutions-COG4',
      'Same as APIG4: this API IS the Cognito endpoint, it cannot sit behind a Cognito authorizer.',
    );
    acknowledge(
      this.api,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'The account-level API Gateway CloudWatch role (needed for stage execution logs) uses the AWS ' +
        'managed policy AmazonAPIGatewayPushToCloudWatchLogs, the documented setup.',
    );
    // The CDK-managed custom resource provider behind userPoolClientSecret.
    const provider = this.node.tryFindChild(AWS_CUSTOM_RESOURCE_PROVIDER_ID);
    if (provider) {
      acknowledge(
        provider,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's AwsCustomResource provider (DescribeUserPoolClient on this pool only, at deploy time) " +
          'uses AWSLambdaBasicExecutionRole for its own logs; aws-cdk-lib creates it.',
      );
    }
    // The proxy sends mutations to the peer's inbound queue; the replicator forwards the
    // fallback queue to it. Both encrypt with the peer's queue key.
    for (const role of peerKeyRoles) {
      acknowledge(
        role,
        `AwsSolutions-IAM5[Resource::arn:aws:kms:${peerRegion}:${this.account}:key/*]`,
        "The peer region's queue key is created by the peer's stack with a random id, and stacks " +
          'never reference each other across regions; the statement is limited to this account and ' +
          'the peer region, to the key with alias alias/cognito-relay-queues (kms:ResourceAliases) ' +
          'and to use through SQS in that region (kms:ViaService), for sending to the peer inbound queue.',
      );
    }
  }

  private buildWebAcl(cfg: RelayConfig): wafv2.CfnWebACL {
    const ipSets = (kind: 'allow' | 'deny', cidrs: string[]): wafv2.CfnWebACL.StatementProperty[] => {
      const v4 = cidrs.filter((c) => !c.includes(':'));
      const v6 = cidrs.filter((c) => c.includes(':'));
      const statements: wafv2.CfnWebACL.StatementProperty[] = [];
      // The IPv4 set always exists (possibly empty) so the list can be edited in the console.
      const setV4 = new wafv2.CfnIPSet(this, `${kind === 'allow' ? 'Allow' : 'Deny'}IpSetV4`, {
        name: `cognito-relay-${kind}-v4`,
        scope: 'REGIONAL',
        ipAddressVersion: 'IPV4',
        addresses: v4,
        description: `cognito-relay ${kind} list IPv4`,
      });
      statements.push({ ipSetReferenceStatement: { arn: setV4.attrArn } });
      if (v6.length > 0) {
        const setV6 = new wafv2.CfnIPSet(this, `${kind === 'allow' ? 'Allow' : 'Deny'}IpSetV6`, {
          name: `cognito-relay-${kind}-v6`,
          scope: 'REGIONAL',
          ipAddressVersion: 'IPV6',
          addresses: v6,
          description: `cognito-relay ${kind} list IPv6`,
        });
        statements.push({ ipSetReferenceStatement: { arn: setV6.attrArn } });
      }
      return statements;
    };
    const anyOf = (s: wafv2.CfnWebACL.StatementProperty[]): wafv2.CfnWebACL.StatementProperty =>
      s.length === 1 ? s[0] : { orStatement: { statements: s } };
    const visibility = (metricName: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
      metricName,
    });
    return new wafv2.CfnWebACL(this, 'WebAcl', {
      name: 'cognito-relay',
      description: 'cognito-relay: deny list, allow list, per-IP rate limit',
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('cognito-relay'),
      // Blocked callers get a Cognito-shaped error the SDKs understand.
      customResponseBodies: {
        TooManyRequests: {
          contentType: 'APPLICATION_JSON',
          content: '{"__type":"TooManyRequestsException","message":"Too many requests"}',
        },
        Forbidden: {
          contentType: 'APPLICATION_JSON',
          content: '{"__type":"NotAuthorizedException","message":"Request blocked"}',
        },
      },
      rules: [
        {
          name: 'deny-ips',
          priority: 0,
          action: { block: { customResponse: { responseCode: 403, customResponseBodyKey: 'Forbidden' } } },
          statement: anyOf(ipSets('deny', cfg.waf.denyCidrs)),
          visibilityConfig: visibility('cognito-relay-deny-ips'),
        },
        {
          name: 'allow-ips',
          priority: 1,
          action: { allow: {} }, // terminates: listed callers skip the rate rule
          statement: anyOf(ipSets('allow', cfg.waf.allowCidrs)),
          visibilityConfig: visibility('cognito-relay-allow-ips'),
        },
        {
          name: 'rate-per-ip',
          priority: 2,
          action: {
            block: { customResponse: { responseCode: 400, customResponseBodyKey: 'TooManyRequests' } },
          },
          statement: {
            rateBasedStatement: {
              limit: cfg.waf.ratePerIpPer5Min,
              aggregateKeyType: 'IP',
              evaluationWindowSec: 300,
            },
          },
          visibilityConfig: visibility('cognito-relay-rate-per-ip'),
        },
      ],
    });
  }
}

/** The Admin actions the replicator replays on its own pool (and ListUsers to find users by attribute). */
export const REPLICATOR_COGNITO_ACTIONS = [
  'AdminCreateUser',
  'AdminSetUserPassword',
  'AdminConfirmSignUp',
  'AdminGetUser',
  'AdminUpdateUserAttributes',
  'AdminDeleteUserAttributes',
  'AdminDeleteUser',
  'AdminSetUserMFAPreference',
  'AdminSetUserSettings',
  'AdminUserGlobalSignOut',
  'AdminEnableUser',
  'AdminDisableUser',
  'ListUsers',
];
