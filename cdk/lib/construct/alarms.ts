/**
 * The region's alarms, each on the region's alarm topic (e-mail), with OK notifications too.
 * Names are `cognito-relay-<region>-<id>`; the runbooks are indexed by them.
 */
import { Duration } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE, RelayConfig } from '../config';
import { AlarmTopic } from './alarm-topic';
import { RelayEventStream } from './event-stream';
import { MAX_DELIVERIES, MAX_RECEIVES, RelayQueues } from './queues';

export interface RelayAlarmsProps {
  readonly config: RelayConfig;
  readonly region: string;
  readonly queues: RelayQueues;
  readonly api: apigw.RestApi;
  readonly replicator: lambda.IFunction;
  /** The bridge's Define/Create/Verify Auth Challenge Lambda (Cognito waits 5 s for it). */
  readonly authTrigger: lambda.IFunction;
  readonly eventStream: RelayEventStream;
}

/** `DependencyWaitingSeconds` above this (a dependency unreachable for 5 minutes) pages. */
export const DEPENDENCY_WAITING_THRESHOLD_S = 300;
/** Cognito gives a trigger 5 s; p99 above this is close enough to page before users fail. */
export const AUTH_TRIGGER_P99_THRESHOLD_MS = 4000;

/**
 * The highest `DependencyWaitingSeconds` of any `Dependency` (CloudWatch Metrics Insights: one
 * series over every dependency the binaries report, whatever names they add later). The
 * replicator under Lambda writes it with the dimension set [Dependency] only, after each batch,
 * for each dependency it is waiting for (the replication key, the peer inbound queue), with the
 * seconds since the wait began.
 */
export function dependencyWaitingQuery(): cw.MathExpression {
  return new cw.MathExpression({
    expression: `SELECT MAX(DependencyWaitingSeconds) FROM SCHEMA("${METRIC_NAMESPACE}", Dependency)`,
    label: 'longest wait (s)',
    period: Duration.minutes(1),
  });
}

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayAlarms {
  public readonly alarms: cw.Alarm[] = [];

  constructor(scope: Construct, p: RelayAlarmsProps) {
    const cfg = p.config;
    const region = p.region;
    const alarmTopic = new AlarmTopic(scope, 'Alarms', { email: cfg.alarmEmail }).topic;
    const action = new cwActions.SnsAction(alarmTopic);
    const relayMetric = (metricName: string, statistic: string, period = Duration.minutes(1)) =>
      new cw.Metric({ namespace: METRIC_NAMESPACE, metricName, statistic, period });
    const alarms = this.alarms;
    const alarm = (id: string, props: cw.AlarmProps) => {
      const a = new cw.Alarm(scope, id, { ...props, alarmName: `cognito-relay-${region}-${id}` });
      a.addAlarmAction(action);
      a.addOkAction(action);
      alarms.push(a);
      return a;
    };
    alarm('DlqNotEmpty', {
      alarmDescription:
        `Replication events are in the DLQ (an event failed ${MAX_RECEIVES} times, or was delivered ` +
        `${MAX_DELIVERIES} times): inspect and redrive (relayctl dlq).`,
      metric: p.queues.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
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
      metric: p.queues.inboundQueue.metricApproximateAgeOfOldestMessage({
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
      metric: p.queues.fallbackQueue.metricApproximateAgeOfOldestMessage({
        statistic: 'Maximum',
        period: Duration.minutes(1),
      }),
      threshold: 300,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      // 3 of 5 minutes: one slow minute of the peer is not a page.
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('Proxy5xxRate', {
      alarmDescription: `More than ${cfg.proxy5xxRateThreshold * 100}% of requests answer 5xx.`,
      // The Average of API Gateway's 5XXError is the share of requests that answered 5xx.
      metric: p.api.metricServerError({ statistic: 'Average', period: Duration.minutes(1) }),
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
      metric: p.eventStream.droppedMetric.with({ period: Duration.minutes(1) }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      // 3 of 5 minutes: a bus hiccup that drops a few events once is not a page.
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('CognitoThrottling', {
      alarmDescription:
        'Cognito throttled the proxy or the replicator (TooManyRequestsException) in 3 of the last 5 minutes. ' +
        'Both emit CognitoThrottled with the dimension sets [Action] and [] (EMF): this alarm reads the ' +
        'dimensionless series, which counts both. Replicator throttles are retried (ApplyRetries).',
      metric: relayMetric('CognitoThrottled', 'Sum'),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('ReplicatorErrors', {
      alarmDescription:
        'Replicator invocations fail as a whole (not single events) in 3 of the last 5 minutes: the batch ' +
        'comes back and its events use up deliveries.',
      metric: p.replicator.metricErrors({ period: Duration.minutes(1) }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    // The value is already a duration (seconds since the wait began), so one datapoint over the
    // threshold is a real outage, not a blip. Under Lambda it is written only when a batch
    // arrives, and a returned batch comes back after the visibility timeout (6 minutes): 1 of
    // the last 10 minutes keeps the alarm up between two batches instead of flapping.
    alarm('ReplicatorWaiting', {
      alarmDescription:
        `The replicator has been waiting over ${DEPENDENCY_WAITING_THRESHOLD_S / 60} minutes for a dependency ` +
        '(DependencyWaitingSeconds, dimension Dependency: the replication key secret, the peer inbound queue). ' +
        'Nothing is applied or forwarded meanwhile. See runbooks/README.md ("waiting for") and relayctl status.',
      metric: dependencyWaitingQuery(),
      threshold: DEPENDENCY_WAITING_THRESHOLD_S,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 10,
      datapointsToAlarm: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    // The bridge's trigger: an error, a throttle or a timeout (Cognito waits 5 s) is a failed
    // bridged sign-in. It runs only while this region bridges, so missing data is normal.
    alarm('AuthTriggerErrors', {
      alarmDescription:
        'The auth-trigger Lambda (bridge Define/Create/Verify Auth Challenge) failed in 2 of the last 5 minutes: ' +
        'bridged sign-ins fail. See its log group and the bridge key secret.',
      metric: p.authTrigger.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 2,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('AuthTriggerSlow', {
      alarmDescription:
        `The auth-trigger Lambda's p99 duration is above ${AUTH_TRIGGER_P99_THRESHOLD_MS} ms in 3 of the last 5 minutes: ` +
        'Cognito gives a trigger 5 s, after which the sign-in fails. Cold starts, or a slow Secrets Manager.',
      metric: p.authTrigger.metricDuration({ period: Duration.minutes(1), statistic: 'p99' }),
      threshold: AUTH_TRIGGER_P99_THRESHOLD_MS,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    alarm('AuthTriggerThrottled', {
      alarmDescription:
        "The auth-trigger Lambda was throttled in 2 of the last 5 minutes: the account's concurrency in this region " +
        'is exhausted, and Cognito fails those sign-ins.',
      metric: p.authTrigger.metricThrottles({ period: Duration.minutes(1), statistic: 'Sum' }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 2,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    // With reserved concurrency, it is the replicator's ceiling: throttled invocations mean the
    // event sources want more than it may run (a backlog building). Without (the default), the
    // replicator shares the account's unreserved pool, and throttles mean that pool is exhausted.
    alarm('ReplicatorThrottled', {
      alarmDescription:
        cfg.replicatorReservedConcurrency > 0
          ? `The replicator hit its reserved concurrency (${cfg.replicatorReservedConcurrency}) in 3 of the last 5 minutes: ` +
            'raise replicatorReservedConcurrency in the parameter file if the backlog grows.'
          : "The replicator was throttled in 3 of the last 5 minutes: the account's unreserved concurrency in this " +
            'region is exhausted (no reservation: replicatorReservedConcurrency is 0). Raise the account quota, then ' +
            'reserve concurrency for the replicator (replicatorReservedConcurrency >= 4).',
      metric: p.replicator.metricThrottles({ period: Duration.minutes(1) }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
  }
}
