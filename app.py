"""The Lambda handler, ``app.lambda_handler``: everything happens in jobqueue.events.

Importing this module is the cold start: settings are read and task modules
imported here, once per container, so invocations do no such work.
"""

from jobqueue.events import cold_start, dispatch

cold_start.configure()
lambda_handler = dispatch.dispatch
