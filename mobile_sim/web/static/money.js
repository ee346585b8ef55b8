// Money is text: the API gives amounts as decimal strings ("2475.5"). This module only formats and
// checks those strings; it never does float arithmetic on an amount that is shown as a result.

const MINOR_UNITS = { JPY: 0, KRW: 0, XOF: 0, XAF: 0, UGX: 0, RWF: 0, VND: 0, BHD: 3, KWD: 3, OMR: 3, TND: 3, JOD: 3 };

export function minorUnits(currency) {
  return currency in MINOR_UNITS ? MINOR_UNITS[currency] : 2;
}

// "2475.5", "USD" -> "2,475.50 USD" (padded to the currency's decimals, never rounded).
export function formatAmount(amount, currency) {
  if (amount === null || amount === undefined || amount === '') return '—';
  const text = String(amount).trim();
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!m) return currency ? `${text} ${currency}` : text;
  const sign = m[1] === '-' ? '−' : '';
  const whole = (m[2] || '0').replace(/^0+(?=\d)/, '');
  let frac = m[3] || '';
  const minor = minorUnits(currency);
  if (frac.length < minor) frac = frac.padEnd(minor, '0');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${grouped}${frac ? '.' + frac : ''}${currency ? ' ' + currency : ''}`;
}

// An amount as typed by a person -> the string the API takes ("12,5" -> "12.5"), or null.
export function cleanAmount(input) {
  let text = String(input ?? '').trim().replace(/\s/g, '');
  if (!text.includes('.') && (text.match(/,/g) || []).length === 1 && /,\d{1,3}$/.test(text) && !/,\d{3}$/.test(text)) {
    text = text.replace(',', '.');
  }
  text = text.replace(/,/g, '');
  if (!/^\d+(\.\d+)?$/.test(text)) return null;
  text = text.replace(/^0+(?=\d)/, '');
  if (!/[1-9]/.test(text)) return null;
  return text;
}

// Position / cap as a fraction 0..1, for drawing a bar only (never shown as an amount).
export function fraction(part, whole) {
  const p = Number(part), w = Number(whole);
  if (!isFinite(p) || !isFinite(w) || w <= 0) return 0;
  return Math.max(0, Math.min(1, p / w));
}

// Is the amount text negative (for colouring), without converting it.
export function isNegative(amount) {
  return /^\s*-/.test(String(amount ?? '')) && /[1-9]/.test(String(amount));
}
