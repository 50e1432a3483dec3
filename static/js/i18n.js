// The page's language for scripts: t("Sent") / tn("{n} device", "{n} devices", n) look the
// English text up in the catalog the page carries (<script type="application/json"
// id="js-catalog">, which CSP lets through since it is never executed) and fill {name}
// placeholders. `make messages` extracts these calls with Babel's javascript extractor.

const block = document.getElementById('js-catalog');
const CATALOG = block ? JSON.parse(block.textContent || '{}') : {};

/** The language the page is written in: "ko" or "en" (<html lang>). */
export const LANGUAGE = document.documentElement.lang || 'en';

const PLURALS = new Intl.PluralRules(LANGUAGE);

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Translate a message and fill its {placeholders}. */
export function t(message, values = {}) {
  const found = CATALOG[message];
  return fill(typeof found === 'string' && found ? found : message, values);
}

/** Translate a message that depends on a count; {n} is the count unless values say otherwise. */
export function tn(singular, plural, count, values = {}) {
  const forms = CATALOG[singular];
  const index = PLURALS.select(count) === 'one' ? 0 : 1;
  let text = index === 0 ? singular : plural;
  if (Array.isArray(forms) && forms.length) text = forms[Math.min(index, forms.length - 1)];
  return fill(text, { n: count, ...values });
}
