"""Who may use the local Invoke API (and the local SQS beside it): requests
signed (SigV4) with this run's container credentials, checked with botocore's
own signer over what arrived.

The Invoke API runs whatever event it is given, and a message sent to the
local SQS becomes an event too, so a request it cannot tie to the
containers' credentials is refused, whatever else it carries.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time

from .lambda_service import Credentials

SIGNATURE_MAX_AGE = 300.0  # seconds either way between X-Amz-Date and now (AWS allows 15 minutes)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<day>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request\s*,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})"
)


def unsigned(
    credentials: Credentials,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    service: str = "lambda",
) -> tuple[str, str] | None:
    """Why a request is not SigV4-signed with ``credentials`` for ``service`` (the
    signing name: lambda, sqs), as an error code and message, or None when it is.
    ``headers`` have lower-case names.

    botocore's own signer recomputes the signature over what arrived: the
    method, the path, the headers the caller says it signed and the body."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    values = [value for name, value in headers if name == "authorization"]
    if not values:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    found = _AUTHORIZATION.fullmatch(values[0].strip()) if len(values) == 1 else None
    stamps = [value.strip() for name, value in headers if name == "x-amz-date"]
    if found is None or len(stamps) != 1:
        return "IncompleteSignatureException", "The request signature is incomplete or malformed."
    if not hmac.compare_digest(found["key"].encode(), credentials.access_key.encode()):
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    invalid = "InvalidSignatureException", "The request signature we calculated does not match the one provided."
    try:
        signed_at = calendar.timegm(time.strptime(stamps[0], "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return invalid
    if abs(time.time() - signed_at) > SIGNATURE_MAX_AGE:
        return "InvalidSignatureException", "Signature expired: X-Amz-Date is too far from now."
    claimed = dict(headers).get("x-amz-content-sha256")  # botocore trusts this header in place of the body
    if found["service"] != service or found["day"] != stamps[0][:8]:
        return invalid
    if claimed is not None and not hmac.compare_digest(claimed.encode(), hashlib.sha256(body).hexdigest().encode()):
        return invalid
    signed = found["signed"].split(";")
    request = AWSRequest(method=method, url=f"http://localhost{path}", data=body)
    for name, value in headers:
        if name in signed:
            request.headers[name] = value  # adds: a repeated header stays repeated, as it was signed
    request.context["timestamp"] = stamps[0]
    key = BotoCredentials(credentials.access_key, credentials.secret_key)
    signer = SigV4Auth(key, service, found["region"])
    if signer.signed_headers(signer.headers_to_sign(request)) != found["signed"]:
        return invalid  # a header it names is missing, or one it must sign (host) is not named
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected.encode(), found["signature"].encode()):
        return invalid
    return None
