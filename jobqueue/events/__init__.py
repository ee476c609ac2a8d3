"""The events layer: which kind of event is this, and who answers it.

dispatch (the handler, ``app.lambda_handler``) routes an event by its shape to
one module per source: http/ (API Gateway and Function URL requests), schedule
(EventBridge), sqs, direct ({"action": ...}). What they share lives here, not
in any one of them: cold_start (settings read once per container), problems
(every error as the standard body, in one place), strict_json (untrusted JSON
text) and replies (request ids, an invocation's answer and its log line).

May import actions (what each event asks for), the engine's invocation and
metrics, tasks' loading, and the ground floor; never store: no SQL, no
connection. Data flows one way: event -> events -> actions.
"""
