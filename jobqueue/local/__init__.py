"""The local stack behind ``python -m jobqueue serve``: the deployed handler run
the way AWS runs it, on a laptop. serve (the stack), database (the configured
or an embedded PostgreSQL), http_server (API Gateway and the Invoke API on one
port), lambda_service (warm containers, Lambda's Invoke API and async queue),
aws_events (events, contexts and gateway answers as AWS builds them).

Not in the ZIP: the deployed function never imports it. May import store (to
migrate), the ground floor and, in each container, ``app``; containers reach
the rest only through the handler, as on AWS.
"""
