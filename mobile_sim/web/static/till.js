// A merchant's (or agent's) till: show a QR code for an amount and turn to PAID when the money
// arrives, or ask a customer to pay (request to pay) and type the OTP the customer reads out.
// One till-status element carries the till's state for both.
import { config, customers, get, post, put, simUrl } from './api.js';
import { on } from './events.js';
import { formatAmount, cleanAmount } from './money.js';
import { h, clear, field, busy, errorDetails } from './ui.js';
import { explain, title } from './words.js';

const RTP_END = ['COMMITTED', 'REJECTED', 'ABORTED', 'TIMED_OUT'];

export async function mountTill(root, { dfsp, id }) {
  let cfg;
  try { cfg = await config(); } catch (e) { clear(root, h('p', { class: 'note bad' }, `Cannot load miniloop's configuration: ${e.message}`)); return; }
  const d = cfg.dfsps.find((x) => x.name === dfsp);
  let me = d && (d.customers || []).find((c) => c.id === id);
  if (d && !me) { const list = await customers(dfsp); me = list && list.find((c) => c.id === id); }
  if (!d || !me) {
    clear(root, h('div', { class: 'device till missing' }, h('p', { class: 'note' }, d ? `${dfsp} has no customer ${id}.` : `There is no simulated DFSP called “${dfsp}”.`)));
    return;
  }
  const currency = d.currency;
  let token = 0; // which action the till shows now; a late answer of an older one is ignored
  let mode = null; // 'qr' | 'rtp'
  let qrBaseline = null; // the newest message id on the till's phone when the QR was made
  let rtp = null; // {transactionRequestId, payerName}

  const statusEl = h('div', { class: 'till-status', testid: 'till-status', 'data-state': 'IDLE', role: 'status', 'aria-live': 'polite' }, 'Ready');
  const amount = field(`Amount (${currency})`, { testid: 'till-amount', inputmode: 'decimal', placeholder: 'e.g. 12.50' });
  const ref = field('Reference (optional)', { testid: 'till-ref', placeholder: 'e.g. TABLE-4', maxlength: 128 });
  const payer = field("Customer's phone number", { testid: 'till-payer', type: 'tel', inputmode: 'tel', placeholder: 'e.g. 27720000001' });
  const formError = h('p', { class: 'form-error', role: 'alert' });
  const qrHost = h('div', { class: 'qr-host' });
  const otpHost = h('div', { class: 'otp-host' });

  function setStatus(state, ...content) {
    statusEl.setAttribute('data-state', state);
    statusEl.className = `till-status state-${state}`;
    clear(statusEl, ...content);
  }

  async function showQr() {
    formError.textContent = '';
    const raw = amount.input.value.trim();
    const amt = raw ? cleanAmount(raw) : null;
    if (raw && !amt) { formError.textContent = 'Type an amount, such as 12.50, or leave it empty for any amount.'; return; }
    const my = ++token;
    mode = 'qr';
    clear(otpHost);
    clear(qrHost, busy('Making the code…'));
    const body = { from: id, fromIdType: me.idType };
    if (amt) body.amount = amt;
    if (ref.input.value.trim()) body.reference = ref.input.value.trim();
    qrBaseline = null;
    const baseline = get(simUrl(dfsp, 'customers', id, 'messages') + `?idType=${encodeURIComponent(me.idType)}`);
    const r = await post(simUrl(dfsp, 'qr'), body);
    if (my !== token) return;
    if (!r.ok || !r.body || !r.body.svg) {
      clear(qrHost);
      setStatus('ERROR', h('strong', {}, 'No code'), ' ', explain(r.error, null, {}), errorDetails(r.error));
      return;
    }
    const q = r.body;
    const svg = h('div', { class: 'qr-code', testid: 'qr-code', html: q.svg });
    clear(qrHost, svg,
      h('div', { class: 'qr-caption' }, h('strong', {}, me.name), ' · ',
        q.qr && q.qr.amount ? formatAmount(q.qr.amount, q.qr.currency || currency) : 'any amount',
        q.qr && q.qr.reference ? ` · ${q.qr.reference}` : ''),
      h('details', { class: 'qr-text-box' }, h('summary', {}, 'The code’s text'), h('code', { class: 'qr-text', testid: 'qr-text' }, q.payload)));
    setStatus('WAITING', h('strong', {}, 'Waiting for payment'), q.qr && q.qr.amount ? ` of ${formatAmount(q.qr.amount, q.qr.currency || currency)}` : '');
    const b = await baseline;
    if (my === token && b.ok && b.body && Array.isArray(b.body.messages)) {
      qrBaseline = b.body.messages.reduce((n, m) => Math.max(n, m.id ?? 0), 0);
    }
  }

  function rtpBody() {
    const number = payer.input.value.trim().replace(/\s+/g, '').replace(/^\+/, '');
    const amt = cleanAmount(amount.input.value);
    if (!number) return { problem: "Type the customer's phone number." };
    if (!amt) return { problem: 'Type the amount to ask for.' };
    const body = { from: id, fromIdType: me.idType, payer: number.includes('/') ? number : `MSISDN/${number}`, amount: amt, otp: 'ask', timeoutSeconds: 120 };
    if (ref.input.value.trim()) body.note = ref.input.value.trim();
    return { body, amt, number };
  }

  async function requestToPay() {
    formError.textContent = '';
    const x = rtpBody();
    if (x.problem) { formError.textContent = x.problem; return; }
    const my = ++token;
    mode = 'rtp';
    rtp = { amount: x.amt, number: x.number };
    clear(qrHost);
    clear(otpHost);
    setStatus('REQUESTED', h('strong', {}, `Asked ${x.number} for ${formatAmount(x.amt, currency)}`),
      h('p', {}, 'Waiting for the customer to approve on their phone…'), h('span', { class: 'spinner', 'aria-hidden': 'true' }));
    const r = await post(simUrl(dfsp, 'requestToPay'), x.body);
    if (my === token) handleRtp(r, my);
  }

  function handleRtp(r, my) {
    const b = r.body && typeof r.body === 'object' ? r.body : {};
    if (b.transactionRequestId) rtp.transactionRequestId = b.transactionRequestId;
    if (b.payer && b.payer.name) rtp.payerName = b.payer.name;
    const who = rtp.payerName || rtp.number;
    if (b.state === 'WAITING_FOR_OTP') {
      setStatus('WAITING_FOR_OTP', h('strong', {}, `Ask ${who} for the one-time password`),
        h('p', {}, `It is on their phone. ${b.retriesLeft ? `Tries left: ${b.retriesLeft}.` : ''}`),
        b.lastOtpWrong || (rtp.tries || 0) > 0 ? h('p', { class: 'bad-text' }, 'That password was wrong. Try again.') : null);
      const otp = field('One-time password', { testid: 'till-otp', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 10, class: 'otp-input' });
      const submit = (value) => {
        rtp.tries = (rtp.tries || 0) + (value === 'cancel' ? 0 : 1);
        clear(otpHost, busy(value === 'cancel' ? 'Cancelling…' : 'Checking…'));
        put(simUrl(dfsp, 'requestToPay', rtp.transactionRequestId), { otp: value }).then((res) => { if (my === token) handleRtp(res, my); });
      };
      clear(otpHost, h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); const v = otp.input.value.trim(); if (v) submit(v); } },
        otp.row,
        h('div', { class: 'buttons' },
          h('button', { class: 'primary', type: 'submit', testid: 'till-otp-submit' }, 'Enter'),
          h('button', { class: 'secondary', type: 'button', testid: 'till-cancel', onclick: () => submit('cancel') }, 'Cancel'))));
      otp.input.focus({ preventScroll: true });
      return;
    }
    clear(otpHost);
    const state = RTP_END.includes(b.state) ? b.state : 'ERROR';
    const error = b.error || r.error;
    if (state === 'COMMITTED') {
      setStatus('COMMITTED', h('strong', {}, 'Paid'),
        h('p', {}, `${who} paid ${formatAmount((b.quote && b.quote.payeeReceiveAmount && b.quote.payeeReceiveAmount.amount) || rtp.amount, currency)}.`),
        b.code ? h('p', {}, `Cash-out code: ${b.code}`) : null);
    } else {
      setStatus(state, h('strong', {}, state === 'REJECTED' ? 'Refused' : title(state)),
        h('p', {}, explain(error, state, { to: rtp.number, name: who })), errorDetails(error));
    }
  }

  // PAID: a "received" text on this till's phone after the QR was made
  const offs = [
    on('text', (e) => {
      if (mode !== 'qr' || !e || e.dfsp !== dfsp || e.customer !== id || !e.message || e.message.kind !== 'received') return;
      if (statusEl.getAttribute('data-state') !== 'WAITING') return;
      if (qrBaseline !== null && (e.message.id ?? Infinity) <= qrBaseline) return;
      setStatus('PAID', h('strong', {}, 'Paid'), h('p', {}, e.message.text));
    }),
  ];

  const tillEl = h('section', { class: `device till dfsp-${dfsp}`, testid: 'till', 'data-dfsp': dfsp, 'data-customer': id },
    h('header', { class: 'phone-head' }, h('div', { class: 'dfsp-name' }, `${dfsp} · till`), h('div', { class: 'who' }, h('strong', {}, me.name), h('span', { class: 'number' }, id))),
    statusEl,
    h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); showQr(); } },
      amount.row, ref.row,
      h('button', { class: 'primary', type: 'submit', testid: 'till-qr' }, 'Show QR')),
    qrHost,
    h('div', { class: 'till-rtp' },
      h('p', { class: 'step-label' }, 'Or ask a customer to pay'),
      h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); requestToPay(); } },
        payer.row,
        h('button', { class: 'secondary', type: 'submit', testid: 'till-request' }, 'Request'))),
    formError, otpHost);
  tillEl.addEventListener('miniloop:unmount', () => offs.forEach((off) => off()));
  clear(root, tillEl);
}
