// One way to show time in the browser, the twin of local_time() / when() in
// webpush_server/timeutil.py: the display zone comes from <meta name="time-zone"> (the server's
// choice for this user), the zone is named as people read it (KST), and "in 2 days" is worded
// as Intl.RelativeTimeFormat does, in the page's language (Korean: "2026년 12월 4일 (금) 오전
// 3:04 KST", "2일 후"). Pages, the inbox and toasts all format through here.

import { LANGUAGE, t } from './i18n.js';

const meta = document.querySelector('meta[name="time-zone"]');
const ZONE = meta?.content || 'UTC';
const ABBREVIATIONS = JSON.parse(meta?.dataset.abbreviations || '{}');
const KOREAN = LANGUAGE === 'ko';
// en-GB: day month year, as timeutil.TIME_FORMATS["en"] writes them; ko: its own words.
const LOCALE = KOREAN ? 'ko-KR' : 'en-GB';

function formatter(options) {
  // Korean reads a 12-hour clock with 오전/오후 (timeutil's "a h:mm"); English a 24-hour one.
  const clock = KOREAN ? { hourCycle: 'h12' } : { hourCycle: 'h23' };
  return new Intl.DateTimeFormat(LOCALE, { timeZone: ZONE, ...clock, ...options });
}

const HOUR = KOREAN ? 'numeric' : '2-digit';
const FORMATS = {
  datetime: formatter({ weekday: 'short', day: 'numeric', month: 'numeric', year: 'numeric', hour: HOUR, minute: '2-digit' }),
  date: formatter({ day: 'numeric', month: 'numeric', year: 'numeric' }),
  notice: formatter({ weekday: 'short', day: 'numeric', month: 'numeric', hour: HOUR, minute: '2-digit' }),
};
const OFFSET = formatter({ timeZoneName: 'longOffset' });
const relativeFormat = new Intl.RelativeTimeFormat(LANGUAGE, { numeric: 'auto' });
// Whole units, no weeks: the same words as timeutil.relative_time().
const UNITS = [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600], ['minute', 60]];

/** The zone's name at that moment, as people read it: KST, CET, or UTC+04 where there is none. */
export function zoneLabel(date) {
  const part = OFFSET.formatToParts(date).find((p) => p.type === 'timeZoneName')?.value || 'GMT';
  const match = /GMT([+-])(\d\d):(\d\d)/.exec(part);
  const minutes = match ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
  if (ABBREVIATIONS[String(minutes)]) return ABBREVIATIONS[String(minutes)];
  if (!match) return 'UTC';
  return `UTC${match[1]}${match[2]}${match[3] === '00' ? '' : `:${match[3]}`}`;
}

// Python's %b: ICU's en-GB would say "Sept", so the months are spelled here.
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function parts(date, style) {
  const got = Object.fromEntries(FORMATS[style].formatToParts(date).map((p) => [p.type, p.value]));
  if (KOREAN) {
    // timeutil.TIME_FORMATS["ko"]: y년 M월 d일 (E) a h:mm
    const day = `${Number(got.month)}월 ${Number(got.day)}일`;
    const clock = `${got.dayPeriod} ${Number(got.hour)}:${got.minute}`;
    if (style === 'date') return `${got.year}년 ${day}`;
    if (style === 'notice') return `${day} (${got.weekday}) ${clock}`;
    return `${got.year}년 ${day} (${got.weekday}) ${clock}`;
  }
  got.month = MONTHS[Number(got.month) - 1];
  got.day = String(Number(got.day)); // numeric months make en-GB pad the day: %-d does not
  if (style === 'date') return `${got.day} ${got.month} ${got.year}`;
  if (style === 'notice') return `${got.weekday} ${got.day} ${got.month}, ${got.hour}:${got.minute}`;
  return `${got.day} ${got.month} ${got.year}, ${got.hour}:${got.minute}`;
}

function parse(iso) {
  if (!iso) return null;
  // A plain date (a due date) is a day on the display zone's calendar, not UTC midnight.
  const date = /^\d{4}-\d\d-\d\d$/.test(iso) ? new Date(`${iso}T12:00:00Z`) : new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Format an ISO 8601 time in the display zone: "4 Dec 2026, 03:04 KST" ('' for none). */
export function formatTime(iso, style = 'datetime') {
  const date = parse(iso);
  if (!date) return iso ? String(iso) : '';
  if (/^\d{4}-\d\d-\d\d$/.test(iso)) return parts(date, 'date');
  const text = parts(date, FORMATS[style] ? style : 'datetime');
  return style === 'date' ? text : `${text} ${zoneLabel(date)}`;
}

function zoneDay(date) {
  const got = Object.fromEntries(FORMATS.date.formatToParts(date).map((p) => [p.type, p.value]));
  return Date.UTC(Number(got.year), Number(got.month) - 1, Number(got.day));
}

/** Say how far an ISO time is from now: "in 2 days", "3 hours ago", "tomorrow", "just now". */
export function formatRelative(iso, now = Date.now()) {
  const date = parse(iso);
  if (!date) return '';
  if (/^\d{4}-\d\d-\d\d$/.test(iso)) {
    const days = Math.round((zoneDay(date) - zoneDay(new Date(now))) / 86400000);
    return days === 0 ? t('today') : relativeFormat.format(days, 'day');
  }
  const seconds = (date.getTime() - now) / 1000;
  if (Math.abs(seconds) >= 86400 && Math.abs(seconds) < 2592000) {
    // Calendar days in the display zone, as the date beside it reads.
    return relativeFormat.format(Math.round((zoneDay(date) - zoneDay(new Date(now))) / 86400000), 'day');
  }
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relativeFormat.format(Math.trunc(seconds / size), unit);
  }
  return t('just now');
}

/** Fill a <time> element: its text, and the relative part where data-relative asks for it. */
export function renderTime(element) {
  const iso = element.getAttribute('datetime');
  const text = formatTime(iso, element.dataset.style || 'datetime');
  if (!text) return;
  element.textContent = 'relative' in element.dataset ? `${text} · ${formatRelative(iso)}` : text;
}

/** Re-render every server-rendered time, so "in 2 days" stays true on a page left open. */
export function renderTimes(root = document) {
  for (const element of root.querySelectorAll('time[data-style]')) renderTime(element);
}

renderTimes();
setInterval(renderTimes, 60_000);
