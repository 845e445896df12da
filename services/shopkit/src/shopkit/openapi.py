"""The OpenAPI document a service publishes says what it really answers: every error as problem+json.

FastAPI documents a `422` with its own `HTTPValidationError` as `application/json`; the services answer problem+json
(`shopkit.problems`). `install_openapi` replaces that, adds the problems any operation can answer (`400` for a
malformed URL, or malformed JSON with `413` where there is a body, `503` with `Retry-After` when the service sheds
load or loses its database), and a route names its own with `responses=problems(404, 409)`.
"""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from shopkit.problems import PROBLEM_JSON

SCHEMA_REF = "#/components/schemas/"
PROBLEM_SCHEMA_REF = SCHEMA_REF + "Problem"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the shop is answered."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="A URI naming the kind of problem (`.../problems/insufficient-stock`).")
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors: where and what, never the input.")


COMMON_DESCRIPTIONS = {
    400: "Malformed JSON, a URL that is not NUL-free UTF-8 once decoded, or a header the gateway cannot pass on",
    401: "Missing, invalid or expired bearer token",
    402: "Card declined",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Validation failed (`errors` says where)",
    503: "Busy, past its deadline, or a dependency is down: retry after `Retry-After` seconds",
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or COMMON_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: the problems it answers besides those every operation can."""
    return {status: problem_response(status) for status in statuses}


def _document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template=SCHEMA_REF + "{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = problem_response(422)
            responses.setdefault("400", problem_response(400))  # any URL can be malformed (`shopkit.inputs`)
            if "requestBody" in operation:
                responses.setdefault("413", problem_response(413))
                responses.setdefault("422", problem_response(422))
            responses.setdefault("503", problem_response(503))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Makes `app.openapi()` (and so `/openapi.json` and `/docs`) the document with its problems."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_problems(
                get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
