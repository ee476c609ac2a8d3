"""The actions: what a caller can ask for, in plain Python, answering with the
response bodies. HTTP routes, direct invocations, schedules, SQS and the
command line all come through here, so every way in validates the same way
and answers with the same bodies. ``table`` is the one list of them, by name.

jobs (submit, status, list, cancel, retry), messages (SQS submissions),
drains (process, the periodic tick), queues (settings) and admin (stats,
health, schema, schedules, prune).

May import engine, store, tasks and the ground floor; knows nothing of events
(no status codes, no event shapes) and writes no SQL.
"""
