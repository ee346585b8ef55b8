// The join page a workshop participant opens from the QR code: type a name, get a wallet of one's
// own at a simulated DFSP, and go to that phone. The phone is remembered in localStorage, so
// coming back offers to continue with it.
import { config, customers, post } from './api.js';
import { h, clear, field, busy, errorDetails } from './ui.js';
import { explain } from './words.js';
import { formatAmount } from './money.js';

const KEY = 'miniloop.phone';

export function storedPhone() {
  try { const p = JSON.parse(localStorage.getItem(KEY) || 'null'); return p && p.dfsp && p.id ? p : null; } catch { return null; }
}
function storePhone(p) {
  try { localStorage.setItem(KEY, JSON.stringify(p)); } catch { /* private mode: nothing remembered */ }
}
const phoneUrl = (p) => `/phone/${encodeURIComponent(p.dfsp)}/${encodeURIComponent(p.id)}`;

export async function mountJoin(root) {
  const name = field('Your name', { testid: 'join-name', autocomplete: 'given-name', maxlength: 60, placeholder: 'e.g. Ada' });
  const status = h('div', { class: 'join-status' });
  const submit = h('button', { class: 'primary', type: 'submit', testid: 'join-submit' }, 'Join');
  const previous = h('div', { class: 'join-previous' });
  const form = h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); join(); } }, name.row, submit);

  clear(root, h('section', { class: 'device join' },
    h('header', { class: 'phone-head' }, h('div', { class: 'dfsp-name' }, 'miniloop workshop'), h('div', { class: 'who' }, h('strong', {}, 'Get a wallet'))),
    h('div', { class: 'panel' },
      h('p', {}, 'Type your name to get a mobile wallet of your own, with a phone number and some money to pay with.'),
      previous, form, status)));

  const old = storedPhone();
  if (old) {
    // offer it only if the hub still knows it (a restarted hub forgets joined wallets)
    let known = false;
    try {
      const cfg = await config();
      const d = cfg.dfsps.find((x) => x.name === old.dfsp);
      known = !!(d && (d.customers || []).some((c) => c.id === old.id));
      if (d && !known) { const list = await customers(old.dfsp); known = !!(list && list.some((c) => c.id === old.id)); }
    } catch { known = false; }
    if (known) {
      clear(previous, h('div', { class: 'note' }, h('p', {}, `This phone already has a wallet: ${old.name || old.id} at ${old.dfsp}.`),
        h('a', { class: 'button primary', href: phoneUrl(old), testid: 'join-continue' }, 'Continue with it'),
        h('p', { class: 'muted small' }, 'Or join again as someone new:')));
    }
  }

  async function join() {
    submit.disabled = true;
    clear(status, busy('Opening your wallet…'));
    const body = {};
    if (name.input.value.trim()) body.name = name.input.value.trim();
    const r = await post('/api/join', body);
    submit.disabled = false;
    if (r.ok && r.body && r.body.dfsp && r.body.id) {
      const p = { dfsp: r.body.dfsp, id: r.body.id, name: r.body.name };
      storePhone(p);
      clear(status, h('p', { class: 'good-text' }, `Welcome ${p.name}! Your number is ${p.id} at ${p.dfsp}, with ${formatAmount(r.body.balance, '')}.`));
      location.href = phoneUrl(p);
      return;
    }
    clear(status, h('div', { class: 'result bad', 'data-state': 'ERROR' },
      h('p', {}, r.status === 404 ? 'Joining is not possible on this hub.' : explain(r.error, null, {})), errorDetails(r.error)));
  }
}
