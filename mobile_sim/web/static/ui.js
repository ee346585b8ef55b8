// Small DOM helpers shared by every view: build elements without a framework, and the one way a
// result (success or failure, with the FSPIOP code tucked in <details>) is shown everywhere.
import { explain } from './words.js';

// h('div', {class: 'x', testid: 'y', onclick: fn, 'data-a': 1}, child, [children], 'text')
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.setAttribute('data-testid', value);
    else if (key === 'text') el.textContent = value;
    else if (key === 'html') el.innerHTML = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value') el.value = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A labelled form field: returns {row, input}.
export function field(label, inputAttrs) {
  const input = h('input', { autocomplete: 'off', ...inputAttrs });
  const row = h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input);
  return { row, input };
}

// The FSPIOP code behind a failure, for the curious, out of the customer's way.
export function errorDetails(error) {
  if (!error || (!error.errorCode && !error.errorDescription)) return null;
  return h('details', { class: 'error-details' },
    h('summary', {}, 'Details'),
    h('p', {}, 'FSPIOP error ', h('code', { testid: 'error-code' }, error.errorCode || ''),
      error.errorDescription ? [': ', h('span', { class: 'error-description' }, error.errorDescription)] : null));
}

// The end of a flow: data-state, a title, the words, and for failures the code in <details>.
export function resultBox({ testid = 'result', state, title, words, error, ok, extra }) {
  const good = ok ?? state === 'COMMITTED';
  return h('div', { testid, class: `result ${good ? 'good' : state === 'CANCELLED' ? 'neutral' : 'bad'}`,
    'data-state': state, role: 'status' },
    h('div', { class: 'result-title' }, title),
    words ? h('p', { class: 'result-words' }, words) : null,
    extra || null,
    good ? null : errorDetails(error));
}

// Words for an error answer, given what the customer typed (ctx: {to, name, ...}).
export function failureWords(error, state, ctx) {
  return explain(error, state, ctx);
}

export function busy(text) {
  return h('div', { class: 'busy', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

export function shortTime(at) {
  const d = at ? new Date(at) : null;
  if (!d || isNaN(d)) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
