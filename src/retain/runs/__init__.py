"""How a component runs, below `Component` and the executions: claims and leases (exactly one
run at a time, across processes and machines), run files (claims, heartbeats, ends, events,
failures, submissions), output capture, the run itself (`dispatch`) and its state (`status`).

Nothing here imports `retain.component` or `retain.execution` at run time: the layers above
call into this package, never the other way round.
"""
