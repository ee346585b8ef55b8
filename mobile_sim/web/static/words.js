// Errors in words a customer understands: one table from FSPIOP error code (or flow state) to a
// sentence, used by every view so the phone, the till and the PISP app say the same thing.

const NOT_FOUND = (c) => c.to ? `No one is registered with the number ${c.to}.` : 'No one is registered with that number.';
const PAYEE_REFUSED = (c) => `${c.name ? c.name + "'s" : "The recipient's"} provider refused the payment.`;
const reason = (d) => (d && d.includes(' - ') ? d.slice(d.indexOf(' - ') + 3) : d || '');

// code -> words, or (ctx, description) => words
export const WORDS = {
  NETWORK: 'Could not reach miniloop. Check the connection and try again.',
  TIMED_OUT: "The recipient's provider did not answer in time. No money has moved.",
  CANCELLED: 'You cancelled. No money has moved.',
  '1000': 'There was a communication problem. Try again.',
  '1001': 'There was a communication problem. Try again.',
  '2000': 'The system had a problem. Try again.',
  '2001': 'The system had a problem. Try again.',
  '2002': 'This is not possible here.',
  '2003': 'The system is busy, try again.',
  '2004': 'The system is busy, try again.',
  '3002': 'That wallet provider is not known here.',
  '3100': (c, d) => d || 'Something in the payment was not right.',
  '3106': 'This payment was already made.',
  '3200': NOT_FOUND,
  '3201': "The recipient's provider is not known to the switch.",
  '3202': 'Your wallet provider is not known to the switch.',
  '3203': NOT_FOUND,
  '3204': NOT_FOUND,
  '3205': 'This quote was not found. Please start again.',
  '3206': 'This request was not found.',
  '3207': 'This payment was not found.',
  '3208': 'This payment was not found.',
  '3300': 'The request expired. No money has moved.',
  '3301': 'The request expired. No money has moved.',
  '3302': 'The offer expired before you confirmed. No money has moved — please start again.',
  '3303': "The recipient's provider did not answer in time. No money has moved.",
  '4000': 'Your balance is too low for this payment.',
  '4001': 'Your wallet provider cannot pay right now: its funds at the hub are too low.',
  '4100': 'The payment was refused.',
  '4101': (c, d) => {
    const why = reason(d);
    return why ? `The customer did not approve the payment: ${why}.` : 'The customer did not approve the payment.';
  },
  '4102': 'This kind of payment is not allowed.',
  '4103': 'This wallet does not take that currency.',
  '4200': 'Your wallet provider has reached its payment limit (Net Debit Cap) — try again after settlement.',
  '5000': PAYEE_REFUSED,
  '5103': 'The amount is too small to cover the fee.',
  '5105': PAYEE_REFUSED,
  '5106': "The recipient's provider does not take that currency.",
  '6000': 'That wallet provider does not offer linking to apps.',
  '6003': (c, d) => `The wallet could not complete it: ${reason(d) || 'a later step failed'}.`,
  '6101': 'The wallet does not allow what the app asked for.',
  '6102': 'The customer said no at their wallet.',
  '6103': 'This link is no longer valid: link the account again.',
  '6104': (c, d) => `The wallet refused: ${reason(d) || 'the request was not accepted'}.`,
  '6200': 'The hub could not verify the app’s key.',
  '6201': 'The payment’s signature was not accepted.',
  '6203': 'The code was wrong.',
  '6204': 'The app’s return address was refused.',
  '6205': 'The wallet does not know this customer.',
};

const BY_CLASS = {
  '1': 'There was a communication problem. Try again.',
  '2': 'The system had a problem. Try again.',
  '3': (c, d) => d || 'Something in the request was not right.',
  '4': 'Your wallet refused the payment.',
  '5': PAYEE_REFUSED,
  '6': (c, d) => `The app's request was refused: ${reason(d) || 'no reason given'}.`,
};

function say(entry, ctx, description) {
  return typeof entry === 'function' ? entry(ctx || {}, description) : entry;
}

// error: {errorCode, errorDescription} or null; state: the flow's state; ctx: {to, name}.
export function explain(error, state, ctx = {}) {
  const code = error && error.errorCode ? String(error.errorCode) : null;
  const description = error ? error.errorDescription : '';
  if (code && WORDS[code] !== undefined) return say(WORDS[code], ctx, description);
  if (state === 'TIMED_OUT') return WORDS.TIMED_OUT;
  if (state === 'CANCELLED') return WORDS.CANCELLED;
  if (code && BY_CLASS[code[0]]) return say(BY_CLASS[code[0]], ctx, description);
  if (description) return description;
  return 'Something went wrong. No money has moved.';
}

// A short title per end state.
export const TITLES = {
  COMMITTED: 'Paid',
  ABORTED: 'Not paid',
  TIMED_OUT: 'No answer in time',
  CANCELLED: 'Cancelled',
  ERROR: 'Not possible',
  REJECTED: 'Refused',
  LINKED: 'Linked',
  REVOKED: 'Unlinked',
};
export function title(state) {
  return TITLES[state] || state || '';
}
