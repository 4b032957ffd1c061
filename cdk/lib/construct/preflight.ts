/**
 * Deploy-time checks that fail the CloudFormation deploy, instead of the traffic, when something
 * the stack uses by NAME was not created by the operator (README, "Deploy-time checks").
 *
 * The regional stack refers to three operator-created secrets by name only (the replication key,
 * the refresh-token keyring, this region's bridge key): CloudFormation never reads them, so a
 * missing one would deploy fine and leave the proxy answering 503 and the replicator waiting.
 * Each gets a custom resource that calls Secrets Manager `DescribeSecret` on its name when it is
 * created (and when the name changes): a missing secret fails that call, and with it the deploy,
 * naming the resource (`<Name>SecretExists`). The provider may call `DescribeSecret` on exactly
 * that secret and nothing else; it never reads a secret value (no `GetSecretValue`: the deploy
 * role's Lambda holds no key material, and a secret's metadata is all the check needs).
 *
 * What it does not see: a secret scheduled for deletion, or one without a value, still
 * describes fine (the processes then wait and say so: runbooks/README.md); the app's own
 * `cognito-relay/clients` secret needs no check, the stack creates it.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

/** The CloudFormation type of each secret check (distinct from the bridge's `Custom::AWS`). */
export const SECRET_CHECK_RESOURCE_TYPE = 'Custom::SecretExists';

export interface SecretToCheck {
  /** Construct id prefix, e.g. `ReplicationKey`. */
  readonly id: string;
  /** The secret's name, as the functions get it. */
  readonly name: string;
  /** Its ARN pattern (`...:secret:<name>-??????`), the only resource the check may describe. */
  readonly arnPattern: string;
}

export interface RelayPreflightProps {
  readonly secrets: readonly SecretToCheck[];
}

export class RelayPreflight extends Construct {
  /** One check per secret, in the order given. */
  public readonly checks: cr.AwsCustomResource[] = [];

  constructor(scope: Construct, id: string, props: RelayPreflightProps) {
    super(scope, id);
    for (const s of props.secrets) {
      const describe: cr.AwsSdkCall = {
        service: 'SecretsManager',
        action: 'describeSecret',
        parameters: { SecretId: s.name },
        physicalResourceId: cr.PhysicalResourceId.of(`secret-exists-${s.name}`),
        // Only the ARN comes back to CloudFormation (no tags, no description).
        outputPaths: ['ARN'],
      };
      this.checks.push(
        new cr.AwsCustomResource(this, `${s.id}SecretExists`, {
          resourceType: SECRET_CHECK_RESOURCE_TYPE,
          onCreate: describe,
          onUpdate: describe,
          policy: cr.AwsCustomResourcePolicy.fromStatements([
            new iam.PolicyStatement({ actions: ['secretsmanager:DescribeSecret'], resources: [s.arnPattern] }),
          ]),
          installLatestAwsSdk: false,
        }),
      );
    }
  }

  /** Makes `targets` wait for every check: they are only created once the secrets are known to exist. */
  public before(...targets: Construct[]): void {
    for (const t of targets) for (const c of this.checks) t.node.addDependency(c);
  }
}
