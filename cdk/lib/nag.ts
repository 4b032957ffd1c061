import { Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/** One accepted cdk-nag finding. */
export interface NagAcknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgement made through `acknowledge()` in this process (read by the tests). */
export const nagAcknowledgements: NagAcknowledgement[] = [];

/**
 * Accepts one cdk-nag finding (rule id, or `RuleId[FindingId]`) on `scope` and its children,
 * with the reason why the finding does not apply. A reason is mandatory.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < 20) throw new Error(`cdk-nag acknowledgement ${id} needs a real reason`);
  Validations.of(scope).acknowledge({ id, reason });
  nagAcknowledgements.push({ path: scope.node.path, id, reason });
}
