"""The store: the only code that talks to PostgreSQL. The connection
(connection, with secrets and tls for RDS), the named queries (queries, over
sql/queries.sql), the schema (schema, over sql/migrations/), and reads and
writes as plain functions: jobs, claims, queues, upkeep, drains, schedules.

Everything above asks these functions; nothing above holds SQL, imports the
driver or the named queries. May import tasks (a submitted JobSpec) and the
ground floor (errors, rules, config, log, states); knows nothing of HTTP,
events or Lambda.
"""
