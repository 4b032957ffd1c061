/**
 * The region's own state: the replicator's state table (high-water marks, attempt counts), the
 * proxies' shared limits table (rate-limit counters) and the drain switch (an SSM parameter).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { DRAIN_PARAMETER_NAME, LIMITS_TABLE_NAME } from '../config';

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayState {
  public readonly stateTable: dynamodb.Table;
  public readonly limitsTable: dynamodb.Table;
  public readonly drain: ssm.StringParameter;

  constructor(scope: Construct) {
    // Per-user high-water marks (the replicator skips an event that is not newer than what it
    // already applied for that user: redelivery, DLQ redrive and fallback forwarding alike) and
    // per-event attempt counts (RELAY_MAX_RECEIVES / RELAY_MAX_DELIVERIES). Items expire
    // through the `ttl` attribute.
    this.stateTable = new dynamodb.Table(scope, 'StateTable', {
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
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });

    // Rate-limit and failed-sign-in counters shared by every proxy instance of the region
    // (RELAY_LIMITS_TABLE): one item per key and window, incremented with UpdateItem ADD, expiring
    // through `ttl` a window or two after it ends. On-demand: the load follows sign-in traffic.
    this.limitsTable = new dynamodb.Table(scope, 'LimitsTable', {
      tableName: LIMITS_TABLE_NAME,
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

    this.drain = new ssm.StringParameter(scope, 'DrainSwitch', {
      parameterName: DRAIN_PARAMETER_NAME,
      stringValue: 'false',
      description:
        'cognito-relay drain switch: "true" makes GET /health answer 503 so Route 53 fails over. ' +
        'Flip it with relayctl drain/undrain; a redeploy does not reset it unless this resource changes.',
      tier: ssm.ParameterTier.STANDARD,
    });
  }
}
