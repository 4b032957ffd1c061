"""strict_moto.py with SQS FIFO message-group order as AWS keeps it: `python fifo_moto.py --port N`.

moto 5.2.5 can deliver a FIFO group out of order. When every received message of a group times
out together (a consumer left them for redelivery: throttling, a crash), its receive loop drops
each one from the in-flight set only when it reaches it, so a *later* message of the group is
delivered while the earlier one is still counted in flight and skipped. From then on the later
message is always in flight first and the earlier one never comes before it (on AWS, a group's
messages are delivered in order until deleted). A replicator then sees a ConfirmSignUp before
its SignUp on every delivery until the confirmation is dead-lettered.

This drops timed-out messages from the in-flight set before a receive looks at the group, so
the oldest message of a group comes first again. Used by the chaos suite; the other suites run
plain strict_moto.py."""

from __future__ import annotations

import os
import runpy

from moto.sqs import models

_messages = models.Queue.messages


def _visible_messages(self):
    # tuple() copies the set in one step (other server threads add to it meanwhile).
    for m in tuple(self._pending_messages):
        if m.visible:
            self._pending_messages.discard(m)
    return _messages.fget(self)


models.Queue.messages = property(_visible_messages)
_receive = models.SQSBackend.receive_message


def _receive_message(self, queue_name, *args, **kwargs):
    self.get_queue(queue_name).messages  # noqa: B018 - expires timed-out in-flight messages first
    return _receive(self, queue_name, *args, **kwargs)


models.SQSBackend.receive_message = _receive_message

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "strict_moto.py"), run_name="__main__")
