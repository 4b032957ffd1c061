/**
 * The region's web ACL, associated with the API stage: deny list, allow list, per-IP rate limit
 * (Cognito-shaped error bodies for the requests these block), then AWS managed rule groups chosen
 * not to break the Cognito JSON API, and WAF logging to CloudWatch Logs.
 *
 * The Cognito user API is `POST /` with an `application/x-amz-json-1.1` body that carries
 * passwords, codes and tokens the user chose or Cognito minted. Any rule that pattern-matches
 * the BODY can refuse a legitimate user for their password (`<script>`, `../`, `' OR 1=1--` are
 * valid passwords), so:
 *
 * - AWSManagedRulesAmazonIpReputationList: blocks (source IP reputation only, no body).
 * - AWSManagedRulesCommonRuleSet: blocks on headers, URI and query string (bad bots, missing
 *   user agent, LFI/RFI in the path, ...); its BODY rules (SizeRestrictions_BODY: a WebAuthn or
 *   many-attribute request may exceed 8 KB; CrossSiteScripting_BODY, GenericLFI_BODY,
 *   GenericRFI_BODY, EC2MetaDataSSRF_BODY: passwords) only COUNT, so they show in metrics and
 *   logs without refusing anyone.
 * - AWSManagedRulesKnownBadInputsRuleSet: blocks (Log4j / Java deserialization payloads,
 *   localhost Host header, exploitable paths); a password that is a JNDI lookup string is not a
 *   user we lose sleep over.
 * - AWSManagedRulesSQLiRuleSet: NOT used. There is no SQL behind Cognito, and its body rules
 *   would refuse passwords that look like SQL.
 *
 * Requests blocked by the managed groups get WAF's plain 403 (managed rules cannot use the
 * Cognito-shaped custom bodies without overriding every rule).
 */
import { Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { RelayConfig } from '../config';

/** Body-inspecting rules of the common rule set that only count (see the module doc). */
export const COUNT_ONLY_BODY_RULES = [
  'SizeRestrictions_BODY',
  'CrossSiteScripting_BODY',
  'GenericLFI_BODY',
  'GenericRFI_BODY',
  'EC2MetaDataSSRF_BODY',
];

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayWaf {
  public readonly webAcl: wafv2.CfnWebACL;

  public readonly logs: logs.LogGroup;

  constructor(scope: Construct, cfg: RelayConfig, api: apigw.RestApi) {
    this.webAcl = this.buildWebAcl(scope, cfg);
    new wafv2.CfnWebACLAssociation(scope, 'WebAclAssociation', {
      resourceArn: api.deploymentStage.stageArn,
      webAclArn: this.webAcl.attrArn,
    });
    // WAF requires the log group name to start with "aws-waf-logs-". The stack id's UUID makes it
    // unique per stack instance, so the retained group of a deleted stack never collides with the
    // group of its successor.
    const stackUuid = Fn.select(2, Fn.split('/', Stack.of(scope).stackId));
    this.logs = new logs.LogGroup(scope, 'WafLogs', {
      logGroupName: Fn.join('', ['aws-waf-logs-cognito-relay-', stackUuid]),
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    new wafv2.CfnLoggingConfiguration(scope, 'WafLogging', {
      resourceArn: this.webAcl.attrArn,
      // WAF wants the group's ARN without the trailing ":*".
      logDestinationConfigs: [
        Fn.join('', ['arn:', Stack.of(scope).partition, ':logs:', Stack.of(scope).region, ':', Stack.of(scope).account, ':log-group:', this.logs.logGroupName]),
      ],
      // WAF logs carry headers, never bodies; drop the ones that could carry credentials.
      redactedFields: [{ singleHeader: { Name: 'authorization' } }, { singleHeader: { Name: 'cookie' } }],
    });
  }

  private buildWebAcl(scope: Construct, cfg: RelayConfig): wafv2.CfnWebACL {
    const ipSets = (kind: 'allow' | 'deny', cidrs: string[]): wafv2.CfnWebACL.StatementProperty[] => {
      const v4 = cidrs.filter((c) => !c.includes(':'));
      const v6 = cidrs.filter((c) => c.includes(':'));
      const statements: wafv2.CfnWebACL.StatementProperty[] = [];
      // The IPv4 set always exists (possibly empty) so the list can be edited in the console.
      const setV4 = new wafv2.CfnIPSet(scope, `${kind === 'allow' ? 'Allow' : 'Deny'}IpSetV4`, {
        name: `cognito-relay-${kind}-v4`,
        scope: 'REGIONAL',
        ipAddressVersion: 'IPV4',
        addresses: v4,
        description: `cognito-relay ${kind} list IPv4`,
      });
      statements.push({ ipSetReferenceStatement: { arn: setV4.attrArn } });
      if (v6.length > 0) {
        const setV6 = new wafv2.CfnIPSet(scope, `${kind === 'allow' ? 'Allow' : 'Deny'}IpSetV6`, {
          name: `cognito-relay-${kind}-v6`,
          scope: 'REGIONAL',
          ipAddressVersion: 'IPV6',
          addresses: v6,
          description: `cognito-relay ${kind} list IPv6`,
        });
        statements.push({ ipSetReferenceStatement: { arn: setV6.attrArn } });
      }
      return statements;
    };
    const anyOf = (s: wafv2.CfnWebACL.StatementProperty[]): wafv2.CfnWebACL.StatementProperty =>
      s.length === 1 ? s[0] : { orStatement: { statements: s } };
    const visibility = (metricName: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
      metricName,
    });
    const managed = (priority: number, name: string, countOnly: string[]): wafv2.CfnWebACL.RuleProperty => ({
      name: `aws-${name}`,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name,
          ruleActionOverrides:
            countOnly.length > 0 ? countOnly.map((rule) => ({ name: rule, actionToUse: { count: {} } })) : undefined,
        },
      },
      visibilityConfig: visibility(`cognito-relay-${name}`),
    });
    return new wafv2.CfnWebACL(scope, 'WebAcl', {
      name: 'cognito-relay',
      description: 'cognito-relay: deny list, allow list, per-IP rate limit, AWS managed rules, body rules count only',
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('cognito-relay'),
      // Blocked callers get a Cognito-shaped error the SDKs understand.
      customResponseBodies: {
        TooManyRequests: {
          contentType: 'APPLICATION_JSON',
          content: '{"__type":"TooManyRequestsException","message":"Too many requests"}',
        },
        Forbidden: {
          contentType: 'APPLICATION_JSON',
          content: '{"__type":"NotAuthorizedException","message":"Request blocked"}',
        },
      },
      rules: [
        {
          name: 'deny-ips',
          priority: 0,
          action: { block: { customResponse: { responseCode: 403, customResponseBodyKey: 'Forbidden' } } },
          statement: anyOf(ipSets('deny', cfg.waf.denyCidrs)),
          visibilityConfig: visibility('cognito-relay-deny-ips'),
        },
        {
          name: 'allow-ips',
          priority: 1,
          action: { allow: {} }, // terminates: listed callers skip the rate rule
          statement: anyOf(ipSets('allow', cfg.waf.allowCidrs)),
          visibilityConfig: visibility('cognito-relay-allow-ips'),
        },
        {
          name: 'rate-per-ip',
          priority: 2,
          action: {
            block: { customResponse: { responseCode: 400, customResponseBodyKey: 'TooManyRequests' } },
          },
          statement: {
            rateBasedStatement: {
              limit: cfg.waf.ratePerIpPer5Min,
              aggregateKeyType: 'IP',
              evaluationWindowSec: 300,
            },
          },
          visibilityConfig: visibility('cognito-relay-rate-per-ip'),
        },
        managed(3, 'AWSManagedRulesAmazonIpReputationList', []),
        managed(4, 'AWSManagedRulesCommonRuleSet', COUNT_ONLY_BODY_RULES),
        managed(5, 'AWSManagedRulesKnownBadInputsRuleSet', []),
      ],
    });
  }
}
