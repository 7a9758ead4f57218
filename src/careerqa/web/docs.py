"""``GET /docs``: the OpenAPI description rendered as one plain HTML page.

FastAPI's Swagger UI loads its scripts from a CDN, which an offline machine cannot reach, so this
page is built on the server from ``app.openapi()``: every route with its summary, request body
schema and responses, and a link to the raw ``/openapi.json``. No script runs.

Not handled here: trying requests from the page (use curl or the chat page).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #1f2328; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; margin-top: 2rem; }
.route { border: 1px solid #d0d7de; border-radius: 8px; padding: .6rem 1rem; margin: 1rem 0; }
.method { font-weight: 700; color: #0969da; margin-right: .5rem; }
code, pre { background: #f6f8fa; border-radius: 4px; }
pre { padding: .6rem; overflow-x: auto; font-size: 13px; }
"""


def docs_page(schema: dict[str, Any]) -> str:
    info = schema.get("info", {})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(info.get('title', 'API'))} API</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', 'API'))} API <small>{escape(str(info.get('version', '')))}</small>",
        "</h1>",
        f"<p>{escape(info.get('summary', ''))}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Errors are JSON: "
        '<code>{"error": message}</code>, or OpenAI\'s shape on <code>/v1/</code> routes.</p>',
        "<h2>Routes</h2>",
    ]
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            parts.append("<div class='route'>")
            parts.append(
                f"<div><span class='method'>{escape(method.upper())}</span><code>{escape(path)}</code></div>"
            )
            if op.get("summary"):
                parts.append(f"<p>{escape(op['summary'])}</p>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                parts.append(f"<p>Body: {_schema_name(body)}</p>")
            statuses = ", ".join(
                f"{escape(code)} {escape(r.get('description', ''))}"
                for code, r in op.get("responses", {}).items()
            )
            parts.append(f"<p>Responses: {statuses}</p></div>")
    schemas = schema.get("components", {}).get("schemas", {})
    if schemas:
        parts.append("<h2>Schemas</h2>")
        for name, body in schemas.items():
            parts.append(f"<h3 id='{escape(name)}'>{escape(name)}</h3>")
            parts.append(f"<pre>{escape(json.dumps(body, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f"<a href='#{escape(name)}'>{escape(name)}</a>"
    return f"<code>{escape(json.dumps(schema))}</code>"
