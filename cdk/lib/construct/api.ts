/**
 * The region's API: API Gateway (REST, regional, everything to the proxy Lambda, execute-api
 * endpoint off) with access logs, the two custom domains (the global name and
 * `auth-<region>.<zone>`), their certificate and their Route 53 alias records.
 */
import { Fn, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import { RegionConfig, RelayConfig, STAGE_NAME, originDomainName, regionalDomainName } from '../config';

export interface RelayApiProps {
  readonly config: RelayConfig;
  readonly self: RegionConfig;
  readonly proxy: lambda.IFunction;
}

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayApi {
  public readonly accessLogs: logs.LogGroup;
  public readonly api: apigw.LambdaRestApi;
  public readonly executionLogs: logs.LogGroup;

  constructor(scope: Construct, props: RelayApiProps) {
    const { config: cfg, self } = props;
    const region = self.region;
    const regionalName = regionalDomainName(cfg, region);
    this.accessLogs = new logs.LogGroup(scope, 'ApiAccessLogs', {
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    this.api = new apigw.LambdaRestApi(scope, 'Api', {
      restApiName: 'cognito-relay',
      description: 'cognito-relay: Cognito user API endpoint (everything goes to the proxy Lambda)',
      handler: props.proxy,
      proxy: true, // ANY on "/" and on "{proxy+}"
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // Only the custom domains (behind WAF, with the right certificate) are reachable.
      disableExecuteApiEndpoint: true,
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
      deployOptions: {
        stageName: STAGE_NAME,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
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

    // API Gateway writes execution logs (level ERROR) to a group it names itself; created here so
    // it has a retention. Its name holds the REST API id, new for a recreated stack, so retaining
    // it never collides.
    this.executionLogs = new logs.LogGroup(scope, 'ApiExecutionLogs', {
      logGroupName: Fn.join('', ['API-Gateway-Execution-Logs_', this.api.restApiId, `/${STAGE_NAME}`]),
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });

    const zone = route53.HostedZone.fromHostedZoneAttributes(scope, 'Zone', {
      hostedZoneId: cfg.hostedZone.id,
      zoneName: cfg.hostedZone.name,
    });
    const certificate = self.certificateArn
      ? acm.Certificate.fromCertificateArn(scope, 'Certificate', self.certificateArn)
      : new acm.Certificate(scope, 'Certificate', {
          domainName: cfg.domainName,
          subjectAlternativeNames: [regionalName],
          validation: acm.CertificateValidation.fromDns(zone),
        });
    // The global name, so TLS (SNI) and Host match when Route 53 sends the global name here.
    const globalDomain = new apigw.DomainName(scope, 'GlobalDomain', {
      domainName: cfg.domainName,
      certificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
      mapping: this.api, // empty base path: the stage is hidden, GET /health is /health
    });
    // The per-region name, probed by the Route 53 health checks (and by relayctl status).
    const regionalDomain = new apigw.DomainName(scope, 'RegionalDomain', {
      domainName: regionalName,
      certificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
      mapping: this.api,
    });
    new route53.ARecord(scope, 'RegionalRecord', {
      zone,
      recordName: regionalName,
      target: route53.RecordTarget.fromAlias(new targets.ApiGatewayDomain(regionalDomain)),
      comment: 'cognito-relay: this region, probed by the health checks',
    });
    // Deterministic name for "the global name's endpoint in this region": the global stack's
    // failover records alias it, so they need no cross-region reference.
    new route53.ARecord(scope, 'OriginRecord', {
      zone,
      recordName: originDomainName(cfg, region),
      target: route53.RecordTarget.fromAlias(new targets.ApiGatewayDomain(globalDomain)),
      comment: `cognito-relay: target of the ${cfg.domainName} failover record for ${region}`,
    });
  }
}
