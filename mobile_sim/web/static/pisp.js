// The PISP app (budgetapp): a budgeting app that pays from accounts it does not hold. Link a
// customer's account (OTP read from their phone), list the links, pay from one, unlink.
import { config, get, post, simUrl } from './api.js';
import { on, debounce } from './events.js';
import { formatAmount, cleanAmount } from './money.js';
import { h, clear, field, busy, resultBox } from './ui.js';
import { explain, title } from './words.js';
import { shortPath } from './sequence.js';

export async function mountPisp(root) {
  let cfg;
  try { cfg = await config(); } catch (e) { clear(root, h('p', { class: 'note bad' }, `Cannot load miniloop's configuration: ${e.message}`)); return; }
  const pisp = cfg.pisps[0];
  if (!pisp) {
    clear(root, h('section', { class: 'device pisp', testid: 'pisp' }, h('p', { class: 'note' }, 'This hub has no simulated PISP (payment initiation app).')));
    return;
  }
  let links = [];
  let chosen = null; // consentId to pay from

  const dfspSelect = h('select', { testid: 'pisp-dfsp' }, cfg.dfsps.map((d) => h('option', { value: d.name }, d.name)));
  const user = field("Customer's number at that wallet", { testid: 'pisp-user', inputmode: 'tel', list: 'pisp-users' });
  const users = h('datalist', { id: 'pisp-users' });
  const fillUsers = () => {
    const d = cfg.dfsps.find((x) => x.name === dfspSelect.value);
    clear(users, (d && d.customers || []).map((c) => h('option', { value: c.id }, c.name)));
  };
  dfspSelect.addEventListener('change', fillUsers);
  fillUsers();
  const linksEl = h('ul', { class: 'pisp-links', testid: 'pisp-links' });
  const payTo = field('Pay to (phone number)', { testid: 'pisp-pay-to', type: 'tel', inputmode: 'tel', placeholder: 'e.g. 27730000001' });
  const payAmount = field('Amount', { testid: 'pisp-pay-amount', inputmode: 'decimal', placeholder: 'e.g. 25' });
  const payFrom = h('p', { class: 'muted' });
  const resultHost = h('div', { class: 'pisp-result-host' });
  const wireHost = h('div');
  const formError = h('p', { class: 'form-error', role: 'alert' });

  function showResult(state, words, error, messages) {
    clear(resultHost, resultBox({ testid: 'pisp-result', state, title: title(state), words, error, ok: ['LINKED', 'COMMITTED', 'REVOKED'].includes(state) }));
    clear(wireHost, messages && messages.length ? h('details', { class: 'pisp-wire' }, h('summary', {}, `The messages (${messages.length})`),
      h('ol', {}, messages.map((m) => h('li', { class: m.body && m.body.errorInformation ? 'bad-text' : '' },
        `${m.direction === 'out' ? '→' : m.direction === 'in' ? '←' : '⇄'} ${m.method} ${shortPath(m.path)}`,
        m.direction === 'out' && m.destination ? h('span', { class: 'muted' }, ` to ${m.destination}`) : null,
        m.direction === 'in' && m.source ? h('span', { class: 'muted' }, ` from ${m.source}`) : null)))) : null);
  }
  function working(text) {
    clear(resultHost, h('div', { testid: 'pisp-result', 'data-state': 'WORKING', class: 'result neutral' }, busy(text)));
    clear(wireHost);
  }

  async function refreshLinks() {
    const r = await get(simUrl(pisp, 'links'));
    if (!r.ok) return;
    links = (r.body && r.body.links) || [];
    const live = links.filter((l) => l.state === 'LINKED');
    if (!chosen || !live.some((l) => l.consentId === chosen)) chosen = live.length ? live[0].consentId : null;
    render();
  }
  function render() {
    clear(linksEl, links.length ? null : h('li', { class: 'muted' }, 'No linked accounts yet.'),
      links.slice(0, 8).map((l) => h('li', { class: `pisp-link-item${l.consentId === chosen ? ' chosen' : ''}${l.state !== 'LINKED' ? ' revoked' : ''}`,
        testid: 'pisp-link-item', 'data-consent-id': l.consentId, 'data-state': l.state },
        h('label', {},
          h('input', { type: 'radio', name: 'pisp-from', value: l.consentId, checked: l.consentId === chosen, disabled: l.state !== 'LINKED',
            onchange: () => { chosen = l.consentId; render(); } }),
          h('span', {}, h('strong', {}, (l.addresses && l.addresses[0]) || `${l.dfsp}.${l.userId}`), ` ${l.state}`)),
        l.state === 'LINKED' ? h('button', { class: 'link-button danger', testid: 'pisp-unlink', onclick: () => unlink(l) }, 'Unlink') : null)));
    const c = links.find((l) => l.consentId === chosen);
    payFrom.textContent = c ? `Pays from ${(c.addresses && c.addresses[0]) || c.dfsp}` : 'Link an account first.';
  }

  async function link() {
    formError.textContent = '';
    const userId = user.input.value.trim().replace(/\s+/g, '');
    if (!userId) { formError.textContent = "Type the customer's number."; return; }
    working(`Linking ${userId} at ${dfspSelect.value}…`);
    const r = await post(simUrl(pisp, 'link'), { dfsp: dfspSelect.value, userId, channel: 'OTP', otp: 'phone', timeoutSeconds: 60 });
    const b = r.body || {};
    const state = b.state || 'ERROR';
    const words = state === 'LINKED'
      ? `Linked: ${(b.accounts && b.accounts[0] && b.accounts[0].accountNickname) || userId}. The app read the code the wallet texted to the phone.`
      : explain(b.error || r.error, state, { to: userId });
    showResult(state, words, b.error || r.error, b.messages);
    if (b.consentId && state === 'LINKED') chosen = b.consentId;
    refreshLinks();
  }

  async function pay() {
    formError.textContent = '';
    const raw = payTo.input.value.trim().replace(/\s+/g, '').replace(/^\+/, '');
    const amount = cleanAmount(payAmount.input.value);
    if (!chosen) { formError.textContent = 'Link an account first.'; return; }
    if (!raw) { formError.textContent = 'Type who to pay.'; return; }
    if (!amount) { formError.textContent = 'Type an amount, such as 25.'; return; }
    working('Paying…');
    const to = raw.includes('/') ? raw : `MSISDN/${raw}`;
    const r = await post(simUrl(pisp, 'pay'), { consentId: chosen, to, amount, timeoutSeconds: 60 });
    const b = r.body || {};
    const state = b.state || 'ERROR';
    let words;
    if (state === 'COMMITTED') {
      const name = (b.payee && b.payee.name) || raw;
      const a = b.authorization || {};
      words = `Paid ${formatAmount((a.transferAmount || b.amount || {}).amount || amount, (a.transferAmount || b.amount || {}).currency)} to ${name}` +
        (a.payeeReceiveAmount ? ` (they received ${formatAmount(a.payeeReceiveAmount.amount, a.payeeReceiveAmount.currency)}).` : '.');
    } else if (state === 'REJECTED' && !b.error && !r.error) {
      words = 'The customer declined the payment.';
    } else {
      words = explain(b.error || r.error, state, { to: raw.split('/').pop() });
    }
    showResult(state, words, b.error || r.error, b.messages);
  }

  async function unlink(l) {
    working(`Unlinking ${(l.addresses && l.addresses[0]) || l.consentId}…`);
    const r = await post(simUrl(pisp, 'unlink'), { consentId: l.consentId, timeoutSeconds: 30 });
    const b = r.body || {};
    const state = b.state || 'ERROR';
    showResult(state, state === 'REVOKED' ? 'The link is gone: the app can no longer pay from this account.' : explain(b.error || r.error, state, {}), b.error || r.error, b.messages);
    refreshLinks();
  }

  const el = h('section', { class: 'device pisp', testid: 'pisp' },
    h('header', { class: 'phone-head' }, h('div', { class: 'dfsp-name' }, `${pisp} · app`), h('div', { class: 'who' }, h('strong', {}, 'Budgeting app'), h('span', { class: 'number' }, 'a PISP'))),
    h('div', { class: 'panel' },
      h('h3', {}, 'Link an account'),
      h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); link(); } },
        h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Wallet'), dfspSelect),
        user.row, users,
        h('button', { class: 'primary', type: 'submit', testid: 'pisp-link' }, 'Link with a code')),
      h('h3', {}, 'Linked accounts'),
      linksEl,
      h('h3', {}, 'Pay from a linked account'),
      h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); pay(); } },
        payFrom, payTo.row, payAmount.row,
        h('button', { class: 'primary', type: 'submit', testid: 'pisp-pay' }, 'Pay')),
      formError, resultHost, wireHost));
  clear(root, el);
  render();
  refreshLinks();
  on('reconnect', refreshLinks);
  // a DFSP can revoke a link on its side: its PATCH /consents/{ID} to the PISP shows on the wire
  const refreshSoon = debounce(refreshLinks, 300);
  on('wire', (e) => { if (e && e.dfsp === pisp && e.method === 'PATCH' && String(e.path).startsWith('/consents/')) refreshSoon(); });
}
