"""template.yaml: valid for CloudFormation and SAM, least privilege, and in step with the handler.

No AWS account is needed: cfn-lint checks the template against CloudFormation's
and SAM's schemas, and the SAM translator (the code behind ``sam deploy``'s
transform) expands it locally.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint import api as cfnlint_api
from cfnlint.decode import decode

from jobqueue import rules
from jobqueue.events.http.routes import ROUTES

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobqueue/db-AbCdEf"

# The routes of DESIGN.md's HTTP API table.
DESIGNED_ROUTES = {
    ("POST", "/jobs"),
    ("POST", "/jobs/batch"),
    ("GET", "/jobs/{}"),
    ("GET", "/jobs"),
    ("POST", "/jobs/{}/cancel"),
    ("POST", "/jobs/{}/retry"),
    ("POST", "/process"),
    ("GET", "/stats"),
    ("GET", "/schedules"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/ui"),
    ("GET", "/ui/{}"),
    ("GET", "/queues"),
    ("PATCH", "/queues/{}"),
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, problems = decode(str(TEMPLATE))
    assert not problems, [str(problem) for problem in problems]
    # Plain dicts and strings, free of the decoder's position-tracking types.
    return json.loads(json.dumps(decoded))


def _problems(matches: list[Any]) -> list[str]:
    """Errors and warnings; informational notes are not failures."""
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id[0] in "EW"]


def _function(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["Function"]["Properties"]


def _shape(path: str) -> str:
    """``/jobs/{id}`` and ``/jobs/{job_id}`` are the same route to API Gateway."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _template_routes(template: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (event["Properties"]["Method"].upper(), _shape(event["Properties"]["Path"]))
        for event in _function(template)["Events"].values()
        if event["Type"] == "HttpApi" and "Path" in event["Properties"]
    }


def test_cfn_lint_finds_no_errors_or_warnings() -> None:
    assert _problems(cfnlint_api.lint_file(TEMPLATE)) == []


def test_sam_translates_it_to_a_template_cfn_lint_accepts(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    translator = pytest.importorskip("samtranslator.translator.transform", reason="aws-sam-translator not installed")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # pseudo-parameters need a region, not an account
    sam = copy.deepcopy(template)
    _function(sam)["CodeUri"] = "s3://artifacts/lambda.zip"  # what `sam deploy` substitutes after uploading

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    translated = translator.transform(sam, {"DbSecretArn": SECRET_ARN}, NoManagedPolicies())
    resources = translated["Resources"]
    assert resources["Function"]["Type"] == "AWS::Lambda::Function"
    assert resources["FunctionDrain"]["Type"] == "AWS::Events::Rule"
    # SAM generated no role of its own: the function runs with ours.
    assert [name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"] == ["FunctionRole"]
    routes = resources["HttpApi"]["Properties"]["Body"]["paths"]
    assert {(m.upper(), _shape(p)) for p, ops in routes.items() for m in ops if p != "/$default"} == DESIGNED_ROUTES
    assert _problems(cfnlint_api.lint(json.dumps(translated))) == []


def test_function_runs_the_zip_on_python_312(template: dict[str, Any]) -> None:
    function = _function(template)
    assert function["CodeUri"] == "dist/lambda.zip"
    assert function["Handler"] == "app.lambda_handler"
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    assert set(template["Parameters"]["Architecture"]["AllowedValues"]) == {"arm64", "x86_64"}


def test_environment_points_at_the_secret_and_verifies_tls(template: dict[str, Any]) -> None:
    variables = _function(template)["Environment"]["Variables"]
    assert variables["DB_SECRET_ARN"] == {"Ref": "DbSecretArn"}
    assert variables["DB_SSLMODE"] == {"Ref": "DbSslMode"}
    assert template["Parameters"]["DbSslMode"]["Default"] == "verify-full"
    assert "DB_PASSWORD" not in variables
    assert template["Parameters"]["ApiToken"]["NoEcho"] is True


def test_template_routes_are_the_designed_api(template: dict[str, Any]) -> None:
    assert _template_routes(template) == DESIGNED_ROUTES
    events = _function(template)["Events"].values()
    catch_all = [e for e in events if e["Type"] == "HttpApi" and "Path" not in e["Properties"]]
    assert len(catch_all) == 1, "unknown paths and methods should reach the handler for its JSON 404/405"


def test_template_routes_match_the_handler(template: dict[str, Any]) -> None:
    # Preflight and HEAD are answered generically through the catch-all route.
    served = {(route.method, _shape(route.path)) for route in ROUTES}
    served = {(method, path) for method, path in served if method not in ("OPTIONS", "HEAD")}
    assert _template_routes(template) == served


def test_schedule_drains(template: dict[str, Any]) -> None:
    schedules = [e for e in _function(template)["Events"].values() if e["Type"] == "Schedule"]
    assert len(schedules) == 1
    assert schedules[0]["Properties"]["Schedule"] == {"Ref": "ScheduleExpression"}


def test_ingest_queue_is_optional_and_reports_partial_failures(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for name in ("IngestQueue", "IngestDeadLetterQueue", "IngestEventSource"):
        assert resources[name]["Condition"] == "CreateQueue"
    mapping = resources["IngestEventSource"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    redrive = resources["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    # A message must stay hidden for as long as any invocation may still be working on it.
    assert resources["IngestQueue"]["Properties"]["VisibilityTimeout"] >= template["Parameters"]["Timeout"]["MaxValue"]
    outputs = template["Outputs"]
    assert outputs["IngestQueueUrl"]["Condition"] == "CreateQueue"
    assert {"ApiUrl", "FunctionName"} <= set(outputs)


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for statement in policy["PolicyDocument"]["Statement"]:
        if "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        found.append(statement)
    return found


def test_role_grants_only_what_the_function_uses(template: dict[str, Any]) -> None:
    policies = {}
    for policy in template["Resources"]["FunctionRole"]["Properties"]["Policies"]:
        if "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        policies[policy["PolicyName"]] = _statements(policy)
    assert "ManagedPolicyArns" not in template["Resources"]["FunctionRole"]["Properties"]

    by_action: dict[str, Any] = {}
    for name, statements in policies.items():
        for statement in statements:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                assert "*" not in action, f"{name} grants a wildcard action {action}"
                by_action[action] = statement["Resource"]
                if statement["Resource"] == "*":
                    assert action.startswith("ec2:"), f"{action} is granted on every resource"

    assert by_action["secretsmanager:GetSecretValue"] == {"Ref": "DbSecretArn"}
    assert by_action["logs:PutLogEvents"] == {"Fn::GetAtt": ["FunctionLogGroup", "Arn"]}
    assert by_action["sqs:DeleteMessage"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert "logs:CreateLogGroup" not in by_action  # the template creates the group


def test_the_function_may_invoke_itself_and_nothing_else(template: dict[str, Any]) -> None:
    policy = template["Resources"]["InvokeSelfPolicy"]
    assert policy["Type"] == "AWS::IAM::RolePolicy" and policy["Condition"] == "FanOutOn"
    assert policy["Properties"]["RoleName"] == {"Ref": "FunctionRole"}
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": [{"Fn::GetAtt": ["Function", "Arn"]}, {"Fn::Sub": "${Function.Arn}:*"}],  # itself, any version
    }
    for other in template["Resources"]["FunctionRole"]["Properties"]["Policies"]:
        assert "lambda:InvokeFunction" not in json.dumps(other)


def test_scaling_knobs_reach_the_function(template: dict[str, Any]) -> None:
    function = _function(template)
    variables = function["Environment"]["Variables"]
    assert variables["JOBQUEUE_MAX_DRAINS"] == {"Ref": "MaxDrains"}
    assert variables["JOBQUEUE_CONCURRENCY"] == {"Ref": "Concurrency"}
    assert variables["JOBQUEUE_FANOUT"] == {"Ref": "FanOut"}
    # jobqueue ends its own chains of drains after 10 invocations; Lambda's detection stays on as a net.
    assert function["RecursiveLoop"] == "Terminate"

    assert rules.MAX_HOPS < 16
