"""The Lambda handler, ``app.lambda_handler``: everything happens in jobqueue.handler.

Importing this module is the cold start: settings are read and task modules
imported here, once per container, so invocations do no such work.
"""

from jobqueue import handler

handler.configure()
lambda_handler = handler.dispatch
