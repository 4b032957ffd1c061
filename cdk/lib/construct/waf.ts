/**
 * The region's web ACL, associated with the API stage: deny list, allow list, per-IP rate limit,
 * with Cognito-shaped error bodies for the requests it blocks.
 */
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { RelayConfig } from '../config';

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayWaf {
  public readonly webAcl: wafv2.CfnWebACL;

  constructor(scope: Construct, cfg: RelayConfig, api: apigw.RestApi) {
    this.webAcl = this.buildWebAcl(scope, cfg);
    new wafv2.CfnWebACLAssociation(scope, 'WebAclAssociation', {
      resourceArn: api.deploymentStage.stageArn,
      webAclArn: this.webAcl.attrArn,
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
    return new wafv2.CfnWebACL(scope, 'WebAcl', {
      name: 'cognito-relay',
      description: 'cognito-relay: deny list, allow list, per-IP rate limit',
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
      ],
    });
  }
}
