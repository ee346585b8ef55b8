// The confirm steps that Send, Pay and Cash out share: who will be paid ("Yes, pay <name>"), the
// quote (amount, fee, total, what they receive) with Confirm/Cancel, then the end in words.
// It drives a /send or /payQr started with "confirm": true through PUT /send/<transferId>.
import { put, simUrl } from './api.js';
import { formatAmount } from './money.js';
import { h, clear, busy, resultBox } from './ui.js';
import { explain, title } from './words.js';

const END_STATES = ['COMMITTED', 'ABORTED', 'TIMED_OUT', 'CANCELLED'];

export function payeeName(payee) {
  if (!payee) return '';
  if (payee.name) return payee.name;
  const n = payee.personalInfo && payee.personalInfo.complexName;
  if (n) return [n.firstName, n.middleName, n.lastName].filter(Boolean).join(' ');
  return (payee.partyIdInfo && payee.partyIdInfo.partyIdentifier) || '';
}

// host: the element to draw in; dfsp: the payer's DFSP; ctx: {kind: 'send'|'pay'|'cashout', to,
// currency, agentName}; onEnd(body) after the end; onReset() for "New payment".
export function runConfirm(host, { dfsp, start, ctx, onEnd, onReset }) {
  let transferId = null;
  let name = ctx.agentName || '';
  let lastQuote = null;
  const cur = (a) => (a ? formatAmount(a.amount, a.currency || ctx.currency) : '—');

  async function step(request, waiting) {
    clear(host, busy(waiting));
    const r = await request;
    handle(r);
  }

  function handle(r) {
    const b = r.body && typeof r.body === 'object' ? r.body : {};
    if (b.transferId) transferId = b.transferId;
    if (b.payee) name = payeeName(b.payee) || name;
    if (b.quote) lastQuote = b.quote;
    if (b.state === 'WAITING_FOR_PARTY_ACCEPTANCE') return showParty(b);
    if (b.state === 'WAITING_FOR_QUOTE_ACCEPTANCE') return showQuote(b);
    if (END_STATES.includes(b.state)) return showEnd(b.state, b);
    return showEnd('ERROR', b, r.error || { errorCode: String(r.status || ''), errorDescription: `HTTP ${r.status}` });
  }

  function answer(body, waiting) {
    return step(put(simUrl(dfsp, 'send', transferId), body), waiting);
  }

  function showParty(b) {
    const info = (b.payee && b.payee.partyIdInfo) || {};
    clear(host, h('div', { class: 'step' },
      h('p', { class: 'step-label' }, ctx.kind === 'cashout' ? 'Cash out at' : 'You are paying'),
      h('div', { class: 'payee', testid: 'payee-name' }, name || info.partyIdentifier || '?'),
      h('p', { class: 'muted' }, [info.partyIdType, info.partyIdentifier].filter(Boolean).join(' '),
        info.fspId ? ` · at ${info.fspId}` : ''),
      h('div', { class: 'buttons' },
        h('button', { class: 'primary', testid: 'accept-party', onclick: () => answer({ acceptParty: true }, 'Asking for the price…') },
          `Yes, pay ${name || 'them'}`),
        h('button', { class: 'secondary', testid: 'cancel', onclick: () => answer({ acceptParty: false }, 'Cancelling…') }, 'No, cancel'))));
  }

  function showQuote(b) {
    const q = b.quote || {};
    const row = (label, testid, money, strong) => h('div', { class: `quote-row${strong ? ' strong' : ''}` },
      h('span', {}, label),
      h('span', { testid, 'data-amount': money ? money.amount : '' }, cur(money)));
    clear(host, h('div', { class: 'step' },
      h('p', { class: 'step-label' }, `The price to pay ${name}`),
      h('div', { class: 'quote' },
        row('Amount', 'quote-amount', q.amount),
        row(`Fee (charged by ${name}'s provider)`, 'quote-fee', q.payeeFspFee),
        row('Total you pay', 'quote-total', q.transferAmount, true),
        row(ctx.kind === 'cashout' ? `${name} hands you` : `${name} receives`, 'quote-receive', q.payeeReceiveAmount)),
      h('div', { class: 'buttons' },
        h('button', { class: 'primary', testid: 'confirm', onclick: () => answer({ acceptQuote: true }, 'Paying…') }, 'Confirm'),
        h('button', { class: 'secondary', testid: 'cancel', onclick: () => answer({ acceptQuote: false }, 'Cancelling…') }, 'Cancel'))));
  }

  function showEnd(state, b, error) {
    const q = b.quote || lastQuote || {};
    let words;
    const extra = [];
    if (state === 'COMMITTED') {
      if (ctx.kind === 'cashout') {
        words = `You paid ${cur(q.transferAmount)}. ${name || 'The agent'} hands you ${cur(q.payeeReceiveAmount)} in cash.`;
      } else {
        words = `You paid ${cur(q.transferAmount)} to ${name}.`;
        if (q.payeeReceiveAmount && q.transferAmount && q.payeeReceiveAmount.amount !== q.transferAmount.amount) {
          words += ` ${name} received ${cur(q.payeeReceiveAmount)}.`;
        }
      }
      if (b.balances && b.balances.after !== undefined) {
        extra.push(h('p', { class: 'muted' }, `Your new balance: ${formatAmount(b.balances.after, ctx.currency)}`));
      }
    } else {
      words = explain(error || b.error, state, { to: ctx.to, name });
    }
    const box = resultBox({ state, title: title(state), words, error: error || b.error, extra });
    clear(host, box, h('div', { class: 'buttons' },
      h('button', { class: 'secondary', testid: 'new-payment', onclick: onReset }, 'New payment')));
    if (onEnd) onEnd(state, b, box);
  }

  step(start(), ctx.kind === 'cashout' ? 'Finding the agent…' : 'Finding who this is…');
}
