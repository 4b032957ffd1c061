import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

/**
 * An SNS topic for alarms, encrypted with its own customer key (CloudWatch cannot publish to a
 * topic encrypted with the AWS-managed SNS key), TLS-only, with an e-mail subscription.
 */
export class AlarmTopic extends Construct {
  public readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: { readonly email: string }) {
    super(scope, id);
    const key = new kms.Key(this, 'Key', {
      description: 'cognito-relay: encrypts the alarm topic',
      enableKeyRotation: true,
      // KMS keys default to Retain; a failed first deploy must not leave one behind.
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    // In a key policy, Resource "*" means "this key". CloudWatch alarms of this account only.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'cognito-relay alarms',
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.addSubscription(new subs.EmailSubscription(props.email));
  }
}
