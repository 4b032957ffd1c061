/**
 * What the proxy and replicator roles may do beyond their own logs, and the operator role
 * relayctl assumes. Least privilege: each statement names the actions the binaries call and the
 * resources they call them on.
 */
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import {
  LIMITS_TABLE_NAME,
  QUEUE_KEY_ALIAS,
  RegionConfig,
  RelayConfig,
  inboundQueueArn,
  operatorRoleName,
} from '../config';
import { ManifestRole, deployedRows } from '../permissions';
import { RelayEventStream } from './event-stream';
import { RelayFunctions } from './functions';
import { RelayQueues } from './queues';
import { RelaySecrets } from './secrets';
import { RelayState } from './state';

/** The Admin actions the replicator replays on its own pool (and ListUsers to find users by attribute). */
export const REPLICATOR_COGNITO_ACTIONS = [
  'AdminCreateUser',
  'AdminSetUserPassword',
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

export interface RelayPermissionsProps {
  readonly config: RelayConfig;
  readonly self: RegionConfig;
  readonly peer: RegionConfig;
  readonly queues: RelayQueues;
  readonly state: RelayState;
  readonly secrets: RelaySecrets;
  readonly functions: RelayFunctions;
  readonly eventStream: RelayEventStream;
}

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayPermissions {
  public readonly operatorRole: iam.Role;
  /** The ARN of every symbolic resource of the manifest, in this region. */
  public readonly resources: Record<string, string>;

  constructor(scope: Construct, props: RelayPermissionsProps) {
    const { config: cfg, self, peer, queues, state, secrets, functions } = props;
    const region = self.region;
    const { proxyRole, replicatorRole } = functions;
    const queueKey = queues.key;
    const userPool = secrets.userPool;

    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'SendToPeerInboundAndOwnFallback',
        actions: ['sqs:SendMessage'],
        resources: [inboundQueueArn(cfg, peer.region), queues.fallbackQueue.queueArn],
      }),
    );
    // After one event went to the fallback queue, the proxy sends the user's later events there
    // too until the queue is empty, which it checks with GetQueueAttributes (queue depth).
    // Without it an instance would stay on the fallback path for good.
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OwnFallbackDepth',
        actions: ['sqs:GetQueueAttributes'],
        resources: [queues.fallbackQueue.queueArn],
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
        resources: [secrets.clientsSecret.secretArn, secrets.replicationKeyArn, secrets.refreshKeyArn],
      }),
    );
    // The standby sign-in bridge (issue 10): the proxy signs assertions with this region's bridge
    // key and mints tokens of its home pool through the public CUSTOM_AUTH flow of its own app
    // client (InitiateAuth / RespondToAuthChallenge need no IAM permission; the auth-trigger
    // Lambda checks the assertion). No Admin action.
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadBridgeKey',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [secrets.bridgeKeyArn],
      }),
    );
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadDrainSwitch',
        actions: ['ssm:GetParameter'],
        resources: [state.drain.parameterArn],
      }),
    );
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'HealthDescribeOwnPool',
        actions: ['cognito-idp:DescribeUserPool'],
        resources: [userPool.userPoolArn],
      }),
    );
    // Half-finished sign-ups (crates/proxy/src/signups.rs): read a replicated placeholder and
    // delete it before the real SignUp that makes this pool send the code. Own pool only.
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'FinishHalfSignUps',
        actions: ['cognito-idp:AdminGetUser', 'cognito-idp:ListUsers', 'cognito-idp:AdminDeleteUser'],
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
        resources: [queues.deadLetterQueue.queueArn],
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
        resources: [secrets.replicationKeyArn],
      }),
    );
    // The state table: read and write single items by key, nothing else (no Query/Scan/Delete/
    // Update; the items expire through TTL). Not grantReadWriteData(), which grants far more.
    for (const role of [proxyRole, replicatorRole]) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'StateTableItems',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
          resources: [state.stateTable.tableArn],
        }),
      );
    }

    // The limits table: the proxy adds to a counter (UpdateItem ADD) and reads one (GetItem);
    // the replicator never touches it.
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'LimitsTableCounters',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [state.limitsTable.tableArn],
      }),
    );
    // The other region's limits table (fixed name, built from strings: no cross-region
    // reference): failed sign-ins and locks count in both regions (RELAY_PEER_LIMITS_TABLE).
    proxyRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PeerLimitsTableCounters',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [`arn:aws:dynamodb:${peer.region}:${cfg.account}:table/${LIMITS_TABLE_NAME}`],
      }),
    );

    // For relayctl against this region: DLQ inspect and redrive (receive from the DLQ, send to the
    // inbound queue, delete from the DLQ), queue depths, and the drain switch. Assumable by
    // principals of this account (their own IAM policy must allow sts:AssumeRole on it), with MFA.
    this.operatorRole = new iam.Role(scope, 'OperatorRole', {
      roleName: operatorRoleName(region),
      description:
        'cognito-relay operator (relayctl): status, failover/failback, DLQ redrive, drain switch, reconcile/backfill',
      assumedBy: new iam.AccountRootPrincipal().withConditions({
        Bool: { 'aws:MultiFactorAuthPresent': 'true' },
      }),
      maxSessionDuration: Duration.hours(1),
    });
    this.resources = resourceArns(props);
    grantFromManifest(this.operatorRole, 'operator', this.resources);
  }
}

/**
 * The ARN (or token) of each symbolic resource the permission manifest names, in this region.
 * `own-log-group` is per role and is not here.
 */
export function resourceArns(p: RelayPermissionsProps): Record<string, string> {
  const { config: cfg, peer, queues, state, secrets } = p;
  return {
    'own-pool': secrets.userPool.userPoolArn,
    'own-inbound-queue': queues.inboundQueue.queueArn,
    'own-dlq': queues.deadLetterQueue.queueArn,
    'own-fallback-queue': queues.fallbackQueue.queueArn,
    'peer-inbound-queue': inboundQueueArn(cfg, peer.region),
    'own-queue-key': queues.key.keyArn,
    'peer-queue-key': `arn:aws:kms:${peer.region}:${cfg.account}:key/*`,
    'clients-secret': secrets.clientsSecret.secretArn,
    'replication-key': secrets.replicationKeyArn,
    'refresh-key': secrets.refreshKeyArn,
    'bridge-key': secrets.bridgeKeyArn,
    'drain-parameter': state.drain.parameterArn,
    'sign-up-policy-parameter': p.eventStream.policyParameter.parameterArn,
    'state-table': state.stateTable.tableArn,
    'limits-table': state.limitsTable.tableArn,
    'peer-limits-table': `arn:aws:dynamodb:${peer.region}:${cfg.account}:table/${LIMITS_TABLE_NAME}`,
    'event-bus': p.eventStream.bus.eventBusArn,
    // relayctl (operator): CloudWatch GetMetricData has no resource-level permissions; the
    // Route 53 health checks live in the global stack (ids unknown here), and Route 53 is global.
    'all-metrics': '*',
    'health-checks': 'arn:aws:route53:::healthcheck/*',
  };
}

/** `own-fallback-queue` -> `OwnFallbackQueue` (statement ids). */
function sid(symbol: string): string {
  return symbol
    .split(/[^a-zA-Z0-9]+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

/**
 * Grants `role` exactly the manifest's rows for `manifestRole`: one statement per resource, its
 * actions sorted. The queue key is limited by its alias, as everywhere else.
 */
export function grantFromManifest(role: iam.Role, manifestRole: ManifestRole, arns: Record<string, string>): void {
  const byResource = new Map<string, Set<string>>();
  for (const row of deployedRows(manifestRole)) {
    if (!(row.resource in arns)) {
      throw new Error(`permissions.json: ${manifestRole} needs ${row.action} on '${row.resource}', which the stack does not map`);
    }
    const set = byResource.get(row.resource) ?? new Set<string>();
    set.add(row.action);
    byResource.set(row.resource, set);
  }
  for (const [resource, actions] of [...byResource.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: sid(resource),
        actions: [...actions].sort(),
        resources: [arns[resource]],
        conditions:
          resource === 'own-queue-key'
            ? { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': QUEUE_KEY_ALIAS } }
            : undefined,
      }),
    );
  }
}
