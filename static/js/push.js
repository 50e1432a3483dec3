// Web Push on this device: register the service worker, subscribe, unsubscribe, and resync the
// subscription with the server on every page load (docs/architecture.md, "Web Push rules").

import { api } from './api.js';
import { t } from './i18n.js';

const SERVICE_WORKER_URL = '/service-worker.js';
const SUBSCRIPTIONS_URL = '/api/push/subscriptions';
const READY_TIMEOUT_MS = 15000;

// ---------------------------------------------------------------------------------------------
// Base64url <-> bytes

/** Decode base64url (padding optional) into bytes. */
export function base64UrlToBytes(text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/** Encode bytes (Uint8Array or ArrayBuffer) as unpadded base64url. */
export function bytesToBase64Url(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = '';
  for (const byte of view) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/** Return whether this browser can receive Web Push here (iOS: only as an installed app). */
export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window
    && window.isSecureContext;
}

/** Return whether this is an iPhone or iPad (iPadOS reports itself as a Mac with touch). */
export function isIOS() {
  return /iPad|iPhone|iPod/.test(navigator.userAgent)
    || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
}

/** Return whether the page runs as an installed web app. */
export function isStandalone() {
  return window.matchMedia?.('(display-mode: standalone)').matches || navigator.standalone === true;
}

/** Return the notification permission: 'granted', 'denied', 'default' or 'unsupported'. */
export function permission() {
  return 'Notification' in window ? Notification.permission : 'unsupported';
}

// ---------------------------------------------------------------------------------------------
// Service worker and keys

let registrationPromise = null;
let vapidKeyPromise = null;

/** Register /service-worker.js at scope '/' once per page; resolve to the registration. */
export function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) {
    return Promise.reject(new Error(t('This browser has no service workers.')));
  }
  registrationPromise ??= navigator.serviceWorker
    .register(SERVICE_WORKER_URL, { scope: '/', updateViaCache: 'none' })
    .catch((err) => {
      registrationPromise = null;
      throw err;
    });
  return registrationPromise;
}

/** Resolve to a registration with an active worker (subscribing needs one). */
async function activeRegistration() {
  await registerServiceWorker();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(t('The service worker did not start. Reload the page and try again.'))),
      READY_TIMEOUT_MS);
  });
  try {
    return await Promise.race([navigator.serviceWorker.ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolve to the server's VAPID public key (base64url), fetched once per page. */
export function vapidPublicKey() {
  vapidKeyPromise ??= api('GET', '/api/push/vapid-public-key')
    .then((data) => data.publicKey)
    .catch((err) => {
      vapidKeyPromise = null;
      throw err;
    });
  return vapidKeyPromise;
}

/** Return whether the subscription was made with this key; unknown (null) counts as the same. */
function madeWithKey(subscription, publicKey) {
  const key = subscription.options?.applicationServerKey;
  if (!key) return true; // The browser does not tell; do not churn subscriptions over it.
  return bytesToBase64Url(key) === publicKey.replace(/=+$/, '');
}

/** Resolve to this device's current push subscription, or null. */
export async function currentSubscription() {
  if (!pushSupported()) return null;
  const registration = await registerServiceWorker();
  return registration.pushManager.getSubscription();
}

async function subscribe(registration, publicKey) {
  return registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: base64UrlToBytes(publicKey),
  });
}

/** Send the subscription to the server (an upsert); `oldEndpoint` names the one it replaces. */
function saveSubscription(subscription, oldEndpoint) {
  const body = subscription.toJSON();
  if (oldEndpoint) body.oldEndpoint = oldEndpoint;
  return api('POST', SUBSCRIPTIONS_URL, body);
}

// ---------------------------------------------------------------------------------------------
// What the page calls

/**
 * Return the push state of this device.
 *
 * @returns {Promise<{state: 'on'|'off'|'blocked'|'unsupported', subscription: PushSubscription|null}>}
 */
export async function pushState() {
  if (!pushSupported()) return { state: 'unsupported', subscription: null };
  if (Notification.permission === 'denied') return { state: 'blocked', subscription: null };
  const subscription = await currentSubscription();
  if (subscription && Notification.permission === 'granted') return { state: 'on', subscription };
  return { state: 'off', subscription };
}

// Functions, not constants: t() reads the page's catalog, and each message stays one literal
// so that Babel's extractor finds it.
function blockedMessage() {
  return t("Notifications are blocked for this site. Allow them in your browser's site settings (the icon at the left of the address bar), then turn push on again.");
}

function subscribeFailedMessage() {
  return t('Push stays off: your browser could not reach its push service. Check your connection and try again in a minute. Your inbox here still gets every notification.');
}

/** Say why this browser cannot turn push on, and what would work instead. */
function unsupportedMessage() {
  if (isIOS() && !isStandalone()) {
    return t('On iPhone and iPad, push works only from the Home Screen: tap Share, then "Add to Home Screen", open the app from there and turn push on.');
  }
  return t('This browser cannot receive push notifications. Use a current Firefox, Chrome, Edge or Safari; until then your inbox here still gets every notification.');
}

/**
 * Turn push on for this device: ask permission, subscribe, and tell the server.
 *
 * Call it straight from a click handler: Safari and Firefox only show the permission prompt
 * during a user gesture, so the prompt comes before anything else is awaited.
 */
export async function enablePush() {
  if (!pushSupported()) throw new Error(unsupportedMessage());
  const answer = await Notification.requestPermission();
  if (answer === 'denied') throw new Error(blockedMessage());
  if (answer !== 'granted') throw new Error(t('Push stays off: the permission prompt was dismissed.'));

  const [registration, publicKey] = await Promise.all([activeRegistration(), vapidPublicKey()]);
  let subscription = await registration.pushManager.getSubscription();
  let oldEndpoint = null;
  if (subscription && !madeWithKey(subscription, publicKey)) {
    oldEndpoint = subscription.endpoint;
    await subscription.unsubscribe();
    subscription = null;
  }
  try {
    subscription ??= await subscribe(registration, publicKey);
  } catch (err) {
    // The browser's own words ("AbortError: Registration failed - push service error") tell
    // a person nothing: say what happened and what to do.
    console.warn('push subscription failed', err);
    throw new Error(err && err.name === 'NotAllowedError' ? blockedMessage() : subscribeFailedMessage());
  }
  try {
    await saveSubscription(subscription, oldEndpoint);
  } catch (err) {
    // A subscription the server refused would only show "on" here and never deliver.
    await subscription.unsubscribe().catch(() => {});
    throw err;
  }
  return subscription;
}

/** Turn push off for this device: forget it on the server and unsubscribe locally. */
export async function disablePush() {
  const subscription = await currentSubscription();
  if (!subscription) return;
  let serverError = null;
  try {
    await api('DELETE', SUBSCRIPTIONS_URL, { endpoint: subscription.endpoint });
  } catch (err) {
    serverError = err; // Unsubscribe anyway: the push service then answers 410 and the server forgets it.
  }
  await subscription.unsubscribe();
  if (serverError) throw serverError;
}

/** Remove one of my devices from the server; if it is this device, unsubscribe here too. */
export async function removeDevice(endpoint) {
  await api('DELETE', SUBSCRIPTIONS_URL, { endpoint });
  const subscription = await currentSubscription().catch(() => null);
  if (subscription?.endpoint === endpoint) await subscription.unsubscribe();
}

/**
 * Make the server's copy of this device's subscription current.
 *
 * With permission granted and a subscription, POST it again (an upsert: it may have been
 * deleted after a failure, or belong to another account that used this browser). If it was
 * made with another VAPID key, replace it with one made with the server's key.
 *
 * @returns {Promise<PushSubscription|null>} The subscription the server now holds, if any.
 */
export async function resync() {
  if (!pushSupported() || Notification.permission !== 'granted') return null;
  const registration = await registerServiceWorker();
  let subscription = await registration.pushManager.getSubscription();
  if (!subscription) return null;
  const publicKey = await vapidPublicKey();
  if (madeWithKey(subscription, publicKey)) {
    await saveSubscription(subscription);
    return subscription;
  }
  const oldEndpoint = subscription.endpoint;
  await subscription.unsubscribe();
  subscription = await subscribe(await activeRegistration(), publicKey);
  await saveSubscription(subscription, oldEndpoint);
  return subscription;
}

function loggedIn() {
  return Boolean(document.querySelector('meta[name="csrf-token"]') && document.body?.dataset.user);
}

/** Settles once the page-load resync is done (resolves to the subscription or null; never rejects). */
export const initialSync = (async () => {
  if (!loggedIn() || !pushSupported()) return null;
  try {
    await registerServiceWorker();
    return await resync();
  } catch (err) {
    console.warn('Push resync failed:', err);
    return null;
  }
})();
