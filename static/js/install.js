// Installing the app: an "Install app" button where the browser offers installation
// (beforeinstallprompt, Chromium), and on iPhone and iPad, where Web Push works only in a web app
// on the Home Screen, the notifications page explains how before it offers push.

const button = document.getElementById('install-app');
let offer = null;

window.addEventListener('beforeinstallprompt', (event) => {
  // Keep the browser's own mini-infobar away: the button asks when the person wants it.
  event.preventDefault();
  offer = event;
  if (button) button.hidden = false;
});

button?.addEventListener('click', async () => {
  if (!offer) return;
  const asked = offer;
  offer = null;
  button.hidden = true;
  await asked.prompt();
  await asked.userChoice.catch(() => null);
});

window.addEventListener('appinstalled', () => {
  offer = null;
  if (button) button.hidden = true;
});

/** Tell whether this is iOS or iPadOS Safari outside an installed web app. */
export function iosOutsideHomeScreen() {
  const ios = /iPad|iPhone|iPod/.test(navigator.userAgent)
    || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
  const standalone = navigator.standalone === true
    || window.matchMedia?.('(display-mode: standalone)').matches;
  return ios && !standalone;
}

const hint = document.getElementById('ios-install');
if (hint && iosOutsideHomeScreen()) {
  // Shown above the push card: Safari here has no Web Push until the app is on the Home Screen.
  hint.hidden = false;
}

// Every visitor gets the service worker (push.js registers the same one for signed-in users):
// it is what makes the site installable and serves the offline page.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/service-worker.js', { scope: '/', updateViaCache: 'none' }).catch(() => {});
}
