import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { build } from './helpers';

/**
 * A region stack can be deleted and deployed again: every resource kept on deletion (Retain)
 * has a CloudFormation-generated name, and the names that ARE fixed (roles, queues, ...) belong
 * to resources deleted with the stack.
 */
const first = build();
const second = build();

/** Properties that give a resource a fixed physical name. */
const NAME_PROPS = ['TableName', 'LogGroupName', 'RoleName', 'QueueName', 'Name', 'AliasName', 'TopicName', 'FunctionName'];

const regional = [
  ['primary', first.primary, second.primary],
  ['standby', first.standby, second.standby],
] as const;

describe('delete and recreate a region stack', () => {
  for (const [name, a, b] of regional) {
    test(`${name}: synthesising twice gives the same template (same names, nothing random)`, () => {
      assert.deepEqual(a.toJSON(), b.toJSON());
    });

    test(`${name}: no retained resource carries a fixed name (a recreated stack would collide with it)`, () => {
      const retained = Object.entries<any>(a.toJSON().Resources).filter(([, r]) => r.DeletionPolicy === 'Retain');
      assert.ok(retained.some(([, r]) => r.Type === 'AWS::DynamoDB::Table'), 'the state table is retained');
      for (const [id, r] of retained) {
        for (const p of NAME_PROPS) assert.equal(r.Properties?.[p], undefined, `${id} (${r.Type}) is retained with a fixed ${p}`);
      }
    });

    test(`${name}: the deterministically named roles are deleted with the stack`, () => {
      const named = Object.entries<any>(a.toJSON().Resources).filter(
        ([, r]) => r.Type === 'AWS::IAM::Role' && r.Properties.RoleName,
      );
      assert.equal(named.length, 3);
      for (const [id, r] of named) assert.equal(r.DeletionPolicy, undefined, id);
    });
  }

  test('IAM role names (account-wide) do not collide between the stacks', () => {
    const names = [first.primary, first.standby, first.global].flatMap((t) =>
      Object.values<any>(t.findResources('AWS::IAM::Role'))
        .map((r) => r.Properties.RoleName)
        .filter(Boolean),
    );
    assert.equal(names.length, 6);
    assert.equal(new Set(names).size, names.length, names.join(', '));
  });
});
