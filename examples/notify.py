#!/usr/bin/env python3
"""Send one notification through webpush-server's service API and wait until it has gone out.

Standard library only. Usage:

    WEBPUSH_API_KEY=wps_... python examples/notify.py --url http://127.0.0.1:5000 \
        --user-id 42 --title "Your order shipped" [--body ...] [--link /orders/7]

The request carries an Idempotency-Key, so running it again with the same --idempotency-key
(after a timeout, say) never sends twice: the server answers with the first request's id.
Exit status: 0 once every delivery has ended, 1 on an error answer, 2 if still pending after
--wait seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid


def call(base: str, key: str, method: str, path: str, body: dict | None = None, **headers):
    """Send one request; return (status, JSON answer)."""
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        retry_after = error.headers.get("Retry-After")
        answer = json.load(error)
        if retry_after:
            answer["retry_after"] = int(retry_after)
        return error.code, answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--user-id", type=int, action="append", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--body", default="")
    parser.add_argument("--link", default="/notifications", help="a path on the site")
    parser.add_argument("--idempotency-key", default=None, help="default: a new UUID")
    parser.add_argument("--wait", type=float, default=60, help="seconds to poll the status")
    args = parser.parse_args()
    key = os.environ.get("WEBPUSH_API_KEY")
    if not key:
        parser.error("set WEBPUSH_API_KEY to an API key (flask --app wsgi apikey create NAME)")

    payload = {
        "kind": "announcement",
        "recipients": [{"user_id": user_id} for user_id in args.user_id],
        "title": args.title,
        "body": args.body,
        "url": args.link,
    }
    idempotency_key = args.idempotency_key or str(uuid.uuid4())
    for _ in range(5):
        status, answer = call(
            args.url,
            key,
            "POST",
            "/api/v1/notifications",
            payload,
            **{"Idempotency-Key": idempotency_key},
        )
        if status != 429:
            break
        time.sleep(answer.get("retry_after", 1))  # rate limited: the server says how long
    if status != 202:
        print(f"refused ({status}): {answer['error']}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    request_id = answer["id"]

    deadline = time.monotonic() + args.wait
    while True:
        status, report = call(args.url, key, "GET", f"/api/v1/notifications/{request_id}")
        if status != 200:
            print(f"status refused ({status}): {report['error']}", file=sys.stderr)
            return 1
        if report["status"] in ("sent", "cancelled"):
            print(json.dumps(report))
            return 0
        if time.monotonic() > deadline:
            print(json.dumps(report))
            print("still pending", file=sys.stderr)
            return 2
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
