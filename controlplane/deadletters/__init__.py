"""Dead letters (docs/runtime.md, "Dead letters"): the message, its queues, the spool, replay.

`message` is the CloudEvent a failed run leaves (`dev.cpl.run.deadlettered`); `sqs` reads and
writes the SQS queues bound for `onError.deadLetter`; `spool` keeps messages whose queue could
not be reached; `outbox` hands messages over (queue, else spool) and re-sends the spool;
`box` is what `cpl dlq` works on: the dead letters of an environment, across its queues and
its spool; `replay` starts a new run from one and records the link in the audit trail.
"""
