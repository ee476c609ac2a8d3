"""HTTP for the Lambda: an API Gateway (REST v1, HTTP API v2) or Function URL
event in, a proxy response out, and nothing of SQL.

gateway (events normalised into one Request, body limits), request (Request,
Response, the HTTP settings), auth (bearer tokens, CORS), router (the route
table's matching), routes (each route: which action it asks for, with what),
pipeline (one request from event to response), dashboard (GET /ui and its
files in ui/), openapi with openapi_schemas and openapi_paths (the document).

May import actions (through their table), events' shared modules
(problems, strict_json, replies, cold_start) and the ground floor.
"""
