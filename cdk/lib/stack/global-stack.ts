import { CfnOutput, Duration, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { AlarmTopic } from '../construct/alarm-topic';
import { HEALTH_PATH, RelayConfig, originDomainName, regionalDomainName } from '../config';

export interface GlobalStackProps extends StackProps {
  readonly config: RelayConfig;
}

/**
 * Route 53 health checks on each region's `auth-<region>.<zone>/health` and the PRIMARY/SECONDARY
 * failover records of the global name, plus alarms on the health checks (their metrics exist in
 * us-east-1 only). Everything regional is named, never referenced.
 */
export class GlobalStack extends Stack {
  public readonly healthChecks: Record<string, route53.HealthCheck> = {};

  constructor(scope: Construct, id: string, props: GlobalStackProps) {
    const cfg = props.config;
    super(scope, id, {
      ...props,
      env: { account: cfg.account, region: cfg.globalRegion },
      description: `cognito-relay global: health checks and failover for ${cfg.domainName}`,
    });
    const zone = route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', {
      hostedZoneId: cfg.hostedZone.id,
      zoneName: cfg.hostedZone.name,
    });
    const topic = new AlarmTopic(this, 'Alarms', { email: cfg.alarmEmail }).topic;

    const regions: Array<[string, route53.Failover, string]> = [
      [cfg.primary.region, route53.Failover.PRIMARY, 'Primary'],
      [cfg.standby.region, route53.Failover.SECONDARY, 'Standby'],
    ];
    for (const [region, failover, id] of regions) {
      const healthCheck = new route53.HealthCheck(this, `${id}HealthCheck`, {
        type: route53.HealthCheckType.HTTPS,
        fqdn: regionalDomainName(cfg, region),
        port: 443,
        // The custom domain's empty base path hides the stage: /health, not /prod/health.
        resourcePath: HEALTH_PATH,
        enableSNI: true,
        requestInterval: Duration.seconds(10),
        failureThreshold: 3,
        measureLatency: true,
      });
      Tags.of(healthCheck).add('Name', `cognito-relay-${region}`);
      this.healthChecks[region] = healthCheck;

      new route53.ARecord(this, `${id}FailoverRecord`, {
        zone,
        recordName: cfg.domainName,
        failover,
        setIdentifier: `cognito-relay-${region}`,
        healthCheck,
        // Alias to a record of the same zone, created by that region's stack: Route 53 answers
        // with the address of the region's API Gateway endpoint for the global name.
        target: route53.RecordTarget.fromAlias({
          bind: () => ({
            dnsName: originDomainName(cfg, region),
            hostedZoneId: cfg.hostedZone.id,
            // Required for failover aliases; the target (an alias to API Gateway) has no health
            // of its own, so the attached health check is what decides.
            evaluateTargetHealth: true,
          }),
        }),
        comment: `cognito-relay ${failover} (${region})`,
      });

      const alarm = new cw.Alarm(this, `${id}Unhealthy`, {
        alarmName: `cognito-relay-${region}-HealthCheckUnhealthy`,
        alarmDescription: `Route 53 sees https://${regionalDomainName(cfg, region)}${HEALTH_PATH} unhealthy (${failover}).`,
        metric: new cw.Metric({
          namespace: 'AWS/Route53',
          metricName: 'HealthCheckStatus',
          dimensionsMap: { HealthCheckId: healthCheck.healthCheckId },
          statistic: 'Minimum',
          period: Duration.minutes(1),
        }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // Not BREACHING: a new health check has no datapoint for its first minutes, and that
        // must not page (nor send an ALARM mail on every first deploy). Route 53 publishes a
        // datapoint every minute once the check runs, so a real failure is always a datapoint.
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new cwActions.SnsAction(topic));
      alarm.addOkAction(new cwActions.SnsAction(topic));

      // The generated id, for relayctl's deployment file (`health_check_id` of this region).
      new CfnOutput(this, `${id}HealthCheckId`, {
        value: healthCheck.healthCheckId,
        description: `Route 53 health check of https://${regionalDomainName(cfg, region)}${HEALTH_PATH} (${region}): relayctl's health_check_id`,
      });
    }

    const endpoint = `https://${cfg.domainName}`;
    const publicClientId = cfg.publicClientIds[0];
    new CfnOutput(this, 'GlobalEndpoint', {
      value: endpoint,
      description: 'The Cognito endpoint apps use instead of cognito-idp.<region>.amazonaws.com',
    });
    new CfnOutput(this, 'AmplifyConfig', {
      description: 'Amplify v6 Auth config (USER_PASSWORD_AUTH: SRP sign-in cannot fail over)',
      value: JSON.stringify({
        Auth: {
          Cognito: {
            userPoolId: cfg.primary.userPoolId,
            userPoolClientId: publicClientId,
            userPoolEndpoint: endpoint,
            loginWith: { email: cfg.usernameAttributes.includes('email') },
          },
        },
      }),
    });
    new CfnOutput(this, 'AwsSdkConfig', {
      description: 'AWS SDK for JavaScript v3 client config',
      value:
        `new CognitoIdentityProviderClient({ region: '${cfg.primary.region}', endpoint: '${endpoint}' }); ` +
        `// ClientId: '${publicClientId}', AuthFlow: 'USER_PASSWORD_AUTH'`,
    });
  }
}
