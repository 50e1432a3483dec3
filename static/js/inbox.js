// The inbox: the unread count (header bell, app badge) on every page, and the list on the
// notifications page.

import { api } from './api.js';
import { t, tn } from './i18n.js';

const NOTIFICATIONS_URL = '/api/notifications';
const PAGE_SIZE = 50;

// ---------------------------------------------------------------------------------------------
// API calls

/** Fetch one page of my notifications, newest first. */
export function fetchNotifications({ unread = false, limit = PAGE_SIZE, before = null } = {}) {
  const params = new URLSearchParams({ limit: String(limit) });
  if (unread) params.set('unread', '1');
  if (before != null) params.set('before', String(before));
  return api('GET', `${NOTIFICATIONS_URL}?${params}`);
}

/** Fetch one notification by id. */
export async function fetchNotification(id) {
  const data = await api('GET', `${NOTIFICATIONS_URL}/${encodeURIComponent(id)}`);
  return data?.notification ?? data;
}

/** Mark one notification read; resolve to the server's reply (may carry unread_count). */
export function markRead(id, init) {
  return api('POST', `${NOTIFICATIONS_URL}/${encodeURIComponent(id)}/read`, undefined, init);
}

/** Mark all my notifications read. */
export function markAllRead() {
  return api('POST', `${NOTIFICATIONS_URL}/read-all`);
}

// ---------------------------------------------------------------------------------------------
// Unread count: bell, page counter, app badge

let unreadCount = null;

/** Show `count` unread notifications in the bell, the page counter and the app badge. */
export function showUnreadCount(count) {
  const n = Math.max(0, Number(count) || 0);
  unreadCount = n;
  const bellCount = document.getElementById('bell-count');
  if (bellCount) {
    bellCount.textContent = n > 99 ? '99+' : String(n);
    bellCount.hidden = n === 0;
  }
  document.getElementById('bell')?.setAttribute('aria-label', n ? tn('Notifications, {n} unread', 'Notifications, {n} unread', n) : t('Notifications'));
  const pageCount = document.getElementById('unread-count');
  if (pageCount) pageCount.textContent = String(n);
  setAppBadge(n);
  document.dispatchEvent(new CustomEvent('inbox:unread-count', { detail: { count: n } }));
}

/** Return the last unread count shown, or null before the first. */
export function currentUnreadCount() {
  return unreadCount;
}

function setAppBadge(n) {
  if (!('setAppBadge' in navigator)) return;
  const done = n > 0 ? navigator.setAppBadge(n) : navigator.clearAppBadge();
  done?.catch?.(() => {}); // Not installed, or no permission: the badge is a nicety.
}

/** Fetch the unread count from the server and show it. */
export async function refreshUnreadCount() {
  const data = await fetchNotifications({ unread: true, limit: 1 });
  showUnreadCount(data.unread_count);
  return data.unread_count;
}

// ---------------------------------------------------------------------------------------------
// Formatting

// Times come from time.js, the twin of the server's formatter: the display zone (KST), never
// the browser's own, so the hover and the list agree with every page.
import { formatRelative, formatTime } from './time.js';

export { formatRelative };
/** Format an ISO 8601 timestamp for people ('' for none), in the display zone. */
export const formatDate = formatTime;

/** Return a same-origin http(s) URL for a notification link, or null. */
export function safeUrl(url) {
  if (!url) return null;
  try {
    const parsed = new URL(url, window.location.origin);
    if (parsed.origin !== window.location.origin) return null;
    return parsed.pathname + parsed.search + parsed.hash;
  } catch {
    return null;
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

// The labels come from the server's kinds table (base.html's kind-labels meta tag).
const KIND_LABELS = (() => {
  try {
    return JSON.parse(document.querySelector('meta[name="kind-labels"]')?.content || '{}');
  } catch {
    return {};
  }
})();

// ---------------------------------------------------------------------------------------------
// The list on the notifications page

/**
 * Drive the inbox list.
 *
 * @param {object} els
 * @param {HTMLUListElement} els.list The `#inbox` list.
 * @param {HTMLButtonElement} [els.loadMore] The "Load more" button.
 * @param {HTMLButtonElement} [els.markAll] The "Mark all read" button.
 * @param {HTMLInputElement} [els.unreadOnly] The "Unread only" checkbox.
 * @param {HTMLElement} [els.status] Where errors are shown.
 */
export function createInbox({ list, loadMore, markAll, unreadOnly, status }) {
  let oldestId = null;
  let loading = false;

  function say(message, kind = 'error') {
    if (!status) return;
    status.textContent = message || '';
    status.dataset.kind = kind;
    status.hidden = !message;
  }

  function showEmptyState() {
    const empty = list.querySelector('li.empty');
    const hasItems = list.querySelector('li[data-id]');
    if (hasItems) {
      empty?.remove();
    } else if (!empty) {
      list.append(element('li', 'empty', unreadOnly?.checked ? t('No unread notifications.') : t('No notifications yet.')));
    }
  }

  function render(notification) {
    const unread = !notification.read_at;
    const li = element('li', `notification${unread ? ' unread' : ''}`);
    li.dataset.id = String(notification.id);
    li.dataset.kind = notification.kind ?? '';

    const head = element('div', 'notification-head');
    head.append(element('span', 'kind-tag', KIND_LABELS[notification.kind] ?? notification.kind ?? ''));
    const url = safeUrl(notification.url);
    const title = url ? element('a', 'notification-title', notification.title) : element('span', 'notification-title', notification.title);
    if (url) {
      title.href = url;
      title.addEventListener('click', () => {
        if (li.classList.contains('unread')) markRead(notification.id, { keepalive: true }).catch(() => {});
      });
    }
    head.append(title);
    li.append(head);

    if (notification.body) li.append(element('p', 'notification-body', notification.body));

    const foot = element('div', 'notification-foot');
    // "5 minutes ago", with the time itself in the display zone (KST) on hover: one zone only.
    const time = element('time', 'muted small', formatRelative(notification.created_at));
    time.dateTime = notification.created_at ?? '';
    time.title = formatDate(notification.created_at);
    foot.append(time);
    if (unread) {
      const button = element('button', 'btn btn-small mark-read', t('Mark read'));
      button.type = 'button';
      button.addEventListener('click', () => markOneRead(li, button));
      foot.append(button);
    }
    li.append(foot);
    return li;
  }

  function setRead(li) {
    li.classList.remove('unread');
    li.querySelector('.mark-read')?.remove();
    if (unreadOnly?.checked) li.remove();
    showEmptyState();
  }

  async function afterRead(reply, delta) {
    if (typeof reply?.unread_count === 'number') {
      showUnreadCount(reply.unread_count);
    } else if (unreadCount != null) {
      showUnreadCount(unreadCount - delta);
      refreshUnreadCount().catch(() => {});
    }
  }

  async function markOneRead(li, button) {
    button.disabled = true;
    button.textContent = t('Marking…');
    say('');
    try {
      const reply = await markRead(li.dataset.id);
      setRead(li);
      await afterRead(reply, 1);
    } catch (err) {
      button.disabled = false;
      button.textContent = t('Mark read');
      say(t('Could not mark it read: {error}', { error: err.message }));
    }
  }

  async function load({ reset = false } = {}) {
    if (loading) return;
    loading = true;
    list.setAttribute('aria-busy', 'true');
    if (loadMore) {
      loadMore.disabled = true;
      loadMore.textContent = t('Loading…');
    }
    say('');
    try {
      const data = await fetchNotifications({ unread: unreadOnly?.checked, before: reset ? null : oldestId });
      if (reset) {
        list.replaceChildren();
        oldestId = null;
      }
      for (const notification of data.notifications) {
        if (!list.querySelector(`li[data-id="${CSS.escape(String(notification.id))}"]`)) {
          list.append(render(notification));
        }
        oldestId = notification.id;
      }
      showUnreadCount(data.unread_count);
      if (loadMore) loadMore.hidden = data.notifications.length < PAGE_SIZE;
      showEmptyState();
    } catch (err) {
      say(t('Could not load notifications: {error}', { error: err.message }));
      if (reset) list.querySelector('li.empty')?.remove();
    } finally {
      loading = false;
      list.setAttribute('aria-busy', 'false');
      if (loadMore) {
        loadMore.disabled = false;
        loadMore.textContent = t('Load more');
      }
    }
  }

  /** Put a notification that just arrived at the top (no-op if it is shown already). */
  function prepend(notification) {
    const existing = list.querySelector(`li[data-id="${CSS.escape(String(notification.id))}"]`);
    if (existing) return;
    if (unreadOnly?.checked && notification.read_at) return;
    list.prepend(render(notification));
    showEmptyState();
  }

  /** Show a notification as read (e.g. after a click on it in the system tray). */
  function markShownRead(id) {
    const li = list.querySelector(`li[data-id="${CSS.escape(String(id))}"]`);
    if (li) setRead(li);
  }

  /** Fetch the newest page and put the ones not shown yet on top. */
  async function refreshNewest() {
    const data = await fetchNotifications({ unread: unreadOnly?.checked });
    for (const notification of [...data.notifications].reverse()) prepend(notification);
    showUnreadCount(data.unread_count);
  }

  loadMore?.addEventListener('click', () => load());
  unreadOnly?.addEventListener('change', () => load({ reset: true }));
  markAll?.addEventListener('click', async () => {
    markAll.disabled = true;
    const label = markAll.textContent;
    markAll.textContent = t('Marking…');
    say('');
    try {
      const reply = await markAllRead();
      for (const li of list.querySelectorAll('li.unread')) setRead(li);
      showUnreadCount(typeof reply?.unread_count === 'number' ? reply.unread_count : 0);
      say(t('All notifications are marked read.'), 'success');
    } catch (err) {
      say(t('Could not mark all read: {error}', { error: err.message }));
    } finally {
      markAll.disabled = false;
      markAll.textContent = label;
    }
  });

  return { load, prepend, markShownRead, refreshNewest };
}

// ---------------------------------------------------------------------------------------------
// Every page: fill the bell once (the notifications page loads its list, which does it too).

// live.js fills and updates it on every page; this covers a page loaded without live.js.
if (document.body?.dataset.user && !document.getElementById('inbox')
    && !document.querySelector('script[src*="/js/live.js"]')) {
  refreshUnreadCount().catch((err) => console.warn('Could not load the unread count:', err));
}
