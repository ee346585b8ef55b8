// The live sequence diagram: every FSPIOP message between a simulated DFSP and the hub, grouped
// into payments by traceId (or by time when there is none), drawn as arrows between lanes with
// "Hub" in the middle. Shows the newest payment; a short list looks back at the last ten.
import { on } from './events.js';
import { h, clear, shortTime } from './ui.js';

const KEEP = 600;
const GAP_MS = 2000; // messages without a traceId this close together are one payment
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

export const pathOnly = (path) => String(path || '').split('?')[0];
export const shortPath = (path) => pathOnly(path).replace(UUID, (u) => u.slice(0, 8) + '…');
const timeOf = (at) => (typeof at === 'number' ? at : Date.parse(at) || 0);
const isError = (e) => !!e.errorCode || /\/error$/.test(pathOnly(e.path)) || (e.direction === 'out' && Number(e.status) >= 400);

export function mountSequence(root) {
  const events = new Map(); // seq -> event
  let pinned = null; // the group key the viewer picked, or null to follow the newest
  let selected = null; // the seq whose body is shown

  const title = h('div', { class: 'seq-title' });
  const grid = h('div', { class: 'seq-grid' });
  const diagram = h('div', { class: 'sequence', testid: 'sequence' }, grid);
  const body = h('div', { class: 'seq-body' });
  const history = h('ol', { class: 'seq-history' });
  const historyBox = h('details', { class: 'seq-history-box', open: true }, h('summary', {}, 'Earlier payments'), history);
  const follow = h('button', { class: 'link-button', hidden: true, onclick: () => { pinned = null; selected = null; render(); } }, 'Follow the newest');
  clear(root, h('div', { class: 'seq-wrap' }, h('div', { class: 'seq-top' }, title, follow), diagram, body,
    historyBox));

  function groups() {
    const list = [...events.values()].sort((a, b) => a.seq - b.seq);
    const byKey = new Map();
    let timeGroup = null;
    for (const e of list) {
      let key;
      if (e.traceId) key = `t:${e.traceId}`;
      else {
        const t = timeOf(e.at);
        if (!timeGroup || t - timeGroup.last > GAP_MS) timeGroup = { key: `s:${e.seq}`, last: t };
        timeGroup.last = t;
        key = timeGroup.key;
      }
      if (!byKey.has(key)) byKey.set(key, { key, events: [] });
      byKey.get(key).events.push(e);
    }
    // a payment's place is its newest message
    return [...byKey.values()].sort((a, b) => a.events[a.events.length - 1].seq - b.events[b.events.length - 1].seq);
  }

  function label(g) {
    const first = g.events[0];
    const dfsps = [...new Set(g.events.map((e) => e.dfsp))];
    return `${shortTime(first.at)} ${dfsps.join(' · ')} — ${first.method} ${shortPath(first.path)}`;
  }

  function render() {
    const all = groups();
    const current = (pinned && all.find((g) => g.key === pinned)) || all[all.length - 1];
    follow.hidden = !pinned;
    historyBox.hidden = all.length < 2;
    clear(history, all.slice(-10).reverse().map((g) => h('li', {},
      h('button', { class: `link-button${g === current ? ' current' : ''}${g.events.some(isError) ? ' has-error' : ''}`,
        onclick: () => { pinned = g === all[all.length - 1] ? null : g.key; selected = null; render(); } },
        label(g), ` (${g.events.length})`))));
    if (!current) {
      clear(title, 'No payment yet');
      clear(grid, h('p', { class: 'muted seq-empty' }, 'Make a payment on a phone: every message between the DFSPs and the hub appears here.'));
      clear(body);
      return;
    }
    clear(title, pinned ? 'Earlier payment: ' : 'Latest: ', h('span', { class: 'muted' }, label(current)));
    draw(current);
  }

  function draw(g) {
    const dfsps = [...new Set(g.events.map((e) => e.dfsp))];
    const nLeft = Math.max(1, Math.floor(dfsps.length / 2));
    const lanes = [...dfsps.slice(0, nLeft), 'Hub', ...dfsps.slice(nLeft)];
    const cols = lanes.length * 2;
    grid.style.setProperty('--cols', cols);
    const laneOf = (name) => lanes.indexOf(name);
    const items = [];
    lanes.forEach((name, i) => {
      items.push(h('div', { class: `lane-head${name === 'Hub' ? ' hub-lane' : ''}`, style: `grid-column: ${2 * i + 1} / span 2; grid-row: 1` }, name));
      items.push(h('div', { class: 'lifeline', style: `left: calc(${(2 * i + 1) / cols} * 100%)` }));
    });
    g.events.forEach((e, row) => {
      const from = e.direction === 'out' ? e.dfsp : 'Hub';
      const to = e.direction === 'out' ? 'Hub' : e.dfsp;
      const a = laneOf(from), b = laneOf(to);
      const lo = Math.min(a, b), hi = Math.max(a, b);
      const err = isError(e);
      const text = `${e.method} ${shortPath(e.path)}`;
      const status = e.direction === 'out' && e.status ? String(e.status) : '';
      items.push(h('div', {
        class: `arrow ${a < b ? 'ltr' : 'rtl'}${err ? ' error' : ''}${selected === e.seq ? ' selected' : ''}`,
        testid: 'arrow', 'data-from': from, 'data-to': to, 'data-method': e.method, 'data-path': pathOnly(e.path),
        'data-seq': e.seq, 'data-error-code': e.errorCode || null,
        style: `grid-column: ${2 * lo + 2} / ${2 * hi + 2}; grid-row: ${row + 2}`,
        tabindex: '0', role: 'button', title: `${e.source || from} → ${e.destination || to}${status ? ' · ' + status : ''}`,
        onclick: () => { selected = selected === e.seq ? null : e.seq; draw(g); },
        onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); selected = selected === e.seq ? null : e.seq; draw(g); } },
      },
      h('span', { class: 'arrow-label' }, text, err && e.errorCode ? h('strong', { class: 'arrow-code' }, ` ${e.errorCode}`) : null,
        status ? h('span', { class: 'arrow-status' }, ` ${status}`) : null),
      h('span', { class: 'arrow-line' })));
    });
    clear(grid, items);
    const sel = selected !== null && events.get(selected);
    clear(body, sel ? h('div', { class: 'wire-detail' },
      h('div', {}, h('strong', {}, `${sel.method} ${pathOnly(sel.path)}`), ` ${sel.source || ''} → ${sel.destination || 'Hub'}`,
        sel.status ? ` · HTTP ${sel.status}` : '', sel.traceId ? ` · trace ${sel.traceId.slice(0, 8)}…` : ''),
      h('pre', {}, sel.body === null || sel.body === undefined ? '(no body)' : JSON.stringify(sel.body, null, 2))) : null);
    if (!pinned) diagram.scrollTop = diagram.scrollHeight;
  }

  function add(list, replace) {
    if (replace) events.clear();
    for (const e of list || []) if (e && e.seq !== undefined) events.set(e.seq, e);
    if (events.size > KEEP) {
      const seqs = [...events.keys()].sort((a, b) => a - b);
      for (const s of seqs.slice(0, events.size - KEEP)) events.delete(s);
    }
    render();
  }

  let frame = null;
  const pending = [];
  on('hello', (data) => {
    const wire = Array.isArray(data.wire) ? data.wire : [];
    const top = Math.max(0, ...events.keys());
    const newTop = wire.reduce((n, e) => Math.max(n, e.seq || 0), 0);
    add(wire, newTop < top); // the server restarted (its seq went back): start again
  });
  on('wire', (e) => {
    pending.push(e);
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = null; add(pending.splice(0)); });
  });
  render();
}
