// The hub pane: what the switch sees. The live sequence diagram of the current payment, each
// participant's position against its Net Debit Cap, the open settlement window, and the QR code
// that workshop participants scan to join.
import { get } from './api.js';
import { on, debounce } from './events.js';
import { formatAmount, fraction, isNegative } from './money.js';
import { h, clear, shortTime } from './ui.js';
import { mountSequence } from './sequence.js';

// a time today, or a date and time for an older one
function since(at) {
  const d = new Date(at);
  if (isNaN(d)) return String(at);
  return d.toDateString() === new Date().toDateString() ? shortTime(at) : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

const HUB_SUBJECTS = /^ml\.event\.(transfer|participant|settlementWindow|settlement)\./;

export function mountHub(root, { showJoin = true } = {}) {
  const seqHost = h('div', { class: 'seq-host' });
  const positions = h('tbody');
  const windowEl = h('div', { class: 'window', testid: 'window', 'data-window-id': '', 'data-state': '' }, '…');
  const joinEl = h('div', { class: 'join-qr', testid: 'join-qr' });
  const log = h('ol', { class: 'hub-log' });
  const note = h('p', { class: 'note', hidden: true });
  const positionsTitle = h('h3', {}, 'Positions');

  const el = h('section', { class: 'hub-pane', testid: 'hub' },
    h('h2', {}, 'The hub'),
    note,
    h('div', { class: 'hub-grid' },
      h('div', { class: 'hub-seq card' }, h('h3', {}, 'On the wire'), seqHost),
      h('div', { class: 'hub-side' },
        h('div', { class: 'card' }, positionsTitle,
          h('div', { class: 'table-scroll' }, h('table', { class: 'positions' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Participant'), h('th', { class: 'num' }, 'Position'), h('th', { class: 'num' }, 'Net Debit Cap'),
              h('th', { class: 'bar-col' }, 'Used'), h('th', { class: 'num', title: 'money the DFSP has deposited at the settlement bank' }, 'Funds'))),
            positions)),
          windowEl),
        h('details', { class: 'card hub-events' }, h('summary', {}, 'Hub events'), log),
        showJoin ? h('div', { class: 'card' }, h('h3', {}, 'Join with your phone'), joinEl) : null)));
  clear(root, el);
  mountSequence(seqHost);

  async function refreshHub() {
    const r = await get('/api/hub');
    if (!r.ok || !r.body) {
      note.hidden = false;
      note.textContent = `The hub's positions cannot be read now${r.error ? ': ' + r.error.errorDescription : ''}.`;
      return;
    }
    note.hidden = true;
    const parts = r.body.participants || [];
    const currencies = [...new Set(parts.map((p) => p.currency).filter(Boolean))];
    const one = currencies.length === 1 ? currencies[0] : null;
    const cur = (p) => (one ? '' : p.currency);
    const show = (a, p) => (one ? formatAmount(a, one).replace(` ${one}`, '') : formatAmount(a, cur(p)));
    positionsTitle.textContent = one ? `Positions (${one})` : 'Positions';
    clear(positions, parts.length ? null : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No participants yet.')),
      parts.map((p) => {
        const used = fraction(p.position, p.ndc);
        const level = used >= 0.8 ? 'high' : used >= 0.5 ? 'mid' : 'low';
        return h('tr', { testid: 'position', 'data-participant': p.name, 'data-position': p.position ?? '', 'data-ndc': p.ndc ?? '',
          class: p.active === false ? 'inactive' : '' },
          h('td', {}, p.name, p.active === false ? h('span', { class: 'muted' }, ' (inactive)') : null),
          h('td', { class: `num${isNegative(p.position) ? ' negative' : ''}` }, show(p.position, p)),
          h('td', { class: 'num' }, p.ndc === null || p.ndc === undefined ? '—' : show(p.ndc, p)),
          h('td', { class: 'bar-col' }, h('div', { class: 'bar', title: `${Math.round(used * 100)} % of the cap` },
            h('div', { class: `bar-fill ${level}`, style: `width: ${(used * 100).toFixed(1)}%` }))),
          h('td', { class: 'num' }, show(p.liquidity ?? p.settlementBalance, p)));
      }));
    const w = r.body.window;
    windowEl.setAttribute('data-window-id', w ? String(w.id) : '');
    windowEl.setAttribute('data-state', w ? w.state : '');
    clear(windowEl, w ? [h('span', {}, 'Settlement window '), h('strong', {}, `#${w.id}`), ` ${w.state}`,
      w.createdDate ? h('span', { class: 'muted' }, ` since ${since(w.createdDate)}`) : null]
      : h('span', { class: 'muted' }, 'No open settlement window.'));
  }

  async function refreshJoin() {
    if (!showJoin) return;
    const r = await get('/api/join-qr');
    if (r.ok && r.body && r.body.svg) {
      clear(joinEl, h('div', { class: 'qr-code join', html: r.body.svg }), h('a', { class: 'join-url', href: r.body.url }, r.body.url));
    } else {
      clear(joinEl, h('p', { class: 'muted' }, 'Phones cannot join: start miniloop with --host 0.0.0.0 so phones on the network can join.'));
    }
  }

  const refreshSoon = debounce(refreshHub, 300);
  on('hub', (e) => {
    if (!e || !e.subject) return;
    log.prepend(h('li', {}, h('span', { class: 'muted' }, shortTime(e.at) + ' '), e.subject.replace(/^ml\.event\./, '').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, (u) => u.slice(0, 8) + '…')));
    while (log.children.length > 30) log.lastChild.remove();
    if (HUB_SUBJECTS.test(e.subject)) refreshSoon();
  });
  // a fallback when the hub's own events do not come: a transfer callback on the wire
  on('wire', (e) => { if (e && /^\/(bulkT|t)ransfers\//.test(String(e.path)) && e.method !== 'GET') refreshSoon(); });
  on('reconnect', () => { refreshHub(); refreshJoin(); });
  refreshHub();
  refreshJoin();
}
