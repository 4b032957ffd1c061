import { Duration } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE } from '../config';
import { AUTH_TRIGGER_P99_THRESHOLD_MS, DEPENDENCY_WAITING_THRESHOLD_S } from './alarms';

export interface RelayDashboardProps {
  readonly dashboardName: string;
  readonly api: apigw.RestApi;
  readonly inboundQueue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly fallbackQueue: sqs.IQueue;
  readonly alarms: cw.IAlarm[];
  /** Where Route 53 publishes health-check metrics (us-east-1). */
  readonly healthCheckRegion: string;
  /** This region and its peer: lag, DLQ and throttles are shown for both, side by side. */
  readonly region: string;
  readonly peerRegion: string;
  /** The peer's dead-letter queue name (its generation), for its depth. */
  readonly peerDeadLetterQueueName: string;
  /** The bridge's auth-trigger Lambda. */
  readonly authTrigger: lambda.IFunction;
}

const PERIOD = Duration.minutes(1);

/** One metric per value of the `Action` dimension, whatever actions the binaries emit. */
function perAction(metricName: string, stat: string, label: string): cw.MathExpression {
  return new cw.MathExpression({
    expression: `SEARCH('{${METRIC_NAMESPACE},Action} MetricName="${metricName}"', '${stat}', 60)`,
    label,
    period: PERIOD,
  });
}

function relay(metricName: string, statistic: string, label: string, region?: string): cw.Metric {
  return new cw.Metric({ namespace: METRIC_NAMESPACE, metricName, statistic, period: PERIOD, label, region });
}

/** The per-region operations dashboard. */
export class RelayDashboard extends Construct {
  public readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: RelayDashboardProps) {
    super(scope, id);
    const w = 8;
    const h = 6;
    const qMetric = (q: sqs.IQueue, label: string, f: 'visible' | 'age') =>
      f === 'visible'
        ? q.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: PERIOD, label })
        : q.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: PERIOD, label });

    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
    });
    const { region, peerRegion } = props;
    // Both directions of replication, side by side: the lag of events applied HERE (written in
    // the peer) and of events applied in the PEER (written here). Cross-region metrics.
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: `Replication lag p99 (ms): ${peerRegion} -> ${region} | ${region} -> ${peerRegion}`,
        left: [
          relay('ReplicationLagMs', 'p99', `into ${region}`, region),
          relay('ReplicationLagMs', 'p99', `into ${peerRegion}`, peerRegion),
        ],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Backlog (messages visible)',
        left: [
          qMetric(props.inboundQueue, 'inbound', 'visible'),
          qMetric(props.fallbackQueue, 'fallback', 'visible'),
        ],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Oldest event age (s)',
        left: [qMetric(props.inboundQueue, 'inbound', 'age'), qMetric(props.fallbackQueue, 'fallback', 'age')],
        width: w,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: `DLQ depth: ${region} | ${peerRegion}`,
        left: [
          qMetric(props.deadLetterQueue, `DLQ ${region}`, 'visible'),
          new cw.Metric({
            namespace: 'AWS/SQS',
            metricName: 'ApproximateNumberOfMessagesVisible',
            dimensionsMap: { QueueName: props.peerDeadLetterQueueName },
            statistic: 'Maximum',
            period: PERIOD,
            region: peerRegion,
            label: `DLQ ${peerRegion}`,
          }),
        ],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Fallback: events sent to it | forwarded to the peer',
        left: [
          relay('ReplicationFallback', 'Sum', 'sent to the fallback queue'),
          props.fallbackQueue.metricNumberOfMessagesDeleted({ period: PERIOD, statistic: 'Sum', label: 'forwarded (deleted after the send)' }),
        ],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: `Cognito throttles and replicator retries: ${region} | ${peerRegion}`,
        left: [
          relay('CognitoThrottled', 'Sum', `throttled ${region}`, region),
          relay('CognitoThrottled', 'Sum', `throttled ${peerRegion}`, peerRegion),
        ],
        right: [
          relay('ApplyRetries', 'Sum', `retries ${region}`, region),
          relay('ApplyRetries', 'Sum', `retries ${peerRegion}`, peerRegion),
        ],
        width: w,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Replication applied per action',
        left: [perAction('ReplicationApplied', 'Sum', '')],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Replication failed per action',
        left: [perAction('ReplicationFailed', 'Sum', '')],
        width: w,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Proxy requests per action',
        left: [perAction('ProxyRequests', 'Sum', '')],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Proxy latency p99 per action (ms)',
        left: [perAction('ProxyLatencyMs', 'p99', '')],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Proxy errors per action',
        left: [perAction('ProxyErrors', 'Sum', '')],
        width: w,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'API Gateway',
        left: [
          props.api.metricCount({ period: PERIOD, label: 'requests' }),
          props.api.metricClientError({ period: PERIOD, label: '4xx' }),
          props.api.metricServerError({ period: PERIOD, label: '5xx' }),
        ],
        right: [props.api.metricLatency({ period: PERIOD, statistic: 'p99', label: 'latency p99 (ms)' })],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Lost events',
        left: [relay('ReplicationLost', 'Sum', 'lost')],
        width: w,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Route 53 health checks (1 = healthy)',
        // Health-check ids are generated by Route 53 and live in the global stack: a search in
        // us-east-1 shows them without a cross-region reference.
        left: [
          new cw.MathExpression({
            expression: `SEARCH('{AWS/Route53,HealthCheckId} MetricName="HealthCheckStatus"', 'Minimum', 60)`,
            searchRegion: props.healthCheckRegion,
            label: '',
            period: PERIOD,
          }),
        ],
        leftYAxis: { min: 0, max: 1 },
        width: w,
        height: h,
      }),
    );
    // The standby sign-in bridge (issue 10).
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Bridge: SRP sign-ins and refreshes bridged',
        left: [relay('BridgeSrpSignIns', 'Sum', 'SRP sign-ins'), relay('BridgeRefreshes', 'Sum', 'refreshes')],
        width: 12,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Bridge: refusals per reason',
        left: [
          new cw.MathExpression({
            expression: `SEARCH('{${METRIC_NAMESPACE},Reason} MetricName="BridgeRefusals"', 'Sum', 60)`,
            label: '',
            period: PERIOD,
          }),
        ],
        width: 12,
        height: h,
      }),
    );
    // What the processes wait for, and the bridge's trigger (Cognito gives it 5 s).
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Waiting for a dependency (s, per Dependency)',
        left: [
          new cw.MathExpression({
            expression: `SEARCH('{${METRIC_NAMESPACE},Dependency} MetricName="DependencyWaitingSeconds"', 'Maximum', 60)`,
            label: '',
            period: PERIOD,
          }),
        ],
        leftAnnotations: [{ value: DEPENDENCY_WAITING_THRESHOLD_S, label: 'alarm (ReplicatorWaiting)' }],
        width: 12,
        height: h,
      }),
      new cw.GraphWidget({
        title: 'Auth trigger: errors, throttles | duration p99 (ms)',
        left: [
          props.authTrigger.metricErrors({ period: PERIOD, statistic: 'Sum', label: 'errors' }),
          props.authTrigger.metricThrottles({ period: PERIOD, statistic: 'Sum', label: 'throttles' }),
        ],
        right: [props.authTrigger.metricDuration({ period: PERIOD, statistic: 'p99', label: 'duration p99' })],
        rightAnnotations: [
          { value: AUTH_TRIGGER_P99_THRESHOLD_MS, label: 'alarm (AuthTriggerSlow)' },
          { value: 5000, label: "Cognito's 5 s limit" },
        ],
        width: 12,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cw.AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 24, height: 4 }),
    );
  }
}
