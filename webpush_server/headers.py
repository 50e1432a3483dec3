"""Security headers on every response: CSP, framing, sniffing, referrer, features, HSTS, caching."""

from __future__ import annotations

from flask import Flask, current_app, request, session
from werkzeug.wrappers import Response

DEFAULTS = {
    # How many proxies in front of us set X-Forwarded-For/-Proto (0: trust none). Rate limits
    # and the audit log key on the client address, which behind a proxy is the proxy's.
    "TRUSTED_PROXY_HOPS": 0,
    "HSTS_MAX_AGE_SECONDS": 31536000,
}


def content_security_policy() -> str:
    """Return the policy: our own scripts only, no framing, live channels to ourselves."""
    # connect-src 'self' does not cover ws:/wss: in every browser (CSP2 browsers need them
    # spelled out), so the WebSocket to this very host is listed explicitly.
    host = request.host
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        # Style attributes are data-driven widths (progress bars); no inline <style> blocks.
        "style-src": "'self'",
        "style-src-attr": "'unsafe-inline'",
        "img-src": "'self' data:",
        "connect-src": f"'self' ws://{host} wss://{host}",
        "worker-src": "'self'",
        "manifest-src": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "object-src": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def add_security_headers(response: Response) -> Response:
    """Set the security headers; keep caching rules the view chose for itself."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault(
            "Strict-Transport-Security",
            f"max-age={int(current_app.config['HSTS_MAX_AGE_SECONDS'])}; includeSubDomains",
        )
    # Static files keep their own caching; the service worker sets no-cache on purpose.
    if request.endpoint != "static" and "Cache-Control" not in headers:
        # The session cookie, not current_user: no database lookup here, even on an error page.
        if request.path.startswith("/api/") or session.get("_user_id"):
            headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response; trust TRUSTED_PROXY_HOPS proxies for the address."""
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    hops = int(app.config["TRUSTED_PROXY_HOPS"])
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Flask documents wrapping wsgi_app this way; the type checker sees a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    app.after_request(add_security_headers)
