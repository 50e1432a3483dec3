"""GET /api/openapi.json (OpenAPI 3.1, built from the views' own models) and GET /api/docs.

The document is built from ``app.url_map``: every rule whose view carries a contract
(apidoc.documented), which is every JSON view: all of /api/ and, outside it, /healthz,
/readyz and the JS catalog. Request and response bodies are the views' pydantic models,
rendered as JSON Schema 2020-12, which OpenAPI 3.1 uses as it is. /api/docs is Swagger UI
served from the swagger-ui-bundle wheel (no CDN) and started by a script file of ours, so the
page works under ``script-src 'self'``.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template, send_from_directory
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..apidoc import Doc, doc_of, documented

bp = Blueprint("service_api_docs", __name__, url_prefix="/api")
NOT_JSON = "__apidoc_not_json__"  # views under /api/ that are pages or files, not JSON


class Error(BaseModel):
    """The one error shape: code, message, and the input at fault."""

    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: Error


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (this one)."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


ERROR_TEXT = {
    400: "Bad input: `field` names it; nothing was changed.",
    401: "Not logged in (session) or no valid API key (bearer).",
    403: "Not allowed.",
    404: "No such thing, or not the caller's to see.",
    409: "Clashes with the current state.",
    413: "Request body over 64 KiB.",
    422: "Idempotency-Key reused with a different body (`idempotency_conflict`).",
    429: "Rate limited (`rate_limited`); wait Retry-After seconds.",
    503: "A dependency is not configured or down.",
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "session": [{"session": [], "csrf": []}],
    "optional-session": [{}, {"session": [], "csrf": []}],
    "bearer": [{"apiKey": []}],
    "none": [],
}
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def not_json(view):
    """Mark a view under /api/ that serves a page or a file, not JSON (left out of the doc)."""
    setattr(view, NOT_JSON, True)
    return view


def build(app: Flask) -> dict:
    """Return the OpenAPI 3.1 document of every documented view of app (every JSON one)."""
    operations: list[tuple[str, str, Doc, list[dict]]] = []
    models: set[type[BaseModel]] = {ErrorResponse}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        # Outside /api/ only the JSON of operators' probes and the pages' catalog is documented.
        doc = doc_of(app.view_functions[rule.endpoint])
        if doc is None:
            continue
        path, params = _path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operations.append((path, method.lower(), doc, params))
            models.update(m for m in (doc.request, doc.query) if m is not None)
            models.update(m for m in doc.responses.values() if isinstance(m, type))
    ordered = sorted(models, key=lambda m: m.__name__)
    keys, schemas = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    refs = {model: keys[(model, "validation")] for model in ordered}
    paths: dict[str, dict] = {}
    for path, method, doc, params in operations:
        paths.setdefault(path, {})[method] = _operation(doc, params, refs, method, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "webpush-server",
            "version": "2",
            "description": (
                "The session API (pages' JSON, cookie + X-CSRFToken on unsafe requests) and "
                "the service API (/api/v1, `Authorization: Bearer wps_…`). Errors are "
                '`{"error": {"code", "message", "field"}}`; an invalid body also lists every '
                'field at fault in `"fields": [{"field", "message"}]` (`field` is the first).'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRFToken",
                    "description": "the page's csrf-token meta tag; unsafe methods only",
                },
                "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "wps_…"},
            },
        },
    }


def _path(rule: str) -> tuple[str, list[dict]]:
    params = []
    for converter, name in _CONVERTER.findall(rule):
        schema = {"type": "integer"} if converter == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _CONVERTER.sub(r"{\2}", rule), params


def _ref(refs: dict, model: type[BaseModel]) -> dict:
    return refs[model]


def _operation(doc: Doc, params: list[dict], refs: dict, method: str, path: str) -> dict:
    operation: dict[str, Any] = {
        "summary": doc.summary,
        "operationId": f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}",
        "security": SECURITY[doc.auth],
        "responses": {},
    }
    if doc.tags:
        operation["tags"] = list(doc.tags)
    parameters = list(params)
    for name, description in doc.headers.items():
        parameters.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if doc.query is not None:
        schema = doc.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                }
            )
    if parameters:
        operation["parameters"] = parameters
    if doc.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(refs, doc.request)}},
        }
    for status, model in doc.responses.items():
        if model is None:
            operation["responses"][str(status)] = {"description": "No content."}
        elif isinstance(model, str):
            operation["responses"][str(status)] = {
                "description": "A stream.",
                "content": {model: {"schema": {"type": "string"}}},
            }
        else:
            operation["responses"][str(status)] = {
                "description": (model.__doc__ or model.__name__).strip().splitlines()[0],
                "content": {"application/json": {"schema": _ref(refs, model)}},
            }
    errors = set(doc.errors)
    if doc.request is not None or params or doc.query is not None:
        errors.add(400)
    if doc.auth in ("session", "bearer"):
        errors.add(401)
    for status in sorted(errors):
        operation["responses"][str(status)] = {
            "description": ERROR_TEXT[status],
            "content": {"application/json": {"schema": _ref(refs, ErrorResponse)}},
        }
    return operation


def document(app: Flask) -> dict:
    """Return app's document, built once."""
    cached = app.extensions.get("openapi_document")
    if cached is None:
        cached = app.extensions["openapi_document"] = build(app)
    return cached


@bp.get("/openapi.json")
@documented("This document", responses={200: OpenApiDocument}, auth="none", tags=("docs",))
def openapi_json():
    """Return the OpenAPI 3.1 document."""
    return jsonify(document(current_app._get_current_object()))  # type: ignore[attr-defined]


@bp.get("/docs")
@not_json
def docs():
    """Render the document for people (Swagger UI)."""
    return render_template("api/docs.html")


@bp.get("/docs/vendor/<path:filename>")
@not_json
def vendor(filename: str):
    """Serve Swagger UI's files from the swagger-ui-bundle package (no CDN)."""
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
