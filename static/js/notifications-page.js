// The notifications page: push switch, my devices, test notification, inbox.

import { api } from './api.js';
import { t, tn } from './i18n.js';
import {
  currentSubscription, disablePush, enablePush, initialSync, isIOS, isStandalone, pushState,
  registerServiceWorker, removeDevice, vapidPublicKey,
} from './push.js';
import { createInbox, fetchNotification, formatDate, refreshUnreadCount } from './inbox.js';

const $ = (id) => document.getElementById(id);

const els = {
  status: $('push-status'),
  help: $('push-help'),
  toggle: $('push-toggle'),
  pushMessage: $('push-message'),
  sendTest: $('send-test'),
  testStatus: $('test-status'),
  devices: $('devices'),
  devicesStatus: $('devices-status'),
};

let pushOn = false;

/** Show a message in a status element; kind is 'error', 'success' or 'info'. */
function say(node, message, kind = 'info') {
  node.textContent = message || '';
  node.dataset.kind = kind;
  node.hidden = !message;
}

/** Disable a button and show `busyLabel` while `work` runs; restore it afterwards. */
async function busy(button, busyLabel, work) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = busyLabel;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

// ---------------------------------------------------------------------------------------------
// Push switch

const STATUS_TEXT = {
  on: t('Push is on for this device.'),
  off: t('Push is off for this device.'),
  blocked: t('Push is blocked: notifications are denied for this site.'),
  unsupported: t('Push is not supported in this browser.'),
};

function helpText(state) {
  if (state === 'unsupported') {
    if (isIOS() && !isStandalone()) {
      return t('On iPhone and iPad, push works only in the installed app: tap Share → "Add to Home Screen", open Webpush from your home screen, log in and turn push on there (iOS 16.4 or later).');
    }
    if (!window.isSecureContext) return t('Push needs a secure (https) connection.');
    return t('Try a current version of Firefox, Chrome, Edge or Safari. Your inbox below still works.');
  }
  if (state === 'blocked') {
    return t("To turn push on, allow notifications for this site in your browser's site settings (the icon left of the address bar), then reload this page.");
  }
  if (state === 'off') return t('Turn push on to be told even when this site is closed.');
  return t('New notifications appear on this device even when the site is closed.');
}

async function showPushState() {
  let state;
  try {
    ({ state } = await pushState());
  } catch (err) {
    state = 'off';
    say(els.pushMessage, t('Could not read the push state: {error}', { error: err.message }), 'error');
  }
  pushOn = state === 'on';
  els.status.textContent = STATUS_TEXT[state];
  els.status.dataset.state = state;
  els.help.textContent = helpText(state);
  els.help.hidden = false;
  els.toggle.textContent = pushOn ? t('Turn off push') : t('Turn on push');
  els.toggle.classList.toggle('btn-primary', !pushOn);
  els.toggle.disabled = state === 'unsupported' || state === 'blocked';
  els.toggle.hidden = state === 'unsupported';
  return state;
}

els.toggle.addEventListener('click', async () => {
  say(els.pushMessage, '');
  const turningOn = !pushOn;
  try {
    // enablePush() asks for permission first thing: it must run inside this click.
    await busy(els.toggle, turningOn ? t('Turning on…') : t('Turning off…'), turningOn ? enablePush : disablePush);
    say(els.pushMessage, turningOn ? t('Push is on. Send a test notification to check it.') : t('Push is off for this device.'),
      'success');
  } catch (err) {
    say(els.pushMessage, err.message || String(err), 'error');
  }
  await showPushState();
  await loadDevices();
});

// ---------------------------------------------------------------------------------------------
// My devices

/** Describe a user agent string as "Firefox 140 on Linux". */
export function describeUserAgent(ua) {
  if (!ua) return t('Unknown browser');
  const browsers = [
    ['Edge', /Edg(?:e|A|iOS)?\/(\d+)/], ['Opera', /OPR\/(\d+)/], ['Samsung Internet', /SamsungBrowser\/(\d+)/],
    ['Firefox', /(?:Firefox|FxiOS)\/(\d+)/], ['Chrome', /(?:Chrome|CriOS)\/(\d+)/], ['Safari', /Version\/(\d+).*Safari/],
  ];
  const systems = [
    ['Android', /Android/], ['iPadOS', /iPad/], ['iOS', /iPhone|iPod/], ['Windows', /Windows/],
    ['ChromeOS', /CrOS/], ['macOS', /Mac OS X|Macintosh/], ['Linux', /Linux/],
  ];
  const browser = browsers.find(([, re]) => re.test(ua));
  const system = systems.find(([, re]) => re.test(ua));
  const name = browser ? `${browser[0]} ${ua.match(browser[1])[1]}` : ua.split(/[ /]/)[0];
  return system ? `${name} on ${system[0]}` : name;
}

function pushServiceName(endpoint) {
  let host;
  try {
    host = new URL(endpoint).hostname;
  } catch {
    return '';
  }
  if (host.endsWith('googleapis.com')) return t('Google push service');
  if (host.endsWith('mozilla.com')) return t('Mozilla push service');
  if (host.endsWith('push.apple.com')) return t('Apple push service');
  if (host.endsWith('notify.windows.com')) return t('Windows push service');
  return host;
}

function renderDevice(device, currentEndpoint) {
  const li = document.createElement('li');
  li.className = 'device';
  li.dataset.endpoint = device.endpoint;
  li.dataset.id = String(device.id);
  const isThis = device.endpoint === currentEndpoint;
  if (isThis) li.classList.add('this-device');

  const head = document.createElement('div');
  head.className = 'device-head';
  const name = document.createElement('strong');
  name.textContent = describeUserAgent(device.user_agent);
  name.title = device.user_agent || '';
  head.append(name);
  if (isThis) {
    const marker = document.createElement('span');
    marker.className = 'tag tag-accent this-device-marker';
    marker.textContent = t('this device');
    head.append(marker);
  }
  li.append(head);

  const facts = document.createElement('dl');
  facts.className = 'device-facts small';
  const rows = [
    ['added', t('Added'), formatDate(device.created_at) || '—'],
    ['delivered', t('Last delivered'), formatDate(device.last_success_at) || t('never')],
    ['failure', t('Last failure'), formatDate(device.last_failure_at) || t('none')],
    ['via', t('Via'), pushServiceName(device.endpoint)],
  ];
  for (const [key, label, value] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.textContent = value;
    if (key === 'failure' && device.last_failure_at
        && (!device.last_success_at || device.last_failure_at > device.last_success_at)) {
      dd.className = 'warn';
    }
    facts.append(dt, dd);
  }
  li.append(facts);

  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'btn btn-small btn-danger remove-device';
  remove.textContent = t('Remove');
  remove.setAttribute('aria-label', isThis ? t('Remove {device} (this device)', { device: name.textContent }) : t('Remove {device}', { device: name.textContent }));
  remove.addEventListener('click', async () => {
    say(els.devicesStatus, '');
    try {
      await busy(remove, t('Removing…'), () => removeDevice(device.endpoint));
      li.remove();
      say(els.devicesStatus, isThis ? t('Removed. Push is now off for this device.') : t('Device removed.'), 'success');
      if (!els.devices.querySelector('li[data-endpoint]')) showNoDevices();
      if (isThis) await showPushState();
    } catch (err) {
      say(els.devicesStatus, t('Could not remove the device: {error}', { error: err.message }), 'error');
    }
  });
  li.append(remove);
  return li;
}

function showNoDevices() {
  const li = document.createElement('li');
  li.className = 'empty';
  li.textContent = t('No devices yet. Turn on push to add this one.');
  els.devices.replaceChildren(li);
}

async function loadDevices() {
  els.devices.setAttribute('aria-busy', 'true');
  try {
    const [data, subscription] = await Promise.all([
      api('GET', '/api/push/subscriptions'),
      currentSubscription().catch(() => null),
    ]);
    const devices = data.subscriptions ?? [];
    if (!devices.length) {
      showNoDevices();
    } else {
      els.devices.replaceChildren(...devices.map((device) => renderDevice(device, subscription?.endpoint)));
    }
  } catch (err) {
    els.devices.replaceChildren();
    say(els.devicesStatus, t('Could not load your devices: {error}', { error: err.message }), 'error');
  } finally {
    els.devices.setAttribute('aria-busy', 'false');
  }
}

// ---------------------------------------------------------------------------------------------
// Test notification

// What the test reached, said plainly: with push off here or no device at all, it was not
// "sent to your devices", and the way to fix that is the push switch above.
function testResult(devices) {
  const canToggle = !els.toggle.hidden && !els.toggle.disabled;
  const fix = canToggle ? t('use "Turn on push" above') : t('see the note above on turning push on in this browser');
  if (!devices) {
    return [t('No device has push turned on, so nothing was sent by push: the test is only in your inbox below. To get it on this device, {fix}, then send the test again.', { fix }), 'error'];
  }
  if (!pushOn) {
    return [tn('Push is off on this device, so the test will not appear here; it went to your other device. To get it here too, {fix}.',
      'Push is off on this device, so the test will not appear here; it went to your other {n} devices. To get it here too, {fix}.', devices, { fix }), 'info'];
  }
  return [tn('Test notification sent to {n} device, this one included. It should appear in a few seconds.',
    'Test notification sent to {n} devices, this one included. It should appear in a few seconds.', devices), 'success'];
}

els.sendTest.addEventListener('click', async () => {
  say(els.testStatus, '');
  try {
    const reply = await busy(els.sendTest, t('Sending…'), () => api('POST', '/api/push/test'));
    const [text, kind] = testResult(reply?.devices ?? 0);
    say(els.testStatus, text, kind);
    if (!reply?.devices || !pushOn) els.toggle.focus();
    const id = reply?.notification_id;
    if (id != null) fetchNotification(id).then((n) => inbox.prepend(n)).catch(() => {});
    refreshUnreadCount().catch(() => {});
    // Delivery dates change once the worker has sent it.
    setTimeout(() => loadDevices(), 5000);
  } catch (err) {
    say(els.testStatus, t('Could not send the test: {error}', { error: err.message }), 'error');
  }
});

// ---------------------------------------------------------------------------------------------
// Inbox

const inbox = createInbox({
  list: $('inbox'),
  loadMore: $('load-more'),
  markAll: $('mark-all-read'),
  unreadOnly: $('unread-only'),
  status: $('inbox-status'),
});

// live.js hands over every new notification (WebSocket, SSE, polling, or a push shown by the
// service worker); the count comes with it.
document.addEventListener('live:notification', (event) => inbox.prepend(event.detail.notification));
// A settled hold or loan marked its notifications read (live.js).
document.addEventListener('live:read', (event) => event.detail.ids.forEach((id) => inbox.markShownRead(id)));

// The service worker tells open pages what a click on a system notification marked read.
navigator.serviceWorker?.addEventListener('message', (event) => {
  const message = event.data || {};
  if (message.type === 'notification-read') {
    inbox.markShownRead(message.id);
    refreshUnreadCount().catch(() => {});
  }
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') inbox.refreshNewest().catch(() => {});
});

// ---------------------------------------------------------------------------------------------
// Start

inbox.load({ reset: true });
// Warm up what enablePush() needs, so the click goes from permission prompt to subscription fast.
registerServiceWorker().catch(() => {});
vapidPublicKey().catch(() => {});
initialSync.then(async () => {
  await showPushState();
  await loadDevices();
});
