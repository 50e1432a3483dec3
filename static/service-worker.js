/* Webpush Server service worker, served at /service-worker.js with scope '/'.
 *
 * Self-contained on purpose (no imports): it must keep working whatever the page scripts are.
 * Rule: every push shows a notification. Browsers punish silent pushes (Chrome shows a generic
 * one, Firefox takes quota, iOS revokes the subscription after about three).
 */

const ICON = '/static/icons/icon-192.png';
const BADGE = '/static/icons/badge-72.png';
const INBOX_PATH = '/notifications';
const FETCH_TIMEOUT_MS = 8000;

self.addEventListener('install', (event) => {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

// -----------------------------------------------------------------------------------------------
// Small helpers

/** Fetch same-origin JSON with the session cookie; throw on a non-2xx answer or a timeout. */
async function fetchJson(path, { method = 'GET', body, csrf } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  const headers = { Accept: 'application/json' };
  if (csrf) headers['X-CSRFToken'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}`);
    return response.status === 204 ? null : await response.json().catch(() => null);
  } finally {
    clearTimeout(timer);
  }
}

/** Get a CSRF token for this session (a worker has no DOM to read the meta tag from). */
async function csrfToken() {
  const data = await fetchJson('/api/csrf-token');
  return data.csrf_token;
}

/** Resolve a notification link to an absolute same-origin URL; anything else opens the inbox. */
function targetUrl(url) {
  const origin = self.location.origin;
  try {
    const resolved = new URL(url || INBOX_PATH, origin);
    if (resolved.origin === origin && (resolved.protocol === 'https:' || resolved.protocol === 'http:')) {
      return resolved.href;
    }
  } catch {
    // fall through
  }
  return new URL(INBOX_PATH, origin).href;
}

function base64UrlToBytes(text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** Post a message to every open page of ours. */
async function tellPages(message) {
  const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const page of pages) page.postMessage(message);
}

/** Set the app icon badge to the unread count, where the browser has one. */
async function updateAppBadge() {
  if (!('setAppBadge' in self.navigator)) return;
  const data = await fetchJson('/api/notifications?unread=1&limit=1');
  const count = Number(data?.unread_count) || 0;
  if (count > 0) await self.navigator.setAppBadge(count);
  else await self.navigator.clearAppBadge();
}

/**
 * Tell the server this device showed, clicked or closed a notification (the admin dashboard's
 * shown and click rates). No CSRF token: the server takes receipts from our own origin only.
 */
async function report(id, event) {
  if (id == null) return;
  await fetchJson(`/api/notifications/${encodeURIComponent(id)}/receipt`, {
    method: 'POST',
    body: { event },
  });
}

function reportQuietly(id, event) {
  return report(id, event).catch((err) => console.warn(`Could not report ${event}:`, err));
}

// -----------------------------------------------------------------------------------------------
// push: the message is declarative Web Push (`web_push: 8030`, CONTRACT "Push"). Safari shows it
// without us; Chrome and Firefox hand it here. Each reader below returns the same plain shape:
// { id, kind, title, body, url (the page), navigate (the click's link, /n/<id>), tag, lang,
//   created_at, data, tickle, badge (the unread count, or null) }.

const DECLARATIVE = 8030;

/** Read the push payload; null when it is missing or not JSON. */
function readPayload(data) {
  if (!data) return null;
  try {
    const payload = data.json();
    return payload && typeof payload === 'object' ? payload : null;
  } catch {
    return null;
  }
}

/** Read a declarative message: its notification member, with our fields in its `data`. */
function fromDeclarative(message) {
  const shown = message.notification || {};
  const data = shown.data || {};
  return {
    id: data.id ?? null,
    kind: data.kind ?? null,
    title: shown.title || '',
    body: shown.body || '',
    url: data.url || null,
    navigate: shown.navigate || null,
    tag: shown.tag || null,
    lang: shown.lang || null,
    created_at: data.created_at || null,
    data: data.data,
    tickle: Boolean(data.tickle),
    badge: Number.isInteger(message.app_badge) ? message.app_badge : null,
  };
}

/** Read a message of the shape before 8030 (still queued at a push service after a deploy). */
function fromFlat(payload) {
  return {
    id: payload.id ?? null,
    kind: payload.kind ?? null,
    title: payload.title || '',
    body: payload.body || '',
    url: payload.url || null,
    navigate: null,
    tag: payload.tag || null,
    lang: null,
    created_at: payload.created_at || null,
    data: payload.data,
    tickle: Boolean(payload.tickle),
    badge: null,
  };
}

/**
 * Read the push event. Safari's mutable path has no event.data: it gives the notification it is
 * about to show as event.notification, and shows it unless we show another in its place.
 */
function readPushMessage(event) {
  const payload = readPayload(event.data);
  if (payload) return payload.web_push === DECLARATIVE ? fromDeclarative(payload) : fromFlat(payload);
  const proposed = event.notification;
  if (proposed) {
    return {
      ...fromDeclarative({
        notification: {
          title: proposed.title,
          body: proposed.body,
          navigate: proposed.navigate,
          tag: proposed.tag,
          lang: proposed.lang,
          data: proposed.data,
        },
        // No app_badge here: Safari sets it from the message itself; setBadgeFrom asks the inbox.
      }),
      proposed: true,
    };
  }
  return null;
}

/** Return the message complete: a tickle filled in from the inbox API, else as it came. */
async function completeMessage(message) {
  if (!message || !message.tickle) return message;
  if (message.id == null) return null;
  const data = await fetchJson(`/api/notifications/${encodeURIComponent(message.id)}`);
  const full = data?.notification ?? data;
  if (!full) return null;
  return { ...fromFlat(full), navigate: message.navigate, badge: null };
}

/** The link a click opens: navigate (/n/<id>, which counts the click) when it is ours. */
function clickUrl(message) {
  const origin = self.location.origin;
  try {
    if (message.navigate && new URL(message.navigate).origin === origin) return message.navigate;
  } catch {
    // fall through
  }
  if (message.id != null) return new URL(`/n/${encodeURIComponent(message.id)}`, origin).href;
  return targetUrl(message.url);
}

/** The inbox's shape of the message, for the open pages (inbox.js, live.js). */
function asInboxItem(message) {
  return {
    id: message.id,
    kind: message.kind,
    title: message.title,
    body: message.body,
    url: message.url,
    tag: message.tag,
    created_at: message.created_at,
  };
}

// The worker's own words (a notification it could not fetch), in the browser's language: the
// worker has no page to read a catalog from, and these are its only two strings.
const GENERIC = {
  ko: { title: '새 알림', body: '알림함에서 확인하세요.' },
  en: { title: 'New notification', body: 'Open your inbox to read it.' },
};

function genericWords() {
  for (const tag of self.navigator.languages || [self.navigator.language || '']) {
    const language = String(tag).slice(0, 2).toLowerCase();
    if (GENERIC[language]) return GENERIC[language];
  }
  return GENERIC.ko;
}

function showGeneric(id) {
  const words = genericWords();
  return self.registration.showNotification(words.title, {
    body: words.body,
    icon: ICON,
    badge: BADGE,
    tag: id != null ? `n-${id}` : 'generic',
    data: { id: id ?? null, url: id != null ? clickUrl({ id }) : targetUrl(INBOX_PATH) },
    timestamp: Date.now(),
  });
}

function showMessage(message) {
  const id = message.id;
  const tag = message.tag || (id != null ? `n-${id}` : undefined);
  const timestamp = Date.parse(message.created_at);
  const options = {
    body: message.body || '',
    icon: ICON,
    badge: BADGE,
    data: { id: id ?? null, url: clickUrl(message) },
    timestamp: Number.isNaN(timestamp) ? Date.now() : timestamp,
  };
  if (message.lang) options.lang = message.lang;
  if (tag) {
    options.tag = tag;
    options.renotify = true; // A newer message about the same hold or coupon should alert again.
  }
  return self.registration.showNotification(message.title, options);
}

/** Set the app icon badge: from the message's app_badge, else ask the inbox. */
async function setBadgeFrom(message) {
  if (!('setAppBadge' in self.navigator)) return;
  if (message?.badge == null) {
    await updateAppBadge();
  } else if (message.badge > 0) {
    await self.navigator.setAppBadge(message.badge);
  } else {
    await self.navigator.clearAppBadge();
  }
}

async function handlePush(event) {
  const received = readPushMessage(event);
  let message = null;
  try {
    message = await completeMessage(received);
  } catch (err) {
    console.warn('Could not fetch the notification for a tickle:', err);
  }

  let shown = false;
  if (received?.proposed && !received.tickle && received.title) {
    shown = true; // Safari shows its declarative notification itself; another would double it.
  } else if (message && message.title) {
    try {
      await showMessage(message);
      shown = true;
    } catch (err) {
      console.warn('Could not show the notification:', err);
    }
  }
  if (!shown) {
    message = null;
    await showGeneric(received?.id);
  }

  await Promise.allSettled([
    reportQuietly(message?.id ?? received?.id, 'shown'),
    closeResolvedQuietly(),
    setBadgeFrom(message ?? received),
    message ? tellPages({ type: 'notification', notification: asInboxItem(message) }) : Promise.resolve(),
  ]);
}

self.addEventListener('push', (event) => {
  event.waitUntil(handlePush(event));
});

// -----------------------------------------------------------------------------------------------
// Replace, never stack: a settled hold or loan (picked up, cancelled, expired, returned) closes
// its shown notifications. The server lists settled tags with the newest notification id each
// covered; a newer notice with the same tag (hold_cancelled) stays.

/** Close shown notifications of settled tags; resolved defaults to the server's list. */
async function closeResolved(resolved) {
  const settled = resolved ?? (await fetchJson('/api/notifications/resolved'))?.resolved ?? [];
  for (const { tag, last_id: lastId } of settled) {
    if (!tag) continue;
    const shown = await self.registration.getNotifications({ tag });
    for (const notification of shown) {
      const id = Number(notification.data?.id);
      if (Number.isFinite(id) && id <= Number(lastId)) notification.close();
    }
  }
}

function closeResolvedQuietly(resolved) {
  return closeResolved(resolved).catch((err) => console.warn('Could not close settled notifications:', err));
}

// A page asks on load (and when the live channel says a tag was settled).
self.addEventListener('message', (event) => {
  if (event.data?.type === 'close-resolved') event.waitUntil(closeResolvedQuietly(event.data.resolved));
});

// -----------------------------------------------------------------------------------------------
// notificationclick

async function markRead(id) {
  if (id == null) return;
  const csrf = await csrfToken();
  await fetchJson(`/api/notifications/${encodeURIComponent(id)}/read`, { method: 'POST', csrf });
  await tellPages({ type: 'notification-read', id });
}

function withoutHash(url) {
  const parsed = new URL(url);
  parsed.hash = '';
  return parsed.href;
}

/** Focus a page of ours already at `url`, else bring one there, else open a window. */
async function openOrFocus(url) {
  const origin = self.location.origin;
  const isOurs = (client) => new URL(client.url).origin === origin;
  const [all, controlled] = await Promise.all([
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }),
    self.clients.matchAll({ type: 'window' }),
  ]);

  const there = all.filter(isOurs).find((client) => withoutHash(client.url) === withoutHash(url));
  if (there) return there.focus();

  // Only pages this worker controls can be navigated; prefer the one the user last looked at.
  const candidates = controlled.filter(isOurs).sort((a, b) => Number(b.focused) - Number(a.focused)
    || Number(b.visibilityState === 'visible') - Number(a.visibilityState === 'visible'));
  for (const client of candidates) {
    try {
      // Focus first: the permission to focus lapses soon after the click, navigating takes a while.
      const focused = await client.focus().catch(() => client);
      const navigated = await focused.navigate(url);
      if (navigated) return navigated;
    } catch {
      // try the next one
    }
  }
  return self.clients.openWindow(url);
}

self.addEventListener('notificationclick', (event) => {
  const notification = event.notification;
  notification.close();
  const { id = null, url } = notification.data || {};
  // Start both at once: browsers allow opening or focusing a window only shortly after the
  // click (Firefox: 1 s), so it must not wait for the two mark-read requests.
  event.waitUntil(Promise.allSettled([
    markRead(id).catch((err) => console.warn('Could not mark the notification read:', err)),
    reportQuietly(id, 'clicked'),
    openOrFocus(targetUrl(url)),
  ]).then(() => updateAppBadge().catch(() => {})));
});

self.addEventListener('notificationclose', (event) => {
  const { id = null } = event.notification.data || {};
  event.waitUntil(reportQuietly(id, 'closed'));
});

// -----------------------------------------------------------------------------------------------
// pushsubscriptionchange: the push service replaced or expired the subscription.

async function handleSubscriptionChange(event) {
  const oldSubscription = event.oldSubscription ?? null;
  let subscription = event.newSubscription ?? null;
  if (!subscription) {
    let key = oldSubscription?.options?.applicationServerKey ?? null;
    if (!key) {
      const data = await fetchJson('/api/push/vapid-public-key');
      key = base64UrlToBytes(data.publicKey);
    }
    subscription = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  }
  const body = subscription.toJSON();
  if (oldSubscription?.endpoint) body.oldEndpoint = oldSubscription.endpoint;
  const csrf = await csrfToken();
  await fetchJson('/api/push/subscriptions', { method: 'POST', body, csrf });
}

self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil(handleSubscriptionChange(event).catch((err) => {
    // The next page load resyncs (push.js), so this is not the only chance.
    console.warn('Could not renew the push subscription:', err);
  }));
});

// -----------------------------------------------------------------------------------------------
// Offline: when the network is gone, a page load gets the offline page instead of the browser's
// error. Separate from the push handlers above: this part only caches the offline page and the
// files it needs, and answers navigations and those files from the cache when fetch fails.

const OFFLINE_CACHE = 'offline-v1';
const OFFLINE_URL = '/offline';
const OFFLINE_ASSETS = [OFFLINE_URL, '/static/css/app.css', '/static/icons/favicon.svg'];

/** Put the offline page and its files in the cache (at install, and again at activation). */
async function cacheOfflinePage() {
  const cache = await caches.open(OFFLINE_CACHE);
  // credentials: 'omit': the cached page must not carry anyone's session or CSRF token.
  await cache.addAll(OFFLINE_ASSETS.map((url) => new Request(url, { credentials: 'omit' })));
}

/** Drop the caches of older offline versions. */
async function dropOldOfflineCaches() {
  const names = await caches.keys();
  await Promise.all(names.filter((n) => n.startsWith('offline-') && n !== OFFLINE_CACHE).map((n) => caches.delete(n)));
}

/** Network first; a navigation that cannot reach us gets the offline page. */
function offlineFallback(event) {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    event.respondWith(fetch(request).catch(async () => (await caches.match(OFFLINE_URL)) || Response.error()));
  } else if (OFFLINE_ASSETS.includes(url.pathname)) {
    event.respondWith(fetch(request).catch(async () => (await caches.match(url.pathname)) || Response.error()));
  }
}

self.addEventListener('install', (event) => {
  // A failed fetch must not block the worker (and push) from installing.
  event.waitUntil(cacheOfflinePage().catch(() => {}));
});
self.addEventListener('activate', (event) => {
  event.waitUntil(dropOldOfflineCaches().then(cacheOfflinePage).catch(() => {}));
});
self.addEventListener('fetch', offlineFallback);
