import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { EventStreamConfig, METRIC_NAMESPACE, SIGN_UP_POLICY_PARAMETER_NAME } from '../config';

export interface EventStreamProps {
  readonly region: string;
  readonly proxy: lambda.Function;
  readonly config: EventStreamConfig;
  /** The sign-up policy document (JSON), kept in an SSM parameter the proxy re-reads. */
  readonly signUpPolicy: string;
}

/** The `source` of the proxy's events (docs/event-stream.md). */
export const EVENT_SOURCE = 'cognito-relay.proxy';

/**
 * The enrichment layer's infrastructure: the EventBridge bus the proxy publishes request events
 * to (created, or an existing one), an example rule (sign-ups the policy refused → an SQS queue
 * a fraud team can read), the proxy's permissions and environment, and the SSM parameter
 * holding the sign-up policy. The drop alarm is made by the stack (its alarm topic).
 */
export class RelayEventStream extends Construct {
  public readonly bus: events.IEventBus;
  public readonly refusalsQueue: sqs.Queue;
  public readonly policyParameter: ssm.StringParameter;
  public readonly droppedMetric: cw.Metric;

  constructor(scope: Construct, id: string, props: EventStreamProps) {
    super(scope, id);
    const { config } = props;
    this.bus = config.existingBusArn
      ? events.EventBus.fromEventBusArn(this, 'Bus', config.existingBusArn)
      : new events.EventBus(this, 'Bus', { eventBusName: `cognito-relay-events-${props.region}` });
    this.bus.grantPutEventsTo(props.proxy);

    // Example rule with a target: every sign-up the policy refused (not dry-run ones).
    const dlq = new sqs.Queue(this, 'RefusalsDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.refusalsQueue = new sqs.Queue(this, 'RefusalsQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
    });
    new events.Rule(this, 'PolicyRefusalsRule', {
      eventBus: this.bus,
      description: 'cognito-relay example: sign-ups refused by the sign-up policy → a queue for review',
      eventPattern: {
        source: [EVENT_SOURCE],
        detailType: ['Cognito request'],
        detail: { outcome: ['relay_refused'], policy_dry_run: [false], policy_rule: [{ exists: true }] },
      },
      targets: [new eventTargets.SqsQueue(this.refusalsQueue, { deadLetterQueue: dlq, retryAttempts: 10 })],
    });

    this.policyParameter = new ssm.StringParameter(this, 'SignUpPolicy', {
      parameterName: SIGN_UP_POLICY_PARAMETER_NAME,
      description: 'cognito-relay sign-up policy (docs/sign-up-policy.md); the proxy re-reads it every 30 s',
      stringValue: props.signUpPolicy,
    });
    this.policyParameter.applyRemovalPolicy(RemovalPolicy.DESTROY);
    // GetParameter only (grantRead would add GetParameters, GetParameterHistory, DescribeParameters).
    props.proxy.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [this.policyParameter.parameterArn] }),
    );

    props.proxy.addEnvironment('RELAY_EVENTS_BUS', this.bus.eventBusName);
    props.proxy.addEnvironment('RELAY_EVENTS_USER', config.user);
    props.proxy.addEnvironment('RELAY_EVENTS_FLUSH_MS', String(config.lambdaFlushMs));
    props.proxy.addEnvironment('RELAY_POLICY', `ssm:${SIGN_UP_POLICY_PARAMETER_NAME}`);

    this.droppedMetric = new cw.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: 'EventsDropped',
      statistic: 'Sum',
      period: Duration.minutes(5),
    });
  }
}
