// The page's entry point: reads location.pathname (and the query) to decide which view to show,
// lays out the room for the projector, draws the small header with links between views, and
// starts the live feed once the views are listening.
import { config } from './api.js';
import { start, on } from './events.js';
import { h, clear } from './ui.js';
import { mountPhone } from './phone.js';
import { mountTill } from './till.js';
import { mountHub } from './hub.js';
import { mountPisp } from './pisp.js';
import { mountJoin, storedPhone } from './join.js';

const ROOM_PHONES = ['greenwallet/27710000001', 'bluewallet/27720000001'];
const ROOM_TILL = 'merchantbank/27730000001';

function header(cfg, current) {
  const live = h('span', { class: 'live-dot', title: 'Connecting…' });
  on('status', (s) => { live.className = `live-dot ${s}`; live.title = s === 'live' ? 'Live' : 'Reconnecting…'; });
  const link = (href, text, key) => h('a', { href, class: current === key ? 'current' : '' }, text);
  const pick = h('select', { class: 'open-view', 'aria-label': 'Open a phone or a till',
    onchange: (e) => { if (e.target.value) location.href = e.target.value; } },
    h('option', { value: '' }, 'Open a phone or till…'),
    (cfg ? cfg.dfsps : []).map((d) => h('optgroup', { label: d.name },
      (d.customers || []).flatMap((c) => [
        c.idType === 'MSISDN' ? h('option', { value: `/phone/${d.name}/${encodeURIComponent(c.id)}` }, `📱 ${c.name}`) : null,
        d.name === 'merchantbank' || c.idType !== 'MSISDN' || /grocery|pharmacy|shop|store|agent/i.test(c.name)
          ? h('option', { value: `/till/${d.name}/${encodeURIComponent(c.id)}` }, `🧾 ${c.name} till`) : null]))));
  const mine = storedPhone();
  return h('header', { class: 'topbar' },
    h('a', { href: '/', class: 'brand' }, 'miniloop'), live,
    h('nav', {}, link('/', 'Room', 'room'), link('/hub', 'Hub', 'hub'), link('/pisp', 'PISP app', 'pisp'), link('/join', 'Join', 'join'),
      mine && current !== 'phone' ? h('a', { href: `/phone/${encodeURIComponent(mine.dfsp)}/${encodeURIComponent(mine.id)}` }, 'My phone') : null),
    pick);
}

function splitRef(ref) {
  const i = String(ref).indexOf('/');
  return i < 0 ? null : { dfsp: ref.slice(0, i), id: ref.slice(i + 1) };
}

function exists(cfg, ref) {
  const d = ref && cfg.dfsps.find((x) => x.name === ref.dfsp);
  return !!(d && (d.customers || []).some((c) => c.id === ref.id));
}

async function room(main, cfg) {
  const q = new URLSearchParams(location.search);
  const notes = [];
  const wantPhones = q.has('phones') ? q.get('phones').split(',').map((s) => s.trim()).filter(Boolean) : ROOM_PHONES;
  const wantTill = q.has('till') ? q.get('till').trim() : ROOM_TILL;
  let phones = [];
  for (const ref of wantPhones) {
    const r = splitRef(ref);
    if (exists(cfg, r)) phones.push(r);
    else if (q.has('phones')) notes.push(`No phone ${ref}: there is no such customer.`);
  }
  if (!phones.length && !q.has('phones')) {
    phones = cfg.dfsps.slice(0, 2).map((d) => (d.customers || []).find((c) => c.idType === 'MSISDN'))
      .map((c, i) => c && { dfsp: cfg.dfsps[i].name, id: c.id }).filter(Boolean);
  }
  let till = splitRef(wantTill);
  if (!exists(cfg, till)) {
    if (q.has('till')) notes.push(`No till ${wantTill}: there is no such customer.`);
    till = null;
  }
  const devices = h('div', { class: 'room-devices' });
  const hubHost = h('div', { class: 'room-hub' });
  clear(main, notes.length ? h('div', { class: 'note room-note' }, notes.map((n) => h('p', {}, n))) : null,
    cfg.dfsps.length ? null : h('div', { class: 'note room-note' },
      h('p', {}, h('strong', {}, 'This hub has no simulated DFSPs.'), ' It was started with --empty (or a hub file without simulated DFSPs), so there are no phones or tills to show. The hub pane still shows what the switch sees.')),
    h('div', { class: `room${phones.length || till || cfg.pisps.length ? '' : ' no-devices'}` }, devices, hubHost));
  const side = h('div', { class: 'room-col room-side' });
  const mounting = [];
  for (const p of phones) {
    const host = h('div', { class: 'room-col' });
    devices.appendChild(host);
    mounting.push(mountPhone(host, p));
  }
  devices.appendChild(side);
  if (till) { const t = h('div'); side.appendChild(t); mounting.push(mountTill(t, till)); }
  if (cfg.pisps.length) { const p = h('div'); side.appendChild(p); mounting.push(mountPisp(p)); }
  mountHub(hubHost);
  await Promise.all(mounting);
}

async function main() {
  const app = document.getElementById('app');
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const parts = path.split('/').filter(Boolean).map((s) => { try { return decodeURIComponent(s); } catch { return s; } });
  const view = parts[0] || 'room';
  let cfg = null;
  let cfgError = null;
  try { cfg = await config(); } catch (e) { cfgError = e; }
  const main = h('main', { class: `view view-${view}` });
  clear(app, header(cfg, view), main);
  document.body.className = `on-${view}`;
  if (!cfg) {
    clear(main, h('div', { class: 'note bad' }, h('p', {}, `Cannot reach miniloop: ${cfgError.message}`), h('button', { class: 'primary', onclick: () => location.reload() }, 'Try again')));
    return;
  }
  on('customer', () => { config(true).catch(() => {}); });
  if (view === 'room') await room(main, cfg);
  else if (view === 'phone' && parts.length >= 3) { document.title = `${parts[2]} · ${parts[1]} — miniloop`; await mountPhone(main, { dfsp: parts[1], id: parts.slice(2).join('/') }); }
  else if (view === 'till' && parts.length >= 3) { document.title = `Till · ${parts[1]} — miniloop`; await mountTill(main, { dfsp: parts[1], id: parts.slice(2).join('/') }); }
  else if (view === 'hub') { document.title = 'Hub — miniloop'; mountHub(main); }
  else if (view === 'pisp') { document.title = 'PISP app — miniloop'; await mountPisp(main); }
  else if (view === 'join') { document.title = 'Join — miniloop'; await mountJoin(main); }
  else clear(main, h('div', { class: 'note' }, h('p', {}, `Nothing here (${location.pathname}).`), h('a', { href: '/', class: 'button primary' }, 'Go to the room')));
  start();
}

main();
