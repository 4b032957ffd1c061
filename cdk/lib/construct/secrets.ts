/**
 * The region's Cognito app client (with a secret) on the existing pool, the clients secret that
 * maps the public ClientId(s) to it, and references to the operator-created key secrets
 * (replication key, refresh-token keyring).
 */
import { RemovalPolicy, SecretValue, Stack } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { CLIENTS_SECRET_NAME, RelayConfig } from '../config';

/** Resources are added to `scope` itself (see README.md beside this file). */
export class RelaySecrets {
  public readonly userPool: cognito.IUserPool;
  public readonly regionalClient: cognito.UserPoolClient;
  public readonly clientsSecret: secretsmanager.Secret;
  /** ARN pattern of the replication key secret (with Secrets Manager's random suffix). */
  public readonly replicationKeyArn: string;
  /** ARN pattern of the refresh-token keyring secret. */
  public readonly refreshKeyArn: string;
  /** ARN pattern of this region's bridge keyring secret. */
  public readonly bridgeKeyArn: string;

  constructor(scope: Construct, cfg: RelayConfig, userPoolId: string) {
    this.userPool = cognito.UserPool.fromUserPoolId(scope, 'UserPool', userPoolId);
    this.regionalClient = new cognito.UserPoolClient(scope, 'RegionalClient', {
      userPool: this.userPool,
      userPoolClientName: 'cognito-relay',
      generateSecret: true,
      // CDK adds ALLOW_REFRESH_TOKEN_AUTH whenever explicit auth flows are given. CUSTOM_AUTH:
      // the bridge mints tokens of this pool through the custom challenge (auth-trigger Lambda).
      authFlows: { userPassword: true, userSrp: true, custom: true },
      enablePropagateAdditionalUserContextData: true,
      disableOAuth: true,
      preventUserExistenceErrors: true,
    });
    // The client secret is read at deploy time by a CDK custom resource (DescribeUserPoolClient)
    // and lands in the template only as a Fn::GetAtt of that resource, resolved by CloudFormation:
    // the plaintext secret never appears in the synthesized template or in cdk.out.
    const clientSecret = this.regionalClient.userPoolClientSecret;
    const mapping = Stack.of(scope).toJsonString({
      clients: cfg.publicClientIds.map((publicId) => ({
        public_client_id: publicId,
        client_id: this.regionalClient.userPoolClientId,
        client_secret: clientSecret.unsafeUnwrap(),
      })),
    });
    this.clientsSecret = new secretsmanager.Secret(scope, 'ClientsSecret', {
      secretName: CLIENTS_SECRET_NAME,
      description: 'cognito-relay: public ClientId -> regional app client id + secret',
      secretStringValue: SecretValue.unsafePlainText(mapping),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // The replication key is created ONCE by the operator in the primary region with a replica
    // in the standby region (README): both regions must seal/open with the very same key, and
    // a CloudFormation-generated value could not be base64 of 32 random bytes nor be shared.
    const replicationKey = secretsmanager.Secret.fromSecretNameV2(
      scope,
      'ReplicationKey',
      cfg.replicationKeySecretName,
    );
    // Secrets Manager appends "-" and 6 random characters to secret ARNs.
    this.replicationKeyArn = `${replicationKey.secretArn}-??????`;
    // The refresh-token keyring: created out of band exactly like the replication key (same
    // value in both regions, through a Secrets Manager replica), a separate secret so the two
    // keys rotate independently and the replicator never holds it. Only the proxy reads it.
    const refreshKey = secretsmanager.Secret.fromSecretNameV2(scope, 'RefreshKey', cfg.refreshKeySecretName);
    this.refreshKeyArn = `${refreshKey.secretArn}-??????`;
    // The bridge keyring of THIS region (the proxy signs, the auth-trigger Lambda verifies):
    // created once per region by the operator (a keyring is base64 of 32 random bytes, which a
    // CloudFormation-generated secret cannot produce), rotated by adding a key to the ring.
    const bridgeKey = secretsmanager.Secret.fromSecretNameV2(scope, 'BridgeKey', cfg.bridgeKeySecretName);
    this.bridgeKeyArn = `${bridgeKey.secretArn}-??????`;
  }
}
