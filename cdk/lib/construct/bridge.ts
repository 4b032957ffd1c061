/**
 * The standby sign-in bridge's AWS side (issue 10, DESIGN.md "Standby sign-in bridge"): the
 * `auth-trigger` Lambda (Define / Create / Verify Auth Challenge of the region's EXISTING pool),
 * its log group and least-privilege role (it reads only the region's bridge key), Cognito's
 * permission to invoke it, and a deploy-time check that the pool really uses it.
 *
 * The pool is not owned by this app, and UpdateUserPool resets every setting it is not given,
 * so the stack does not attach the triggers itself: attaching them is a one-time step
 * (README, "Attach the bridge triggers": DescribeUserPool, merge, UpdateUserPool). With
 * `bridge.requireTriggersAttached` the stack then checks at every deploy of the check resource
 * that the pool's three challenge triggers are this function, and the deploy FAILS otherwise:
 * a custom resource reads the pool's LambdaConfig (DescribeUserPool) and an SSM parameter whose
 * AllowedPattern is this function's ARN three times must accept what it read.
 */
import { Duration, Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { LambdaFunctionName } from '../assets';
import { RegionConfig, RelayConfig } from '../config';
import { architecture } from './functions';
import { grantFromManifest } from './permissions';

/** The fixed name of the trigger function (its ARN is what the pool's LambdaConfig names). */
export const AUTH_TRIGGER_FUNCTION_NAME = 'cognito-relay-auth-trigger';
/** The three LambdaConfig keys the bridge uses. */
export const BRIDGE_TRIGGERS = ['DefineAuthChallenge', 'CreateAuthChallenge', 'VerifyAuthChallengeResponse'] as const;

export interface RelayBridgeProps {
  readonly config: RelayConfig;
  readonly self: RegionConfig;
  readonly userPool: cognito.IUserPool;
  readonly lambdaAssets: Record<LambdaFunctionName, string>;
  /** The manifest's resources of this region (bridge-key among them). */
  readonly resources: Record<string, string>;
  /** The relay's own regional app client: the only one the triggers act for. */
  readonly regionalClientId: string;
}

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelayBridge {
  public readonly logs: logs.LogGroup;
  public readonly role: iam.Role;
  public readonly trigger: lambda.Function;
  public readonly check?: cr.AwsCustomResource;

  constructor(scope: Construct, props: RelayBridgeProps) {
    const { config: cfg, self } = props;
    const stack = Stack.of(scope);
    this.logs = new logs.LogGroup(scope, 'AuthTriggerLogs', {
      retention: cfg.logRetention,
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    this.role = new iam.Role(scope, 'AuthTriggerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cognito-relay auth-trigger Lambda: reads the bridge key, nothing else',
    });
    grantFromManifest(this.role, 'auth-trigger', { ...props.resources, 'own-log-group': this.logs.logGroupArn });
    this.trigger = new lambda.Function(scope, 'AuthTrigger', {
      functionName: AUTH_TRIGGER_FUNCTION_NAME,
      description: 'cognito-relay bridge: Define/Create/Verify Auth Challenge (accepts only signed bridge assertions)',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: architecture(cfg),
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.lambdaAssets['auth-trigger']),
      role: this.role,
      logGroup: this.logs,
      memorySize: 256,
      // Cognito waits 5 s for a trigger.
      timeout: Duration.seconds(5),
      environment: {
        RELAY_BRIDGE_KEY_SECRET_ID: cfg.bridgeKeySecretName,
        RELAY_USER_POOL_ID: self.userPoolId,
        // The triggers act only for the relay's own regional client (issue 19 point 6).
        RELAY_TRIGGER_CLIENT_IDS: props.regionalClientId,
        RUST_LOG: 'info',
      },
    });
    // Cognito invokes it for this pool only.
    this.trigger.addPermission('CognitoInvokesFromOwnPool', {
      principal: new iam.ServicePrincipal('cognito-idp.amazonaws.com'),
      sourceArn: props.userPool.userPoolArn,
      sourceAccount: stack.account,
    });

    if (cfg.bridge.requireTriggersAttached) {
      const paths = BRIDGE_TRIGGERS.map((t) => `UserPool.LambdaConfig.${t}`);
      const describe: cr.AwsSdkCall = {
        service: 'CognitoIdentityServiceProvider',
        action: 'describeUserPool',
        parameters: { UserPoolId: self.userPoolId },
        // Read when the check resource is created or updated (first deploy with the flag on, a
        // new pool id); README tells how to re-run it after changing the pool by hand.
        physicalResourceId: cr.PhysicalResourceId.of(`bridge-triggers-${self.userPoolId}`),
        outputPaths: paths,
      };
      this.check = new cr.AwsCustomResource(scope, 'BridgeTriggersCheck', {
        onCreate: describe,
        onUpdate: describe,
        policy: cr.AwsCustomResourcePolicy.fromSdkCalls({ resources: [props.userPool.userPoolArn] }),
        installLatestAwsSdk: false,
      });
      this.check.node.addDependency(this.trigger);
      const arn = `arn:aws:lambda:${self.region}:${stack.account}:function:${AUTH_TRIGGER_FUNCTION_NAME}`;
      const escaped = arn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      new ssm.CfnParameter(scope, 'BridgeTriggersAttached', {
        type: 'String',
        description:
          `cognito-relay: the pool ${self.userPoolId} uses ${AUTH_TRIGGER_FUNCTION_NAME} as its Define/Create/Verify ` +
          'Auth Challenge triggers. A deploy that fails here means they are not attached: see README "Attach the bridge triggers".',
        allowedPattern: `^${escaped},${escaped},${escaped}$`,
        value: Fn.join(',', paths.map((p) => this.check!.getResponseField(p))),
      });
    }
  }
}
