/**
 * One region of cognito-relay: API Gateway + WAF in front of the proxy Lambda, the inbound
 * replication queue (+ DLQ) drained by the replicator Lambda into the region's existing pool,
 * the fallback queue, secrets, the drain switch, alarms and a dashboard. Each concern is a part
 * or construct under `../construct/`; this file wires them in order.
 */
import { CfnOutput, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { LambdaFunctionName } from '../assets';
import { acknowledge } from '../nag';
import { deployedRows } from '../permissions';
import { INBOUND_DLQ_NAME, RelayConfig, queueName, regionPair, regionalDomainName } from '../config';
import { RelayAlarms } from '../construct/alarms';
import { RelayApi } from '../construct/api';
import { RelayBridge } from '../construct/bridge';
import { RelayDashboard } from '../construct/dashboard';
import { RelayEventStream } from '../construct/event-stream';
import { RelayFunctions } from '../construct/functions';
import { RelayPermissions } from '../construct/permissions';
import { RelayPreflight } from '../construct/preflight';
import { RelayQueues } from '../construct/queues';
import { RelaySecrets } from '../construct/secrets';
import { RelayState } from '../construct/state';
import { RelayWaf } from '../construct/waf';

export { REPLICATOR_COGNITO_ACTIONS } from '../construct/permissions';

/** Construct id of the singleton provider Lambda of CDK's AwsCustomResource. */
const AWS_CUSTOM_RESOURCE_PROVIDER_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

export type RegionRole = 'primary' | 'standby';

export interface RegionalStackProps extends StackProps {
  readonly config: RelayConfig;
  /** Which of the two configured regions this stack deploys. */
  readonly role: RegionRole;
  /** Absolute folder of each function's build (holding its `bootstrap`), see assets.ts. */
  readonly lambdaAssets: Record<LambdaFunctionName, string>;
}

/**
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
  public readonly queues: RelayQueues;
  public readonly state: RelayState;
  public readonly secrets: RelaySecrets;
  public readonly functions: RelayFunctions;
  public readonly permissions: RelayPermissions;
  public readonly bridge: RelayBridge;
  public readonly preflight: RelayPreflight;

  private readonly props: RegionalStackProps;

  constructor(scope: Construct, id: string, props: RegionalStackProps) {
    const cfg = props.config;
    const { self, peer } = regionPair(cfg, props.role);
    super(scope, id, {
      ...props,
      env: { account: cfg.account, region: self.region },
      description: `cognito-relay ${props.role} region ${self.region} (peer ${peer.region})`,
    });
    this.props = props;
    const region = self.region;
    const regionalName = regionalDomainName(cfg, region);

    this.queues = new RelayQueues(this, cfg, region);
    this.inboundQueue = this.queues.inboundQueue;
    this.deadLetterQueue = this.queues.deadLetterQueue;
    this.fallbackQueue = this.queues.fallbackQueue;
    this.state = new RelayState(this);
    this.stateTable = this.state.stateTable;
    this.limitsTable = this.state.limitsTable;
    this.secrets = new RelaySecrets(this, cfg, self.userPoolId);
    // The operator-created secrets must exist, or the deploy fails here (not the traffic later).
    // The stateful, fixed-name or deletion-protected resources wait for the checks, so a missing
    // secret fails the first deploy before any of them exists.
    this.preflight = new RelayPreflight(this, 'Preflight', {
      secrets: [
        { id: 'ReplicationKey', name: cfg.replicationKeySecretName, arnPattern: this.secrets.replicationKeyArn },
        { id: 'RefreshKey', name: cfg.refreshKeySecretName, arnPattern: this.secrets.refreshKeyArn },
        { id: 'BridgeKey', name: cfg.bridgeKeySecretName, arnPattern: this.secrets.bridgeKeyArn },
      ],
    });
    this.preflight.before(
      this.state.stateTable,
      this.queues.key,
      this.queues.deadLetterQueue,
      this.queues.inboundQueue,
      this.queues.fallbackQueue,
    );
    this.functions = new RelayFunctions(this, {
      config: cfg,
      self,
      peer,
      lambdaAssets: props.lambdaAssets,
      queues: this.queues,
      state: this.state,
      secrets: this.secrets,
    });
    this.proxyFunction = this.functions.proxy;
    this.replicatorFunction = this.functions.replicator;
    this.eventStream = new RelayEventStream(this, 'EventStream', {
      region,
      proxy: this.proxyFunction,
      config: cfg.eventStream,
      signUpPolicy: cfg.signUpPolicy,
    });
    const permissions = (this.permissions = new RelayPermissions(this, {
      config: cfg,
      self,
      peer,
      queues: this.queues,
      state: this.state,
      secrets: this.secrets,
      functions: this.functions,
      eventStream: this.eventStream,
    }));
    this.operatorRole = permissions.operatorRole;
    this.bridge = new RelayBridge(this, {
      config: cfg,
      self,
      userPool: this.secrets.userPool,
      lambdaAssets: props.lambdaAssets,
      resources: permissions.resources,
      regionalClientId: this.secrets.regionalClient.userPoolClientId,
    });
    // The bridge's proxy side: the app pool (the primary's, same in both regions) whose SRP
    // name the proxy answers for, and the key it signs assertions with.
    this.proxyFunction.addEnvironment('RELAY_APP_USER_POOL_ID', cfg.primary.userPoolId);
    this.proxyFunction.addEnvironment('RELAY_BRIDGE_KEY_SECRET_ID', cfg.bridgeKeySecretName);
    this.queues.restrictSenders(cfg, region, peer.region);

    this.api = new RelayApi(this, { config: cfg, self, proxy: this.proxyFunction }).api;
    new RelayWaf(this, cfg, this.api);

    const { alarms } = new RelayAlarms(this, {
      config: cfg,
      region,
      queues: this.queues,
      api: this.api,
      replicator: this.replicatorFunction,
      authTrigger: this.bridge.trigger,
      eventStream: this.eventStream,
    });
    new RelayDashboard(this, 'Dashboard', {
      dashboardName: `cognito-relay-${region}`,
      api: this.api,
      inboundQueue: this.inboundQueue,
      deadLetterQueue: this.deadLetterQueue,
      fallbackQueue: this.fallbackQueue,
      alarms,
      healthCheckRegion: cfg.globalRegion,
      region,
      peerRegion: peer.region,
      peerDeadLetterQueueName: queueName(cfg, peer.region, INBOUND_DLQ_NAME),
      authTrigger: this.bridge.trigger,
    });

    this.customResourceLogs();

    this.acknowledgeNagFindings(
      this.secrets.clientsSecret,
      [this.functions.proxyRole, this.functions.replicatorRole],
      peer.region,
    );

    // ---------------------------------------------------------------- outputs
    new CfnOutput(this, 'RegionalEndpoint', {
      value: `https://${regionalName}`,
      description: 'This region only (health checks, drills). Apps use the global endpoint.',
    });
    new CfnOutput(this, 'HealthUrl', { value: `https://${regionalName}/health` });
    new CfnOutput(this, 'RegionalClientId', {
      value: this.secrets.regionalClient.userPoolClientId,
      description: 'The app client (with secret) the proxy maps the public ClientId(s) to here.',
    });
    new CfnOutput(this, 'InboundQueueUrl', { value: this.inboundQueue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'FallbackQueueUrl', { value: this.fallbackQueue.queueUrl });
    new CfnOutput(this, 'DrainParameter', { value: this.state.drain.parameterName });
    new CfnOutput(this, 'StateTableName', { value: this.stateTable.tableName });
    new CfnOutput(this, 'LimitsTableName', { value: this.limitsTable.tableName });
    new CfnOutput(this, 'OperatorRoleArn', {
      value: this.operatorRole.roleArn,
      description: 'relayctl assumes this role (with MFA) for DLQ redrive and the drain switch.',
    });
    new CfnOutput(this, 'ProxyLogGroup', { value: this.functions.proxyLogs.logGroupName });
    new CfnOutput(this, 'ReplicatorLogGroup', { value: this.functions.replicatorLogs.logGroupName });
    new CfnOutput(this, 'AuthTriggerLogGroup', { value: this.bridge.logs.logGroupName });
  }

  /**
   * CDK's AwsCustomResource provider (DescribeUserPoolClient for the client secret, the bridge
   * check) would log to a group Lambda creates without retention: point it at one with retention.
   */
  private customResourceLogs(): void {
    const provider = this.node.tryFindChild(AWS_CUSTOM_RESOURCE_PROVIDER_ID) as lambda.Function | undefined;
    if (!provider) return;
    const group = new logs.LogGroup(this, 'CustomResourceLogs', {
      retention: this.props.config.logRetention,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    (provider.node.defaultChild as lambda.CfnFunction).addPropertyOverride('LoggingConfig', {
      LogGroup: group.logGroupName,
    });
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
      this.queues.fallbackQueue,
      'AwsSolutions-SQS3',
      'The fallback queue holds events while the peer inbound queue is unreachable; the replicator ' +
        'forwards it through an event source, and every failed forward attempt raises the receive count, so a DLQ would dead-letter events merely because ' +
        'the peer outage lasted long. Its backlog age is alarmed (FallbackBacklogOld) instead.',
    );
    acknowledge(
      this.state.limitsTable,
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
    // relayctl's reads that IAM cannot scope further (operator role, from the manifest).
    const operatorResources = new Set(deployedRows('operator').map((r) => r.resource));
    if (operatorResources.has('all-metrics')) {
      acknowledge(
        this.operatorRole,
        'AwsSolutions-IAM5[Resource::*]',
        'cloudwatch:GetMetricData (relayctl status on the Lambda deployment) supports no resource-level ' +
          'permissions: AWS requires "*". It reads metrics only, in the one statement that grants nothing else.',
      );
    }
    if (operatorResources.has('health-checks')) {
      acknowledge(
        this.operatorRole,
        'AwsSolutions-IAM5[Resource::arn:aws:route53:::healthcheck/*]',
        'route53:GetHealthCheckStatus on the health checks of the global stack, whose ids Route 53 ' +
          'generates and which no regional stack may reference: read-only, Route 53 health checks only.',
      );
    }
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
    // relayctl (operator role): CloudWatch GetMetricData cannot be limited to resources; Route 53
    // health checks belong to the global stack, read-only (GetHealthCheckStatus).
    acknowledge(
      this.operatorRole,
      'AwsSolutions-IAM5[Resource::*]',
      'cloudwatch:GetMetricData (relayctl status and the failover lag check) supports no resource-level ' +
        'permissions; the statement grants that read-only action only.',
    );
    acknowledge(
      this.operatorRole,
      'AwsSolutions-IAM5[Resource::arn:aws:route53:::healthcheck/*]',
      'route53:GetHealthCheckStatus (relayctl failover/failback) on the health checks of the global ' +
        'stack, whose ids this regional stack cannot reference; read-only.',
    );
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
}
