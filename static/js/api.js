// Fetch wrapper for the JSON API: session cookie, CSRF header, JSON in and out.

import { t } from './i18n.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const STATUS_MESSAGES = {
  400: t('The request was not accepted.'),
  401: t('You are logged out. Log in again to continue.'),
  403: t('You are not allowed to do that.'),
  404: t('Not found.'),
  409: t('That conflicts with the current state. Reload and try again.'),
  413: t('The request is too large.'),
  429: t('Too many requests. Wait a moment and try again.'),
};

/** An API failure: `status` is the HTTP status (0 for a network error), `error` the server's error object. */
export class ApiError extends Error {
  constructor(status, error) {
    const message = error?.message || STATUS_MESSAGES[status]
      || (status >= 500 ? t('The server had a problem. Try again in a moment.') : t('Request failed (HTTP {status}).', { status }));
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.error = error ?? null;
    this.code = error?.code ?? null;
    this.field = error?.field ?? null;
  }
}

/** Return the CSRF token the page was rendered with. */
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? '';
}

/**
 * Call the JSON API and return the decoded body (null for an empty one, e.g. 204).
 *
 * @param {string} method HTTP method.
 * @param {string} url Same-origin URL, e.g. '/api/notifications'.
 * @param {object} [body] Sent as JSON when given.
 * @param {RequestInit} [init] Extra fetch options, e.g. {keepalive: true}.
 * @throws {ApiError} On a network error or a non-2xx response.
 */
export async function api(method, url, body, init = {}) {
  const verb = method.toUpperCase();
  const headers = { Accept: 'application/json' };
  if (!SAFE_METHODS.has(verb)) headers['X-CSRFToken'] = csrfToken();
  const options = { ...init, method: verb, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new ApiError(0, { code: 'network_error', message: t('Could not reach the server. Check your connection.') });
  }

  const text = response.status === 204 ? '' : await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data?.error);
  return data;
}
