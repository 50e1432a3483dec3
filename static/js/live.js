// The live channel of this tab: WebSocket, else Server-Sent Events, else polling the inbox API.
// New notifications show as toasts and update the bell and the app badge; a tab that lost its
// connection (or slept) catches up on what it missed when it comes back.

import { fetchNotifications, refreshUnreadCount, safeUrl, showUnreadCount } from './inbox.js';
import { t } from './i18n.js';
import { formatRelative, formatTime } from './time.js';

const TRANSPORTS = ['websocket', 'sse', 'poll'];
// A transport that fails this many times in a row before ever opening gives way to the next.
const FAILURES_BEFORE_FALLBACK = 2;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const POLL_MS = 15000;
// While on a fallback, try the better transports again now and then (a proxy may have healed).
const UPGRADE_RETRY_MS = 5 * 60 * 1000;
// A timer that fires this much later than asked means the machine slept.
const SLEEP_GAP_MS = 15000;
const TOAST_MS = 8000;
// WebSocket close code of "too many live connections for this user" (HTTP 429's twin).
const CLOSE_TOO_MANY = 4429;
const MAX_TOASTS = 3;

let level = 0;
let failures = 0;
let attempt = 0;
let lastId = null; // newest notification id this tab has seen
let current = null; // { close() } of the open transport
let reconnectTimer = null;
let upgradeTimer = null;
const seen = new Set();

// ---------------------------------------------------------------------------------------------
// Messages, from whichever transport

function handle(message) {
  if (message.type === 'notification' && message.notification) {
    receive(message.notification, { toast: true });
  } else if (message.type === 'notifications_read') {
    settled(message);
  } else if (message.type === 'unread_count') {
    showUnreadCount(message.count);
  } else if (message.type === 'resync') {
    catchUp();
  }
}

/** Take one notification in: remember it, toast it, tell the page (inbox list). */
function receive(notification, { toast }) {
  const id = Number(notification.id);
  if (seen.has(id)) return;
  seen.add(id);
  if (lastId == null || id > lastId) lastId = id;
  if (toast) showToast(notification);
  document.dispatchEvent(new CustomEvent('live:notification', { detail: { notification } }));
}

/**
 * A hold or loan was settled: its notifications are read now. Tell the page (inbox list), drop
 * its toasts, and have the service worker close the tag's system notifications.
 */
function settled({ tag, ids = [], last_id: lastId }) {
  document.dispatchEvent(new CustomEvent('live:read', { detail: { tag, ids } }));
  if (tag) document.querySelectorAll(`#toasts .toast[data-tag="${CSS.escape(tag)}"]`).forEach((toast) => {
    if (Number(toast.dataset.id) <= Number(lastId)) toast.remove();
  });
  closeSettled(tag ? [{ tag, last_id: lastId }] : undefined);
}

/** Ask the service worker to close notifications of settled tags (all it knows if undefined). */
function closeSettled(resolved) {
  navigator.serviceWorker?.ready
    .then((registration) => registration.active?.postMessage({ type: 'close-resolved', resolved }))
    .catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Transports

function afterParam() {
  return lastId == null ? '' : `?after=${encodeURIComponent(lastId)}`;
}

function openWebSocket() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws${afterParam()}`);
  let opened = false;
  ws.addEventListener('open', () => {
    opened = true;
    connected();
    sendVisibility();
  });
  ws.addEventListener('message', (event) => {
    try {
      handle(JSON.parse(event.data));
    } catch (err) {
      console.warn('Bad live message:', err);
    }
  });
  ws.addEventListener('close', (event) => {
    if (event.code === CLOSE_TOO_MANY) {
      // The server refused this tab a live stream (too many open): poll instead of retrying;
      // SSE counts against the same limit, so skip it too.
      level = TRANSPORTS.indexOf('poll');
      failures = 0;
      attempt = 0;
      connect();
      return;
    }
    lost(ws, opened);
  });
  return {
    close: () => ws.close(),
    send: (data) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(data)),
  };
}

function openEventSource() {
  const source = new EventSource(`/api/notifications/stream${afterParam()}`);
  let opened = false;
  source.addEventListener('open', () => {
    opened = true;
    connected();
  });
  source.addEventListener('notification', (event) => {
    try {
      receive(JSON.parse(event.data), { toast: true });
    } catch (err) {
      console.warn('Bad live event:', err);
    }
  });
  source.addEventListener('unread_count', (event) => showUnreadCount(JSON.parse(event.data).count));
  source.addEventListener('resync', () => catchUp());
  source.addEventListener('notifications_read', (event) => settled(JSON.parse(event.data)));
  source.addEventListener('error', () => {
    // EventSource reconnects by itself (with Last-Event-ID) while it is CONNECTING; once it is
    // CLOSED (e.g. a 401), or if it never opened, we take over with our own backoff.
    if (source.readyState === EventSource.CLOSED || !opened) {
      source.close();
      lost(source, opened);
    }
  });
  return { close: () => source.close(), send: () => {} };
}

function openPolling() {
  let timer = null;
  let stopped = false;
  const poll = async () => {
    try {
      const data = await fetchNotifications({ limit: 20 });
      if (stopped) return;
      // Unseen rather than newer: a scheduled notification enters the inbox at its release
      // with the older id it was given when it was scheduled.
      const fresh = data.notifications.filter((n) => !seen.has(Number(n.id))).reverse();
      const first = lastId == null;
      for (const notification of fresh) receive(notification, { toast: !first });
      if (first && !data.notifications.length) lastId = 0;
      showUnreadCount(data.unread_count);
      connected();
      timer = setTimeout(poll, POLL_MS);
    } catch (err) {
      if (!stopped) lost(null, false, err?.status === 401);
    }
  };
  poll();
  return { close: () => { stopped = true; clearTimeout(timer); }, send: () => {} };
}

const OPENERS = { websocket: openWebSocket, sse: openEventSource, poll: openPolling };

function supported(name) {
  return name === 'poll' || (name === 'websocket' ? 'WebSocket' in window : 'EventSource' in window);
}

function connect() {
  clearTimeout(reconnectTimer);
  current?.close();
  while (!supported(TRANSPORTS[level])) level += 1;
  document.documentElement.dataset.live = `connecting-${TRANSPORTS[level]}`;
  current = OPENERS[TRANSPORTS[level]]();
}

function connected() {
  attempt = 0;
  failures = 0;
  document.documentElement.dataset.live = TRANSPORTS[level];
  if (level > 0 && !upgradeTimer) {
    upgradeTimer = setTimeout(() => {
      upgradeTimer = null;
      level = 0;
      connect();
    }, UPGRADE_RETRY_MS);
  }
}

function lost(source, opened, loggedOut = false) {
  if (loggedOut) {
    document.documentElement.dataset.live = 'off';
    return; // Nothing to do until the user logs in again.
  }
  if (!opened) {
    failures += 1;
    if (failures >= FAILURES_BEFORE_FALLBACK && level < TRANSPORTS.length - 1) {
      level += 1;
      failures = 0;
      attempt = 0;
    }
  }
  document.documentElement.dataset.live = 'reconnecting';
  attempt += 1;
  const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, delay / 2 + Math.random() * (delay / 2));
}

/** Reconnect now (replaying from lastId), e.g. after sleep or when the network returns. */
function catchUp() {
  attempt = 0;
  connect();
}

// ---------------------------------------------------------------------------------------------
// Visibility: the server skips Web Push while this tab is visible and connected.

function sendVisibility() {
  current?.send({ type: 'visibility', visible: document.visibilityState === 'visible' });
}

document.addEventListener('visibilitychange', sendVisibility);
// A tab being put away must stop counting as visible at once, not after a heartbeat.
window.addEventListener('pagehide', () => current?.close());
window.addEventListener('pageshow', (event) => { if (event.persisted) catchUp(); });
window.addEventListener('online', () => catchUp());

let lastTick = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - lastTick > SLEEP_GAP_MS) catchUp(); // The connection may be dead without knowing it.
  lastTick = now;
}, 5000);

// ---------------------------------------------------------------------------------------------
// Toasts

function toastRegion() {
  let region = document.getElementById('toasts');
  if (!region) {
    region = document.createElement('div');
    region.id = 'toasts';
    region.className = 'toasts';
    region.setAttribute('role', 'status');
    region.setAttribute('aria-live', 'polite');
    document.body.append(region);
  }
  return region;
}

/** Show a toast for a notification; a newer one with the same tag replaces it, as in the tray. */
export function showToast(notification) {
  const region = toastRegion();
  const tag = notification.tag || `n-${notification.id}`;
  const toast = document.createElement('div');
  toast.className = 'toast';
  toast.dataset.id = String(notification.id);
  toast.dataset.tag = tag;

  const title = document.createElement('strong');
  title.className = 'toast-title';
  title.textContent = notification.title;
  toast.append(title);
  if (notification.body) {
    const body = document.createElement('p');
    body.className = 'toast-body';
    body.textContent = notification.body;
    toast.append(body);
  }
  if (notification.created_at) {
    const time = document.createElement('time');
    time.className = 'toast-time muted small';
    time.dateTime = notification.created_at;
    time.title = formatTime(notification.created_at);
    time.textContent = formatRelative(notification.created_at);
    toast.append(time);
  }
  const actions = document.createElement('div');
  actions.className = 'toast-actions';
  const url = safeUrl(notification.url);
  if (url) {
    const link = document.createElement('a');
    link.className = 'btn btn-small btn-primary toast-link';
    link.href = url;
    link.textContent = t('Open');
    actions.append(link);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'btn btn-small btn-ghost toast-close';
  close.textContent = t('Dismiss');
  close.addEventListener('click', () => toast.remove());
  actions.append(close);
  toast.append(actions);

  region.querySelector(`.toast[data-tag="${CSS.escape(tag)}"]`)?.remove();
  region.append(toast);
  while (region.children.length > MAX_TOASTS) region.firstElementChild.remove();
  // Keep the toast while the pointer is on it; otherwise let it go after a while.
  let timer = setTimeout(() => toast.remove(), TOAST_MS);
  toast.addEventListener('mouseenter', () => clearTimeout(timer));
  toast.addEventListener('mouseleave', () => { timer = setTimeout(() => toast.remove(), TOAST_MS); });
}

// ---------------------------------------------------------------------------------------------
// The service worker showed a push (a tab on SSE or polling, or the `test` kind): the system
// notification is the alert, so only take it into the inbox and the bell here.

navigator.serviceWorker?.addEventListener('message', (event) => {
  const message = event.data || {};
  if (message.type === 'notification' && message.notification?.id != null) {
    receive(message.notification, { toast: false });
    refreshUnreadCount().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Start: learn the newest id first, so a reconnect can replay exactly what was missed.

async function start() {
  try {
    const data = await fetchNotifications({ limit: 1 });
    lastId = data.notifications[0]?.id ?? 0;
    for (const notification of data.notifications) seen.add(Number(notification.id));
    showUnreadCount(data.unread_count);
  } catch {
    lastId = null; // The transport's first message brings the count anyway.
  }
  connect();
  closeSettled(); // Tags settled while no page was open: close what the device still shows.
}

if (document.body?.dataset.user) start();
