"""The local stack behind ``python -m jobqueue serve``: the deployed handler run
the way AWS runs it, on a laptop. serve (the stack), database (the configured
or an embedded PostgreSQL), http_server (API Gateway, the Invoke API and SQS
on one port), lambda_service (warm containers, Lambda's Invoke API and async
queue), sqs_service (SQS's SendMessage for the timer queue, each message held
for its delay, then delivered as an SQS event), invoke_auth (the SigV4 check
both APIs make), aws_events (events, contexts and gateway answers as AWS
builds them).

Not in the ZIP: the deployed function never imports it. May import store (to
migrate), the ground floor and, in each container, ``app``; containers reach
the rest only through the handler, as on AWS.
"""
