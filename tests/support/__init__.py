"""What the tests share, as Oban keeps test/support: AWS's own shapes (aws,
apigw, samples/), waiting for a condition (waiting), processes the tests start
(drains, localstack, cli), the tests' own task modules (tasks,
periodic_tasks), and the API document's schemas as validators (openapi).
Test modules import from here, never from one another; fixtures are in
tests/conftest.py."""
