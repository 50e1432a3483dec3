// The phone menu: below 720 px the main links fold behind the Menu button. Without this
// script the button stays hidden and the links wrap, so nothing depends on it.
const header = document.querySelector('.site-header');
const button = header?.querySelector('.menu-button');
const nav = document.getElementById('site-nav');

function setOpen(open) {
  nav.classList.toggle('open', open);
  button.setAttribute('aria-expanded', String(open));
}

if (header && button && nav) {
  header.classList.add('js-menu');
  button.addEventListener('click', () => setOpen(!nav.classList.contains('open')));
  // Escape closes the menu and gives focus back to the button, as a disclosure should.
  header.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && nav.classList.contains('open')) {
      setOpen(false);
      button.focus();
    }
  });
}
