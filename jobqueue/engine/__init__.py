"""The engine: the drain and its duties, one noun per module.

drain (the loop) with pace (how long jobs take), claimed (jobs waiting for a
slot, their leases), execution and timeouts (running one job), recorder,
failures and outcomes (what a finished job becomes, written in batches) and
report (what a drain did); the maintenance duties rescuer, cleaner and
compactor; the periodic_enqueuer; fanout, wake and invoker (drains that
follow the backlog); invocation (what Lambda told us) and metrics (EMF).

May import store, tasks and the ground floor (errors, rules, config, log,
states); never actions, events or local. Only store runs SQL.
"""
