// A customer's phone: the wallet app of a simulated DFSP. Balance live from the feed, and tabs to
// send money, pay a till's QR code, cash out at an agent, answer requests to pay, and read texts.
// Only the active tab's panel is in the page, so each test hook appears once per phone.
import { config, customers, get, post, simUrl } from './api.js';
import { on, debounce } from './events.js';
import { formatAmount, cleanAmount } from './money.js';
import { h, clear, field, shortTime } from './ui.js';
import { runConfirm } from './confirm.js';
import { explain } from './words.js';

const FINAL_REQUEST = ['COMPLETED', 'COMMITTED', 'REJECTED', 'FAILED', 'EXPIRED', 'DECLINED', 'CANCELLED', 'ABORTED'];
const ANSWERED_REQUEST = ['APPROVED', 'ACCEPTED', ...FINAL_REQUEST];

function parseTo(text) {
  const t = String(text || '').trim().replace(/\s+/g, '');
  if (t.includes('/')) {
    const [idType, ...rest] = t.split('/');
    return { idType: idType.toUpperCase(), id: rest.join('/') };
  }
  return { idType: 'MSISDN', id: t.replace(/^\+/, '') };
}

// mlqr:1?fsp=..&type=..&id=..&name=..&amount=..&currency=..&ref=.. -> object, or null
export function parseQr(payload) {
  const text = String(payload || '').trim();
  if (!text.startsWith('mlqr:1?')) return null;
  const out = {};
  for (const pair of text.slice(7).split('&')) {
    const i = pair.indexOf('=');
    if (i < 0) continue;
    try { out[pair.slice(0, i)] = decodeURIComponent(pair.slice(i + 1)); } catch { return null; }
  }
  return out;
}

function canScan() {
  return typeof window.BarcodeDetector === 'function' && navigator.mediaDevices &&
    typeof navigator.mediaDevices.getUserMedia === 'function' && window.isSecureContext;
}

export async function mountPhone(root, { dfsp, id }) {
  let cfg;
  try { cfg = await config(); } catch (e) { clear(root, h('p', { class: 'note bad' }, `Cannot load miniloop's configuration: ${e.message}`)); return; }
  const d = cfg.dfsps.find((x) => x.name === dfsp);
  if (!d) {
    clear(root, h('div', { class: 'device phone missing' }, h('p', { class: 'note' }, `There is no simulated DFSP called “${dfsp}”.`),
      h('a', { href: '/join', class: 'button primary' }, 'Join again')));
    return;
  }
  let me = (d.customers || []).find((c) => c.id === id);
  if (!me) {
    const list = await customers(dfsp);
    me = list && list.find((c) => c.id === id);
  }
  if (!me) {
    clear(root, h('div', { class: 'device phone missing', testid: 'phone', 'data-dfsp': dfsp, 'data-customer': id },
      h('p', { class: 'note' }, `${dfsp} has no customer ${id}. The hub may have restarted and forgotten this wallet.`),
      h('a', { href: '/join', class: 'button primary' }, 'Join again')));
    return;
  }
  const currency = d.currency;
  const state = { balance: me.balance, reserved: me.reserved, messages: [], requests: [], requestsError: null, answered: new Map(), liveOtp: null };

  // --- header and balance -------------------------------------------------------------------
  const balanceEl = h('div', { class: 'balance', testid: 'balance', 'data-amount': me.balance }, formatAmount(me.balance, currency));
  const reservedEl = h('div', { class: 'reserved muted' });
  const toast = h('div', { class: 'toast', hidden: true, role: 'status', 'aria-live': 'polite' });
  function showBalance(balance, reserved) {
    if (balance !== undefined && balance !== null) {
      const moved = balance !== state.balance;
      state.balance = balance;
      balanceEl.setAttribute('data-amount', balance);
      balanceEl.textContent = formatAmount(balance, currency);
      if (moved) { balanceEl.classList.remove('flash'); void balanceEl.offsetWidth; balanceEl.classList.add('flash'); }
    }
    state.reserved = reserved;
    reservedEl.textContent = reserved && /[1-9]/.test(reserved) ? `${formatAmount(reserved, currency)} on hold` : '';
  }
  showBalance(me.balance, me.reserved);
  async function refreshBalance() {
    const list = await customers(dfsp);
    const c = list && list.find((x) => x.id === id && (!me.idType || !x.idType || x.idType === me.idType));
    if (c && c.balance !== state.balance) showBalance(c.balance, c.reserved);
    else if (c) showBalance(undefined, c.reserved);
  }

  // --- tabs ---------------------------------------------------------------------------------
  const panels = {
    send: { label: 'Send', make: sendPanel },
    pay: { label: 'Pay', make: payPanel },
    cashout: { label: 'Cash out', make: cashoutPanel },
    requests: { label: 'Requests', make: requestsPanel },
    history: { label: 'History', make: historyPanel },
  };
  const panelHost = h('div', { class: 'panel-host' });
  const tabs = h('nav', { class: 'tabs', role: 'tablist' });
  let active = null;
  const badge = h('span', { class: 'badge', hidden: true });
  for (const [key, p] of Object.entries(panels)) {
    p.tab = h('button', { role: 'tab', testid: `tab-${key}`, class: 'tab', onclick: () => show(key) }, p.label, key === 'requests' ? badge : null);
    tabs.appendChild(p.tab);
  }
  function show(key) {
    if (active && panels[active].onHide) panels[active].onHide();
    active = key;
    for (const [k, p] of Object.entries(panels)) {
      p.tab.setAttribute('aria-selected', String(k === key));
      p.tab.classList.toggle('active', k === key);
    }
    const p = panels[key];
    if (!p.el) Object.assign(p, p.make());
    clear(panelHost, p.el);
    if (p.onShow) p.onShow();
  }

  const phoneEl = h('section', { class: `device phone dfsp-${dfsp}`, testid: 'phone', 'data-dfsp': dfsp, 'data-customer': id },
    h('header', { class: 'phone-head' },
      h('div', { class: 'dfsp-name' }, dfsp),
      h('div', { class: 'who' }, h('strong', {}, me.name), h('span', { class: 'number' }, `${me.idType === 'MSISDN' ? '' : me.idType + ' '}${id}`))),
    h('div', { class: 'balance-box' }, h('div', { class: 'muted small' }, 'Balance'), balanceEl, reservedEl),
    toast, tabs, panelHost);
  clear(root, phoneEl);

  // --- Send ---------------------------------------------------------------------------------
  function flowPanel({ form, ctxOf, startOf }) {
    const el = h('div', { class: 'panel' });
    const steps = h('div', { class: 'steps' });
    const formError = h('p', { class: 'form-error', role: 'alert' });
    function reset() { clear(el, form, formError); formError.textContent = ''; }
    function go() {
      const ctx = ctxOf();
      if (ctx.problem) { formError.textContent = ctx.problem; return; }
      clear(el, steps);
      runConfirm(steps, { dfsp, ctx: { currency, ...ctx }, start: () => startOf(ctx), onEnd: () => { refreshBalance(); }, onReset: reset });
    }
    reset();
    return { el, go };
  }

  function sendPanel() {
    const to = field('To (phone number)', { testid: 'send-to', type: 'tel', inputmode: 'tel', placeholder: 'e.g. 27720000001' });
    const amount = field(`Amount (${currency})`, { testid: 'send-amount', inputmode: 'decimal', placeholder: 'e.g. 25' });
    const form = h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); panel.go(); } },
      to.row, amount.row, h('button', { class: 'primary', type: 'submit', testid: 'send-next' }, 'Next'));
    const panel = flowPanel({
      form,
      ctxOf: () => {
        const party = parseTo(to.input.value);
        const amt = cleanAmount(amount.input.value);
        if (!party.id) return { problem: 'Type the number to pay.' };
        if (!amt) return { problem: 'Type an amount, such as 25 or 12.50.' };
        return { kind: 'send', to: party.id, party, amount: amt };
      },
      startOf: (ctx) => post(simUrl(dfsp, 'send'), { from: id, fromIdType: me.idType, to: ctx.party, amount: ctx.amount, confirm: true, timeoutSeconds: 120 }),
    });
    return { el: panel.el };
  }

  // --- Pay (QR) -----------------------------------------------------------------------------
  function payPanel() {
    const pick = h('div', { class: 'qr-pick', testid: 'qr-pick' });
    const payload = h('textarea', { testid: 'qr-payload', rows: 3, placeholder: 'mlqr:1?fsp=…', spellcheck: 'false' });
    const amount = field(`Amount (${currency}) — this code has none`, { testid: 'qr-amount', inputmode: 'decimal' });
    const summary = h('p', { class: 'qr-summary muted' });
    const scanHost = h('div', { class: 'scan' });
    let chosen = null;
    function parse() {
      const qr = parseQr(payload.value);
      amount.row.hidden = !(qr && !qr.amount);
      summary.textContent = qr ? `${qr.name} at ${qr.fsp}${qr.amount ? ' · ' + formatAmount(qr.amount, qr.currency || currency) : ''}${qr.ref ? ' · ' + qr.ref : ''}`
        : payload.value.trim() ? 'This is not a miniloop QR code.' : '';
      for (const b of pick.querySelectorAll('[data-testid=qr-option]')) b.classList.toggle('chosen', b.getAttribute('data-payload') === payload.value.trim());
    }
    payload.addEventListener('input', parse);
    amount.row.hidden = true;
    async function loadQrs() {
      const r = await get('/api/qrs');
      // newest first; the same code shown twice is listed once
      const seen = new Set();
      const qrs = ((r.ok && r.body && r.body.qrs) || []).filter((q) => q && q.payload && !seen.has(q.payload) && seen.add(q.payload));
      const current = payload.value.trim();
      clear(pick, qrs.length ? null : h('p', { class: 'muted' }, 'No QR codes on show. Ask the shop to show one, or paste the code’s text below.'),
        qrs.slice(0, 8).map((q) => h('button', { type: 'button', class: `qr-option${q.payload === current ? ' chosen' : ''}`, testid: 'qr-option', 'data-payload': q.payload,
          onclick: () => { payload.value = q.payload; chosen = q; parse(); } },
          h('strong', {}, q.qr && q.qr.name || q.customer || '?'),
          h('span', {}, q.qr && q.qr.amount ? formatAmount(q.qr.amount, q.qr.currency || currency) : 'any amount'),
          q.qr && q.qr.reference ? h('span', { class: 'muted' }, q.qr.reference) : null,
          q.created ? h('span', { class: 'muted small' }, shortTime(q.created)) : null)));
    }
    function scanButton() {
      if (!canScan()) return null;
      return h('button', { type: 'button', class: 'secondary', onclick: scan }, '📷 Scan a code');
    }
    async function scan() {
      let stream;
      try {
        const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
        const video = h('video', { playsinline: true, muted: true, class: 'scan-video' });
        video.srcObject = stream;
        const stop = () => { stream.getTracks().forEach((t) => t.stop()); clear(scanHost); };
        clear(scanHost, video, h('button', { type: 'button', class: 'secondary', onclick: stop }, 'Stop'));
        await video.play();
        const tick = async () => {
          if (!video.isConnected || !stream.active) return;
          try {
            const codes = await detector.detect(video);
            const hit = codes.find((c) => String(c.rawValue).startsWith('mlqr:'));
            if (hit) { payload.value = hit.rawValue; parse(); stop(); return; }
          } catch { /* frame not ready */ }
          setTimeout(tick, 250);
        };
        tick();
      } catch (e) {
        if (stream) stream.getTracks().forEach((t) => t.stop());
        clear(scanHost, h('p', { class: 'form-error' }, `The camera is not available: ${e.message}`));
      }
    }
    const form = h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); panel.go(); } },
      h('p', { class: 'step-label' }, 'Pick a code on show'), pick, scanButton(), scanHost,
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'or paste the code’s text'), payload),
      summary, amount.row,
      h('button', { class: 'primary', type: 'submit', testid: 'qr-next' }, 'Next'));
    const panel = flowPanel({
      form,
      ctxOf: () => {
        const text = payload.value.trim();
        if (!text) return { problem: 'Pick a code or paste its text.' };
        const qr = parseQr(text);
        let amt = null;
        if (qr && !qr.amount) {
          amt = cleanAmount(amount.input.value);
          if (!amt) return { problem: 'This code has no amount: type what to pay.' };
        }
        return { kind: 'pay', payload: text, amount: amt, to: qr ? qr.id : '', name: qr && qr.name };
      },
      startOf: (ctx) => post(simUrl(dfsp, 'payQr'), { from: id, fromIdType: me.idType, payload: ctx.payload, ...(ctx.amount ? { amount: ctx.amount } : {}), confirm: true, timeoutSeconds: 120 }),
    });
    let timer = null;
    return {
      el: panel.el,
      onShow: () => { loadQrs(); clearInterval(timer); timer = setInterval(() => { if (pick.isConnected) loadQrs(); }, 4000); },
      onHide: () => { clearInterval(timer); timer = null; },
    };
  }

  // --- Cash out -----------------------------------------------------------------------------
  function agentsOf(c) {
    const out = [];
    for (const x of c.dfsps) for (const cu of x.customers || []) {
      if (cu.idType === 'BUSINESS' && /agent/i.test(cu.name || '')) out.push({ dfsp: x.name, ...cu });
    }
    // agents at another provider first: a cash-out at one's own provider does not cross the hub
    return out.sort((a, b) => (a.dfsp === dfsp) - (b.dfsp === dfsp));
  }
  function cashoutPanel() {
    const agents = agentsOf(cfg);
    const select = h('select', { testid: 'cashout-agent' },
      agents.map((a) => h('option', { value: `${a.idType}/${a.id}`, 'data-dfsp': a.dfsp }, `${a.name} (${a.dfsp})`)));
    const amount = field(`Amount (${currency})`, { testid: 'cashout-amount', inputmode: 'decimal', placeholder: 'e.g. 20' });
    const form = h('form', { class: 'form', onsubmit: (e) => { e.preventDefault(); panel.go(); } },
      agents.length ? null : h('p', { class: 'note' }, 'There are no cash agents on this hub.'),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Agent'), select),
      amount.row,
      h('button', { class: 'primary', type: 'submit', testid: 'cashout-next' }, 'Next'));
    const panel = flowPanel({
      form,
      ctxOf: () => {
        const a = agents.find((x) => `${x.idType}/${x.id}` === select.value);
        const amt = cleanAmount(amount.input.value);
        if (!a) return { problem: 'Pick an agent.' };
        if (!amt) return { problem: 'Type an amount, such as 20.' };
        return { kind: 'cashout', to: a.id, party: { idType: a.idType, id: a.id }, agentName: a.name, amount: amt };
      },
      startOf: (ctx) => post(simUrl(dfsp, 'send'), { from: id, fromIdType: me.idType, to: ctx.party, amount: ctx.amount, useCase: 'cash-out', confirm: true, timeoutSeconds: 120 }),
    });
    return { el: panel.el };
  }

  // --- Requests to pay ----------------------------------------------------------------------
  function requestsPanel() {
    const el = h('div', { class: 'panel' });
    const render = () => {
      const reqs = state.requests;
      const waiting = reqs.filter((r) => !ANSWERED_REQUEST.includes(String(r.state || '').toUpperCase()) && !state.answered.has(r.transactionRequestId));
      const otp = currentOtp();
      clear(el,
        otp ? h('div', { class: 'otp-box' },
          h('p', {}, 'Your one-time password', otp.payee ? ` for ${otp.payee}` : ''),
          h('div', { class: 'otp', testid: 'otp-shown', 'data-otp': otp.otp }, otp.otp),
          h('p', { class: 'strong' }, 'Read it to the merchant.')) : null,
        state.requestsError ? h('p', { class: 'note' }, state.requestsError) : null,
        reqs.length === 0 && !state.requestsError ? h('p', { class: 'muted' }, 'No requests to pay.') : null,
        reqs.map((r) => {
          const st = String(r.state || '').toUpperCase();
          const answered = state.answered.get(r.transactionRequestId);
          const open = waiting.includes(r);
          return h('div', { class: `request${open ? ' open' : ''}`, testid: 'request', 'data-request-id': r.transactionRequestId, 'data-state': st },
            h('div', { class: 'request-head' }, h('strong', {}, (r.payee && r.payee.name) || 'A merchant'), ' asks you to pay'),
            h('div', { class: 'request-amount' }, formatAmount(r.amount, r.currency || currency)),
            r.note ? h('p', { class: 'muted' }, r.note) : null,
            h('p', { class: 'muted small' }, `${r.payee && r.payee.fspId ? r.payee.fspId + ' · ' : ''}${answered ? (answered === 'approve' ? 'you approved' : 'you declined') : st.toLowerCase()}${r.receivedAt ? ' · ' + shortTime(r.receivedAt) : ''}`),
            open ? h('div', { class: 'buttons' },
              h('button', { class: 'primary', testid: 'approve', onclick: (e) => answerRequest(r, 'approve', e.target) }, 'Approve'),
              h('button', { class: 'secondary danger', testid: 'decline', onclick: (e) => answerRequest(r, 'decline', e.target) }, 'Decline')) : null,
            answered === 'approve' && !otpFor(r.transactionRequestId) && !FINAL_REQUEST.includes(st)
              ? h('p', { class: 'muted' }, 'Approved. Your one-time password is on its way…') : null,
            r.error ? h('p', { class: 'form-error' }, r.error) : null);
        }));
      updateBadge();
    };
    async function answerRequest(r, answer, button) {
      button.disabled = true;
      const res = await post(simUrl(dfsp, 'customers', id, 'requests', r.transactionRequestId), { answer });
      if (res.ok) {
        state.answered.set(r.transactionRequestId, answer);
        if (res.body && res.body.otp) state.liveOtp = { otp: res.body.otp, transactionRequestId: r.transactionRequestId, fresh: true };
      } else {
        r.error = explain(res.error, null, {});
      }
      render();
      refreshRequests();
    }
    panels.requests.render = render;
    return { el, onShow: () => { render(); refreshRequests(); } };
  }
  function otpFor(trid) {
    if (state.liveOtp && state.liveOtp.transactionRequestId === trid) return state.liveOtp;
    const m = state.messages.find((x) => x.kind === 'otp' && x.transactionRequestId === trid);
    return m ? { otp: m.otp, transactionRequestId: trid } : null;
  }
  function currentOtp() {
    // the newest OTP for a request to pay that is not over yet (messages are newest first)
    const newest = state.messages.find((x) => x.kind === 'otp' && x.transactionRequestId && x.otp);
    const cand = newest ? { otp: newest.otp, transactionRequestId: newest.transactionRequestId, at: newest.at, fresh: !!newest._live }
      : state.liveOtp;
    if (!cand || !cand.otp) return null;
    // a text after the OTP that ends a payment (paid, failed, declined): the OTP is used up
    const ending = state.messages.find((x) => ['otp', 'paid', 'failed', 'declined'].includes(x.kind));
    if (newest && ending && ending !== newest) return null;
    const req = state.requests.find((r) => r.transactionRequestId === cand.transactionRequestId);
    if (req) {
      if (FINAL_REQUEST.includes(String(req.state || '').toUpperCase())) return null;
      return { ...cand, payee: req.payee && req.payee.name };
    }
    // not in the list: show it while it is recent, unless the request ended
    const done = state.messages.some((x) => x.transactionRequestId === cand.transactionRequestId && ['declined', 'failed'].includes(x.kind));
    if (done) return null;
    if (cand.fresh) return cand;
    const age = cand.at ? Date.now() - Date.parse(cand.at) : Infinity;
    return age < 5 * 60 * 1000 ? cand : null;
  }
  function updateBadge() {
    const n = state.requests.filter((r) => !ANSWERED_REQUEST.includes(String(r.state || '').toUpperCase()) && !state.answered.has(r.transactionRequestId)).length;
    badge.hidden = n === 0;
    badge.textContent = String(n);
  }
  async function refreshRequests() {
    const r = await get(simUrl(dfsp, 'customers', id, 'requests'));
    if (r.ok && r.body) {
      state.requests = r.body.requests || [];
      state.requestsError = null;
    } else if (r.status === 404 && !r.error) {
      state.requestsError = 'This wallet cannot show requests to pay.';
    }
    updateBadge();
    if (panels.requests.render) panels.requests.render();
  }
  const refreshRequestsSoon = debounce(refreshRequests, 200);

  // --- History ------------------------------------------------------------------------------
  function historyPanel() {
    const list = h('ol', { class: 'messages', testid: 'messages' });
    const render = () => clear(list,
      state.messages.length ? null : h('li', { class: 'muted' }, 'No texts yet.'),
      state.messages.map((m) => h('li', { class: `message kind-${m.kind}`, testid: 'message', 'data-kind': m.kind, 'data-otp': m.kind === 'otp' ? m.otp : null },
        h('span', { class: 'message-time' }, shortTime(m.at)), h('span', { class: 'message-text' }, m.text))));
    panels.history.render = render;
    render();
    return { el: h('div', { class: 'panel' }, list), onShow: render };
  }
  async function refreshMessages() {
    const r = await get(simUrl(dfsp, 'customers', id, 'messages') + (me.idType ? `?idType=${encodeURIComponent(me.idType)}` : ''));
    if (r.ok && r.body && Array.isArray(r.body.messages)) {
      const server = r.body.messages;
      const top = server.reduce((n, m) => Math.max(n, m.id ?? 0), 0);
      const liveKeys = new Set(state.messages.filter((m) => m._live).map((m) => `${m.id}|${m.text}`));
      const newer = state.messages.filter((m) => m._live && (m.id ?? 0) > top);
      state.messages = mergeMessages(server.map((m) => (liveKeys.has(`${m.id}|${m.text}`) ? { ...m, _live: true } : m)), newer);
      if (panels.history.render) panels.history.render();
      if (panels.requests.render) panels.requests.render();
    }
  }
  function mergeMessages(a, b) {
    const byId = new Map();
    for (const m of [...a, ...b]) byId.set(m.id, m);
    return [...byId.values()].sort((x, y) => (y.id ?? 0) - (x.id ?? 0));
  }

  function notify(m) {
    clear(toast, h('strong', {}, 'New text'), h('span', {}, m.text),
      m.kind === 'otp' && m.otp ? h('span', { class: 'toast-otp' }, m.otp) : null);
    toast.hidden = false;
    clearTimeout(notify.timer);
    notify.timer = setTimeout(() => { toast.hidden = true; }, m.kind === 'otp' ? 15000 : 6000);
  }

  // --- live -----------------------------------------------------------------------------------
  const mine = (e) => e && e.dfsp === dfsp && e.customer === id && (!e.idType || !me.idType || e.idType === me.idType);
  const offs = [
    on('balance', (e) => { if (mine(e)) showBalance(e.balance, e.reserved); }),
    on('text', (e) => {
      if (!mine(e) || !e.message) return;
      const m = { ...e.message, _live: true };
      state.messages = mergeMessages(state.messages, [m]);
      notify(m);
      if (panels.history.render && active === 'history') panels.history.render();
      if (['request', 'otp', 'declined', 'paid', 'failed'].includes(m.kind)) refreshRequestsSoon();
      if (panels.requests.render) panels.requests.render();
    }),
    on('flow', (e) => { if (mine(e) && e.flow === 'requestToPay') refreshRequestsSoon(); }),
    on('reconnect', () => { refreshBalance(); refreshMessages(); refreshRequests(); }),
  ];
  phoneEl.addEventListener('miniloop:unmount', () => offs.forEach((off) => off()));

  show('send');
  refreshMessages();
  refreshRequests();
  refreshBalance();
}
