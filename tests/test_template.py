"""template.yaml: valid for CloudFormation and SAM, least privilege, and in step with the handler.

No AWS account is needed: cfn-lint checks the template against CloudFormation's
and SAM's schemas, the SAM translator (the code behind ``sam deploy``'s
transform) expands it locally, and checkov looks for insecure settings.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint import api as cfnlint_api
from cfnlint.decode import decode

from jobqueue import rules
from jobqueue.config import Settings
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
    ("POST", "/jobs/{}/signals/{}"),
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


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The template as ``sam deploy``'s transform hands it to CloudFormation."""
    translator = pytest.importorskip("samtranslator.translator.transform", reason="aws-sam-translator not installed")
    sam = copy.deepcopy(template)
    _function(sam)["CodeUri"] = "s3://artifacts/lambda.zip"  # what `sam deploy` substitutes after uploading

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # pseudo-parameters need a region, not an account
        yield translator.transform(sam, {"DbSecretArn": SECRET_ARN}, NoManagedPolicies())


_NO_VALUE = object()


def _resolve(value: Any, conditions: dict[str, bool]) -> Any:
    """``value`` with every Fn::If decided as CloudFormation would, given the conditions' values."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            return _resolve(if_true if conditions[name] else if_false, conditions)
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        resolved = {key: _resolve(item, conditions) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}
    if isinstance(value, list):
        return [item for item in (_resolve(item, conditions) for item in value) if item is not _NO_VALUE]
    return value


def _operations(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path shape) -> operation, for every operation of an OpenAPI body."""
    return {
        (method.upper(), _shape(path)): operation
        for path, item in body["paths"].items()
        for method, operation in item.items()
    }


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


def test_sam_translates_it_to_a_template_cfn_lint_accepts(translated: dict[str, Any]) -> None:
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


TIMER_RESOURCES = ("TimerQueue", "TimerDeadLetterQueue", "TimerEventSource")


@pytest.mark.parametrize("timers", ["on", "off"])
def test_timers_are_a_queue_of_the_functions_own_unless_turned_off(template: dict[str, Any], timers: str) -> None:
    """Timers=on: a TimerQueue (encrypted, with its dead-letter queue) whose messages
    reach the function, which may send to that queue alone, and is told its URL.
    Timers=off: none of it, and no permission left behind."""
    parameter = template["Parameters"]["Timers"]
    assert (parameter["Default"], set(parameter["AllowedValues"])) == ("on", {"on", "off"})
    assert template["Conditions"]["TimersOn"] == {"Fn::Equals": [{"Ref": "Timers"}, "on"]}
    on = timers == "on"
    resources = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource.get("Condition") != "TimersOn" or on
    }
    for name in TIMER_RESOURCES:
        assert (name in resources) == on and template["Resources"][name]["Condition"] == "TimersOn", name
    conditions = {name: False for name in template["Conditions"]} | {"TimersOn": on}
    role = _resolve(template["Resources"]["FunctionRole"]["Properties"], conditions)
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    timer_queue = {"Fn::GetAtt": ["TimerQueue", "Arn"]}
    sends = [s["Resource"] for s in statements if "sqs:SendMessage" in s["Action"]]
    assert sends == [{"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}, *([timer_queue] if on else [])]
    assert [s for s in statements if s["Resource"] == timer_queue and s["Action"] == "sqs:SendMessage"] == (
        [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": timer_queue}] if on else []
    )
    assert any(s["Resource"] == timer_queue for s in statements) == on
    variables = _resolve(_function(template)["Environment"]["Variables"], conditions)
    assert variables.get("JOBQUEUE_TIMER_QUEUE_URL") == ({"Ref": "TimerQueue"} if on else None)
    outputs = {name for name, output in template["Outputs"].items() if output.get("Condition") != "TimersOn" or on}
    assert ("TimerQueueUrl" in outputs) == on
    if not on:
        return
    queue = resources["TimerQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TimerDeadLetterQueue", "Arn"]}
    # Lambda refuses a mapping from a queue whose visibility timeout is below the function's timeout.
    assert queue["VisibilityTimeout"] == _function(template)["Timeout"] == {"Ref": "Timeout"}
    assert queue["MessageRetentionPeriod"] >= 900  # outlives the longest delay
    mapping = resources["TimerEventSource"]["Properties"]
    assert mapping["EventSourceArn"] == timer_queue and mapping["FunctionName"] == {"Ref": "Function"}
    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])
    assert Settings.from_env({"JOBQUEUE_TIMER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/q"}).timer_queue_url


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

    by_action: dict[str, list[Any]] = {}
    for name, statements in policies.items():
        for statement in statements:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                assert "*" not in action, f"{name} grants a wildcard action {action}"
                by_action.setdefault(action, []).append(statement["Resource"])
                if statement["Resource"] == "*":
                    assert action.startswith("ec2:"), f"{action} is granted on every resource"

    # The database's secret, and the tokens' secret when one is named: those two, and no other.
    assert by_action["secretsmanager:GetSecretValue"] == [{"Ref": "DbSecretArn"}, {"Ref": "ApiTokenSecretArn"}]
    assert by_action["logs:PutLogEvents"] == [{"Fn::GetAtt": ["FunctionLogGroup", "Arn"]}]
    assert by_action["sqs:DeleteMessage"] == [
        {"Fn::GetAtt": ["IngestQueue", "Arn"]},
        {"Fn::GetAtt": ["TimerQueue", "Arn"]},
    ]
    assert by_action["sqs:SendMessage"] == [  # those two queues, and no other
        {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]},
        {"Fn::GetAtt": ["TimerQueue", "Arn"]},
    ]
    assert "logs:CreateLogGroup" not in by_action  # the template creates the group


def test_the_token_secret_is_optional_and_readable_only_when_named(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ApiTokenSecretArn"]
    assert parameter["Default"] == ""
    for value, accepted in [
        ("", True),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobqueue/tokens-AbCdEf", True),
        ("jobqueue/tokens", False),  # a name: the policy needs the full ARN
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:*", False),
    ]:
        assert bool(re.fullmatch(parameter["AllowedPattern"], value)) == accepted, value
    named = {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiTokenSecretArn"}, ""]}]}
    assert template["Conditions"]["HasApiTokenSecret"] == named
    variables = _function(template)["Environment"]["Variables"]
    assert variables["JOBQUEUE_API_TOKEN_SECRET_ARN"] == {
        "Fn::If": ["HasApiTokenSecret", {"Ref": "ApiTokenSecretArn"}, {"Ref": "AWS::NoValue"}]
    }
    policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    (conditional,) = [p for p in policies if "Fn::If" in p and p["Fn::If"][0] == "HasApiTokenSecret"]
    assert conditional["Fn::If"][2] == {"Ref": "AWS::NoValue"}  # no secret named: no permission at all
    assert conditional["Fn::If"][1]["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "ApiTokenSecretArn"}}
    ]


def test_a_deployment_leaves_the_builtin_tasks_off(template: dict[str, Any]) -> None:
    variables = _function(template)["Environment"]["Variables"]
    assert variables["JOBQUEUE_BUILTIN_TASKS"] == "off"  # said, not left to the default
    assert Settings.from_env({"JOBQUEUE_BUILTIN_TASKS": "off"}).builtin_tasks is False


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


# --- who may call the HTTP API ------------------------------------------------------------

IAM_ONLY = {"Fn::If": ["IamAuth", [{"AWS_IAM": []}], {"Ref": "AWS::NoValue"}]}


def test_every_route_requires_iam_when_the_function_checks_no_token(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    assert template["Conditions"]["IamAuth"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "none"]}
    assert set(template["Parameters"]["AuthMode"]["AllowedValues"]) == {"token", "none"}
    assert _function(template)["Environment"]["Variables"]["JOBQUEUE_AUTH"] == {"Ref": "AuthMode"}
    api = template["Resources"]["HttpApi"]["Properties"]
    # SAM declares the AWS_IAM scheme; DefaultAuthorizer cannot be conditional, so each route says it.
    assert api["Auth"] == {"EnableIamAuthorizer": True}
    declared = {
        (method, path)
        for method, path in _operations(api["DefinitionBody"])
        if method != "X-AMAZON-APIGATEWAY-ANY-METHOD"
    }
    assert declared == _template_routes(template), "DefinitionBody must list exactly the Function's HttpApi routes"
    assert all(operation == {"security": IAM_ONLY} for operation in _operations(api["DefinitionBody"]).values())

    body = translated["Resources"]["HttpApi"]["Properties"]["Body"]
    assert body["components"]["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    operations = _operations(body)
    assert {route for route in operations if route[0] != "X-AMAZON-APIGATEWAY-ANY-METHOD"} == DESIGNED_ROUTES
    assert ("X-AMAZON-APIGATEWAY-ANY-METHOD", "/$default") in operations  # the catch-all is guarded too
    for route, operation in operations.items():
        assert "x-amazon-apigateway-integration" in operation, f"{route} has no integration: not a Function event"
        # AuthMode=none: API Gateway refuses unsigned requests; token: it leaves them to the function.
        assert _resolve(operation, {"IamAuth": True})["security"] == [{"AWS_IAM": []}], route
        assert "security" not in _resolve(operation, {"IamAuth": False}), route
    assert _problems(cfnlint_api.lint(json.dumps(translated))) == []


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),  # AuthMode=none, or tokens in ApiTokenSecretArn: TokenAuthNeedsAToken checks which
        ("a" * 32, True),
        (secrets.token_hex(32), True),
        (secrets.token_urlsafe(32), True),
        (f"{secrets.token_hex(32)},{secrets.token_hex(16)}", True),  # rotating: old and new
        ("change-me", False),
        ("a" * 31, False),
        (f"{secrets.token_hex(32)},short", False),
        (f"{secrets.token_hex(32)},", False),
        (f"{secrets.token_hex(32)}, {secrets.token_hex(32)}", False),
        (f"{secrets.token_hex(16)} {secrets.token_hex(16)}", False),
    ],
)
def test_api_tokens_are_at_least_32_characters(template: dict[str, Any], value: str, accepted: bool) -> None:
    parameter = template["Parameters"]["ApiToken"]
    assert parameter["NoEcho"] is True and parameter["Default"] == ""
    assert bool(re.fullmatch(parameter["AllowedPattern"], value)) == accepted
    if accepted:  # the function reads exactly the tokens CloudFormation let through
        assert Settings.from_env({"JOBQUEUE_API_TOKEN": value}).api_tokens == tuple(filter(None, value.split(",")))
    rule = template["Rules"]["TokenAuthNeedsAToken"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "token"]}
    assert rule["Assertions"][0]["Assert"] == {  # a token here, or a secret holding some
        "Fn::Or": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiToken"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiTokenSecretArn"}, ""]}]},
        ]
    }


def test_the_http_api_is_throttled(template: dict[str, Any], translated: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert (parameters["ThrottlingBurstLimit"]["Default"], parameters["ThrottlingRateLimit"]["Default"]) == (100, 50)
    assert parameters["ThrottlingBurstLimit"]["MinValue"] >= 1 and parameters["ThrottlingRateLimit"]["MinValue"] >= 1
    settings = {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }
    assert template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"] == settings
    (stage,) = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert stage["Properties"]["DefaultRouteSettings"] == settings


def test_the_http_api_logs_every_request_by_default(template: dict[str, Any], translated: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert template["Parameters"]["AccessLogging"]["Default"] == "on"
    assert template["Conditions"]["AccessLogsOn"] == {"Fn::Equals": [{"Ref": "AccessLogging"}, "on"]}
    group = resources["HttpApiAccessLogGroup"]
    assert group["Condition"] == "AccessLogsOn"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}

    (stage,) = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert "AccessLogSettings" not in _resolve(stage["Properties"], {"AccessLogsOn": False})
    settings = _resolve(stage["Properties"], {"AccessLogsOn": True})["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    line = json.loads(settings["Format"])  # one JSON object a request
    assert {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationError": "$context.integrationErrorMessage",
    }.items() <= line.items()
    assert all(value.startswith("$context.") for value in line.values())
    assert not any("header" in value.lower() or "authorization" in value.lower() for value in line.values())


# --- asynchronous invocations that fail ----------------------------------------------------


def test_failed_async_invocations_land_in_an_encrypted_queue(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    resources = template["Resources"]
    config = _function(template)["EventInvokeConfig"]
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]},
    }
    assert config["MaximumRetryAttempts"] == 0  # the next scheduled tick is the retry
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    queue = resources["AsyncFailureQueue"]
    assert "Condition" not in queue  # scheduled drains are asynchronous whatever the parameters
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600
    alarm = resources["AsyncFailuresAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["AsyncFailureQueue", "QueueName"]}}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")

    (invoke_config,) = [r for r in translated["Resources"].values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    properties = invoke_config["Properties"]
    assert properties["FunctionName"] == {"Ref": "Function"}
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}


def test_every_queue_is_encrypted_and_kept_long_enough(template: dict[str, Any]) -> None:
    queues = {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    expected = {"AsyncFailureQueue", "IngestQueue", "IngestDeadLetterQueue", "TimerQueue", "TimerDeadLetterQueue"}
    assert set(queues) == expected
    for name, properties in queues.items():
        assert properties["SqsManagedSseEnabled"] is True, name
    assert queues["IngestDeadLetterQueue"]["MessageRetentionPeriod"] == 1209600
    assert queues["TimerDeadLetterQueue"]["MessageRetentionPeriod"] == 1209600


# --- checkov ---------------------------------------------------------------------------------

# Each finding checkov still reports is skipped in template.yaml, on its resource,
# with the reason beside it (# checkov:skip=ID: reason). A new finding fails the
# test; so does a new skip, until it is listed here.
CHECKOV_SKIPS = {
    ("CKV_AWS_158", "AWS::Logs::LogGroup.FunctionLogGroup"),  # log groups: CloudWatch's own encryption
    ("CKV_AWS_158", "AWS::Logs::LogGroup.HttpApiAccessLogGroup"),
    ("CKV_AWS_27", "AWS::SQS::Queue.AsyncFailureQueue"),  # SQS-managed encryption, which the check does not know
    ("CKV_AWS_27", "AWS::SQS::Queue.TimerQueue"),  # on by default (Timers=on)
    ("CKV_AWS_27", "AWS::SQS::Queue.TimerDeadLetterQueue"),
    ("CKV_AWS_95", "AWS::Serverless::HttpApi.HttpApi"),  # access logging is on, behind a Fn::If checkov cannot read
    ("CKV_AWS_116", "AWS::Serverless::Function.Function"),  # an OnFailure destination instead of a DLQ
    ("CKV_AWS_173", "AWS::Serverless::Function.Function"),  # env vars under Lambda's AWS managed key
}
# checkov decides each resource's Condition from the parameters' defaults, so it
# sees the optional ingest queues only in a copy of the template that creates them.
CHECKOV_SKIPS_WITH_INGEST = CHECKOV_SKIPS | {
    ("CKV_AWS_27", "AWS::SQS::Queue.IngestQueue"),
    ("CKV_AWS_27", "AWS::SQS::Queue.IngestDeadLetterQueue"),
}
CHECKOV_VERSION = "3.3.30"  # the one .ci/run installs


def _checkov() -> str | None:
    """checkov's command: $CHECKOV, else the venv of its own that .ci/run makes
    (checkov pins boto3 and packaging below requirements-dev.txt, so it cannot
    share .venv), else one on PATH."""
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"]
    own = TEMPLATE.parent / ".venv" / "checkov" / "bin" / "checkov"
    return str(own) if own.is_file() else shutil.which("checkov")


def _with_ingest_queue(text: str) -> str:
    parameter = re.search(r"^  CreateIngestQueue:\n(?:    .*\n)+", text, re.MULTILINE)
    assert parameter and '    Default: "false"\n' in parameter.group(0)
    block = parameter.group(0).replace('    Default: "false"\n', '    Default: "true"\n')
    return text[: parameter.start()] + block + text[parameter.end() :]


@pytest.mark.parametrize("variant", ["as written", "with the ingest queue"])
def test_checkov_finds_nothing_that_is_not_skipped_with_a_reason(variant: str, tmp_path: Path) -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip(
            "checkov is not installed: .ci/run installs it in a venv of its own, .venv/checkov (its pins would "
            f"downgrade boto3 and packaging in .venv); or: python3 -m venv .venv/checkov && "
            f".venv/checkov/bin/pip install checkov=={CHECKOV_VERSION}; or set CHECKOV to its path"
        )
    path = TEMPLATE
    if variant == "with the ingest queue":
        path = tmp_path / "template.yaml"
        path.write_text(_with_ingest_queue(TEMPLATE.read_text()))
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}  # no look-up on PyPI
    # Not --quiet: that leaves the skipped checks, and so their reasons, out of the JSON.
    command = [checkov, "-f", str(path), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path, check=False)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: something failed, read below
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "cloudformation"
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0, "checkov checked nothing"
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "").strip()
        assert len(reason) >= 40, f"{check['check_id']} on {check['resource']} is skipped without a reason"
    expected = CHECKOV_SKIPS_WITH_INGEST if variant == "with the ingest queue" else CHECKOV_SKIPS
    assert {(c["check_id"], c["resource"]) for c in skipped} == expected
    assert done.returncode == 0
