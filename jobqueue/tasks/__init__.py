"""Tasks: the registry and ``@task`` (registry), the built-in tasks (builtin),
cold start's import of task modules (loading), what a submitted job may say
(spec), cron expressions (cron) and periodic declarations (periodic).

May import the ground floor (errors, rules, config, log, states) and nothing
else of jobqueue: every other layer reads tasks, none is read by them.
"""
