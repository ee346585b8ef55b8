// The live feed: one EventSource on /api/events for the whole page, fanned out to the views.
// EventSource reconnects by itself; every "hello" after the first means we were away, so views
// listening to "reconnect" fetch their state again.

const KINDS = ['hello', 'wire', 'text', 'balance', 'flow', 'customer', 'hub'];
const handlers = new Map();
let source = null;
let hellos = 0;

export function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type).delete(fn);
}

function emit(type, data) {
  for (const fn of handlers.get(type) || []) {
    try { fn(data); } catch (e) { console.error(`events: a ${type} handler failed`, e); }
  }
}

export function start() {
  if (source || typeof EventSource === 'undefined') return;
  source = new EventSource('/api/events');
  for (const kind of KINDS) {
    source.addEventListener(kind, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      if (kind === 'hello') {
        hellos += 1;
        emit('hello', data || {});
        if (hellos > 1) emit('reconnect', data || {});
        emit('status', 'live');
      } else {
        emit(kind, data);
      }
    });
  }
  source.onopen = () => emit('status', 'live');
  source.onerror = () => {
    emit('status', 'reconnecting');
    if (source.readyState === EventSource.CLOSED) {
      // the server refused the stream (busy, restarting): EventSource gives up, so we try again
      source.close();
      source = null;
      setTimeout(start, 3000);
    }
  };
}

// A function that runs `fn` once, `ms` after the last call.
export function debounce(fn, ms = 300) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
