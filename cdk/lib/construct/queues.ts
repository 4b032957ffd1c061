/**
 * The replication queues of a region: the inbound FIFO queue (events from the peer), its DLQ,
 * the fallback queue (events this region could not send to the peer), and the KMS key that
 * encrypts all three. Also the inbound queue's and the key's resource policies, which admit only
 * the peer's proxy and replicator and this region's operator as senders.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  FALLBACK_QUEUE_NAME,
  INBOUND_DLQ_NAME,
  INBOUND_QUEUE_NAME,
  QUEUE_KEY_ALIAS,
  RelayConfig,
  operatorRoleName,
  proxyRoleName,
  queueName,
  replicatorRoleName,
  roleArn,
} from '../config';

/**
 * Failed attempts of ONE event before the replicator dead-letters it itself, with the reason
 * (`RELAY_MAX_RECEIVES`). The replicator counts these per event in the state table: an SQS
 * receive count is not the event's own failures, because when one event of a FIFO message group
 * fails, the later events of that group are handed back with it (unattempted) and their receive
 * counts rise too. Counting receives would dead-letter innocent events behind one bad one.
 */
export const MAX_RECEIVES = 5;

/**
 * The replicator's own hard cap on deliveries of one event, whatever the reason
 * (`RELAY_MAX_DELIVERIES`): an event held back again and again behind others of its group is
 * dead-lettered by the replicator, with the reason, after this many receives.
 */
export const MAX_DELIVERIES = 40;

/**
 * The inbound queue's redrive policy: a safety net ABOVE the replicator's own caps
 * (MAX_RECEIVES failed attempts, MAX_DELIVERIES deliveries), so in normal operation the
 * replicator always dead-letters an event itself, with a reason, before SQS would. SQS only
 * moves an event here when the replicator cannot run its own accounting at all (it crashes on
 * that batch, or cannot reach the state table), after 50 receives x 6 min visibility = ~5 h,
 * well inside the 14-day retention.
 */
export const INBOUND_MAX_RECEIVE_COUNT = 50;

/** Seconds the replicator Lambda may run; the inbound queue's visibility timeout is 6x this. */
export const REPLICATOR_TIMEOUT_S = 60;

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayQueues {
  public readonly key: kms.Key;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly inboundQueue: sqs.Queue;
  public readonly fallbackQueue: sqs.Queue;

  constructor(scope: Construct, cfg: RelayConfig, region: string) {
    this.key = new kms.Key(scope, 'QueueKey', {
      alias: QUEUE_KEY_ALIAS,
      description: 'cognito-relay: encrypts the replication queues',
      enableKeyRotation: true,
      // Kept with the queues it decrypts (a retained queue's events are unreadable without it),
      // except when the deploy that created it rolls back.
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    const fifoCommon: Partial<sqs.QueueProps> = {
      fifo: true,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      dataKeyReuse: Duration.minutes(5),
      retentionPeriod: Duration.days(14),
      enforceSSL: true,
      // They can hold events not yet applied or forwarded: kept when the stack is deleted (and on
      // replacement), but deleted when the deploy that created them rolls back (a failed first
      // deploy can be retried: RetainExceptOnCreate). Their names carry the region's queueGeneration, so a recreated stack uses
      // new names next to the retained queues (config.ts, README).
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    };
    this.deadLetterQueue = new sqs.Queue(scope, 'InboundDeadLetterQueue', {
      ...fifoCommon,
      queueName: queueName(cfg, region, INBOUND_DLQ_NAME),
    });
    this.inboundQueue = new sqs.Queue(scope, 'InboundQueue', {
      ...fifoCommon,
      queueName: queueName(cfg, region, INBOUND_QUEUE_NAME),
      // The event id is the deduplication id; ordering is per user (MessageGroupId), so
      // high-throughput FIFO (dedup and throughput per message group) fits.
      contentBasedDeduplication: false,
      deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      visibilityTimeout: Duration.seconds(6 * REPLICATOR_TIMEOUT_S),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: INBOUND_MAX_RECEIVE_COUNT },
    });
    this.fallbackQueue = new sqs.Queue(scope, 'FallbackQueue', {
      ...fifoCommon,
      queueName: queueName(cfg, region, FALLBACK_QUEUE_NAME),
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
  }

  /**
   * Only the peer's proxy (mutations), the peer's replicator (fallback forwarding) and this
   * region's operator role (DLQ redrive) may put events into this region's inbound queue. The
   * roles are matched by aws:PrincipalArn in a condition, not named as principals: a principal
   * ARN must exist when the policy is written (the peer's roles may not exist yet on the first
   * deploy) and is pinned to the role's unique id (a recreated role would silently stop
   * matching); a condition on the ARN string has neither problem.
   */
  restrictSenders(cfg: RelayConfig, region: string, peerRegion: string): void {
    const inboundSenders = [
      roleArn(cfg, proxyRoleName(peerRegion)),
      roleArn(cfg, replicatorRoleName(peerRegion)),
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
    this.key.addToResourcePolicy(
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
  }
}
