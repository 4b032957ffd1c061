import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exampleConfig } from '../lib/config';
import { build } from './helpers';

/**
 * A region stack can be deleted and deployed again: every resource kept on deletion (RetainExceptOnCreate)
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

    test(`${name}: a retained resource's fixed name is either per stack instance or a generation-named queue`, () => {
      const ids = new Set(Object.keys(a.toJSON().Resources));
      const retained = Object.entries<any>(a.toJSON().Resources).filter(([, r]) => r.DeletionPolicy === 'RetainExceptOnCreate');
      assert.ok(retained.some(([, r]) => r.Type === 'AWS::DynamoDB::Table'), 'the state table is retained');
      for (const [id, r] of retained) {
        for (const p of NAME_PROPS) {
          const v = r.Properties?.[p];
          if (v === undefined) continue;
          if (typeof v === 'string') {
            // Literal names: only the replication queues, whose names carry queueGeneration.
            assert.equal(r.Type, 'AWS::SQS::Queue', `${id} (${r.Type}) is retained with the fixed ${p} ${v}`);
            continue;
          }
          // Built names must include something new in a recreated stack: its stack id, or the
          // physical id of one of its own resources.
          const text = JSON.stringify(v);
          const refs = [...text.matchAll(/"Ref":"([^"]+)"/g)].map((m) => m[1]);
          assert.ok(refs.some((x) => x === 'AWS::StackId' || ids.has(x)), `${id}: ${p} ${text} is the same for a recreated stack`);
        }
      }
    });

    test(`${name}: the DLQ, fallback and inbound queues are retained on deletion and replacement`, () => {
      const queues = Object.entries<any>(a.findResources('AWS::SQS::Queue')).filter(([, q]) => q.Properties.FifoQueue);
      assert.equal(queues.length, 3);
      for (const [id, q] of queues) {
        assert.equal(q.DeletionPolicy, 'RetainExceptOnCreate', id);
        assert.equal(q.UpdateReplacePolicy, 'Retain', id);
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

  test('a deleted region stack is recreated with the next queueGeneration: no retained name collides', () => {
    const literalRetained = (t: any) =>
      Object.values<any>(t.toJSON().Resources)
        .filter((r) => r.DeletionPolicy === 'RetainExceptOnCreate')
        .flatMap((r) => NAME_PROPS.map((p) => r.Properties?.[p]).filter((v) => typeof v === 'string'));
    const before = literalRetained(first.primary);
    assert.deepEqual(before.sort(), ['cognito-relay-fallback.fifo', 'cognito-relay-inbound-dlq.fifo', 'cognito-relay-inbound.fifo']);
    const again = build({ ...exampleConfig, primary: { ...exampleConfig.primary, queueGeneration: 2 } });
    const after = literalRetained(again.primary);
    assert.deepEqual(after.sort(), ['cognito-relay-fallback-g2.fifo', 'cognito-relay-inbound-dlq-g2.fifo', 'cognito-relay-inbound-g2.fifo']);
    assert.equal(after.filter((n: string) => before.includes(n)).length, 0);
    // The peer follows: it sends to the new inbound queue.
    assert.match(JSON.stringify(again.standby.toJSON()), /eu-west-1:111111111111:cognito-relay-inbound-g2\.fifo/);
    assert.doesNotMatch(JSON.stringify(again.standby.toJSON()), /eu-west-1:111111111111:cognito-relay-inbound\.fifo/);
  });

  test('a failed first deploy can be retried: no resource of any stack is plain Retain (RetainExceptOnCreate instead)', () => {
    // Plain Retain keeps what a rolled-back first deploy created (fixed-name queues, keys, log
    // groups), so the retry collides with it or leaves it behind. RetainExceptOnCreate keeps a
    // resource on stack deletion and replacement, but deletes it when the deploy that created it
    // rolls back. The walk covers every stack the app synthesises, whatever construct added it.
    const assembly = first.relay.app.synth();
    let kept = 0;
    for (const stack of assembly.stacks) {
      for (const [id, r] of Object.entries<any>(stack.template.Resources ?? {})) {
        assert.notEqual(r.DeletionPolicy, 'Retain', `${stack.stackName}/${id} (${r.Type}): DeletionPolicy Retain`);
        if (r.DeletionPolicy === 'RetainExceptOnCreate') {
          kept++;
          assert.equal(r.UpdateReplacePolicy, 'Retain', `${stack.stackName}/${id}: kept on replacement too`);
        }
      }
    }
    assert.equal(assembly.stacks.length, 3);
    assert.ok(kept >= 2 * 12 + 1, `found ${kept} kept resources`);
  });

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
