// The web chat: talks to POST /api/v1/messages. Every fact the page shows (hotlines, the
// emergency steps, error texts, the message for friends) comes from the knowledge base through
// the JSON block #page-data that the server fills in; this file holds only UI labels.
// Text is only ever added as text nodes (never innerHTML), and there are no inline handlers,
// so a strict Content-Security-Policy (script-src 'self') works.
'use strict';

const DATA = (() => {
  try { return JSON.parse(document.getElementById('page-data').textContent); } catch (e) { return {}; }
})();
const TEXTS = DATA.texts || {};
const NOTICES = DATA.notices || {};
const PHONES = (DATA.phones || []).slice().sort((a, b) => b.length - a.length);
const SITES = (DATA.sites || []).slice().sort((a, b) => b.text.length - a.text.length);
const OPTION_STATES = ['menu', 'clarify'];  // dialog states whose numbered lines are choices
const say = (key, fallback) => TEXTS[key] || fallback;

const log = document.getElementById('log');
const input = document.getElementById('t');

// crypto.randomUUID exists only on https/localhost; fall back to getRandomValues elsewhere.
const uuid = () => (crypto.randomUUID ? crypto.randomUUID() :
  Array.from(crypto.getRandomValues(new Uint8Array(16)), b => b.toString(16).padStart(2, '0')).join(''));
const uid = localStorage.getItem('fanzha_uid') || ('web-' + uuid());
localStorage.setItem('fanzha_uid', uid);
// A deployment with FANZHA_API_TOKEN hands out links like /?token=…; remember it, then drop it from the address bar.
const given = new URLSearchParams(location.search).get('token');
if (given) { localStorage.setItem('fanzha_token', given); history.replaceState(null, '', location.pathname); }

// -- text → nodes: channels named with their address and web addresses become links,
// hotline numbers (outside addresses) become tel: links ---------
const URL_RE = /(?:https?:\/\/)?(?:[a-z0-9-]+\.)+(?:cn|com|net|org)(?:\/[\w\-./?%&=#~+]*)?/gi;
const escapeRe = s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// a number counts only on its own: not inside a longer number, a word or an address
const PHONE_RE = PHONES.length ? new RegExp('(?<![\\w.\\-])(' + PHONES.map(escapeRe).join('|') + ')(?![\\w\\-])', 'g') : null;

function link(href, text, external) {
  const a = document.createElement('a');
  a.href = href; a.textContent = text;
  if (external) { a.target = '_blank'; a.rel = 'noopener noreferrer'; }
  return a;
}
function phones(d, text) {
  if (!PHONE_RE) { d.append(text); return; }
  let last = 0;
  for (const m of text.matchAll(PHONE_RE)) {
    d.append(text.slice(last, m.index), link('tel:' + m[0].replace(/-/g, ''), m[0], false));
    last = m.index + m[0].length;
  }
  d.append(text.slice(last));
}
function sites(d, text) {  // "腾讯110 110.qq.com": the whole name links to the address
  for (const site of SITES) {
    const i = text.indexOf(site.text);
    if (i >= 0) {
      sites(d, text.slice(0, i));
      d.append(link(site.url, site.text, true));
      sites(d, text.slice(i + site.text.length));
      return;
    }
  }
  urls(d, text);
}
function fill(d, text) { sites(d, text); }
function urls(d, text) {
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    phones(d, text.slice(last, m.index));
    const href = /^https?:\/\//i.test(m[0]) ? m[0] : 'https://' + m[0];
    d.append(link(href, m[0], true));
    last = m.index + m[0].length;
  }
  phones(d, text.slice(last));
}

// -- messages -------------------------------------------------------------------------------
function bubble(who) {
  const row = document.createElement('div'); row.className = 'row';
  const d = document.createElement('div'); d.className = 'msg ' + who;
  row.appendChild(d); log.appendChild(row);
  return [row, d];
}
function collapseIfLong(row, d, text) {
  if (text.length <= 300) return;
  d.classList.add('long'); row.classList.add('column');
  const more = document.createElement('button'); more.type = 'button'; more.className = 'more'; more.textContent = '展开全文 ▼';
  more.addEventListener('click', () => { d.classList.remove('long'); more.remove(); });
  d.after(more);
}
function add(text, who) {
  const [row, d] = bubble(who); fill(d, text);
  if (who === 'bot') collapseIfLong(row, d, text);
  return row;
}
// A menu or clarifying question: each numbered line becomes a button that sends its number.
const OPTION_RE = /^\s*(\d{1,2})[.、．]\s*(.+)$/;
function addWithOptions(text) {
  const [row, d] = bubble('bot');
  const lines = text.split('\n');
  let plain = [];
  const flush = () => { if (plain.length) { fill(d, plain.join('\n') + '\n'); plain = []; } };
  for (const line of lines) {
    const m = line.match(OPTION_RE);
    if (!m) { plain.push(line); continue; }
    flush();
    const b = document.createElement('button'); b.type = 'button'; b.className = 'opt';
    b.dataset.send = m[1]; b.textContent = m[1] + '. ' + m[2];
    d.appendChild(b);
  }
  if (plain.length) fill(d, plain.join('\n'));
  return row;
}
// For a scenario with a ready-made message (e.g. a stolen account: tell your friends), a card
// with the text and a copy button, shown once per scenario.
const shown = new Set();
function addNotice(scenario) {
  const text = NOTICES[scenario];
  if (!text || shown.has(scenario)) return;
  shown.add(scenario);
  const [, d] = bubble('bot'); d.classList.add('notice');
  d.append(say('web_notice_title', ''));
  const p = document.createElement('div'); p.className = 'notice-text'; p.textContent = text;
  const b = document.createElement('button'); b.type = 'button'; b.className = 'copy'; b.textContent = '复制';
  b.addEventListener('click', async () => { b.textContent = (await copy(text, p)) ? '已复制 ✓' : '请长按上面的文字复制'; });
  d.append(p, b);
}
async function copy(text, node) {
  try {
    if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
  } catch (e) { /* fall through to the selection copy */ }
  const range = document.createRange(); range.selectNodeContents(node);
  const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
  try { return document.execCommand('copy'); } catch (e) { return false; }
}

// -- scrolling ------------------------------------------------------------------------------
const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
const toBottom = () => { log.scrollTop = log.scrollHeight; };
// keep the newest message in view when the keyboard opens or the phone rotates
let wasBottom = true; log.addEventListener('scroll', () => { wasBottom = atBottom(); });
(window.visualViewport || window).addEventListener('resize', () => { if (wasBottom) toBottom(); });
// after a long answer, show its beginning (the user's own question at the top), not its end
function reveal(anchor) {
  if (log.scrollHeight - anchor.offsetTop > log.clientHeight) log.scrollTop = anchor.offsetTop - 8; else toBottom();
  wasBottom = atBottom();
}

// -- sending --------------------------------------------------------------------------------
let busy = false;
function setBusy(on) {
  busy = on;
  for (const b of document.querySelectorAll('#f button, #quick button, .opt:not(.stale)')) b.disabled = on;
}
function retireOptions() {
  for (const b of document.querySelectorAll('.opt')) { b.classList.add('stale'); b.disabled = true; }
}
async function send(text, silent, label) {  // label: what the user's bubble shows, if not text
  if (busy) return;
  const mine = silent ? null : add(label || text, 'me');
  if (mine) toBottom();
  setBusy(true);
  const wait = add('正在回复…', 'bot'); wait.querySelector('.msg').classList.add('typing'); toBottom();
  const anchor = mine || wait;
  const headers = {'Content-Type': 'application/json'};
  const token = localStorage.getItem('fanzha_token');
  if (token) headers['Authorization'] = 'Bearer ' + token;
  try {
    const r = await fetch('/api/v1/messages', {method: 'POST', headers,
      body: JSON.stringify({user_id: uid, text, room_id: null, mentioned: false, msg_id: uuid()})});
    wait.remove();
    if (r.status === 401) { add(token ? say('web_token_wrong', '（访问口令不对）') : say('web_token_missing', '（缺少访问口令）'), 'bot'); return; }
    if (!r.ok) { add(say('web_error', '（系统出了点问题，请稍后再试）'), 'bot'); return; }
    const data = await r.json();
    retireOptions();
    if (!data.replies.length) add(say('rate_limited', '（消息发得有点快，请等一分钟再发）'), 'bot');
    const choices = OPTION_STATES.includes(data.state);
    for (const rep of data.replies) (choices ? addWithOptions(rep.text) : add(rep.text, 'bot'));
    if (data.scenario) addNotice(data.scenario);
  } catch (e) {
    wait.remove();
    add(say('web_offline', '（网络出错，没发出去，请检查网络后再点“发送”）'), 'bot');
    if (mine && !input.value) input.value = text;
  } finally { setBusy(false); reveal(anchor); }
}

// The emergency button works without the network: its text came with the page.
function emergency() {
  const [row, d] = bubble('bot'); d.classList.add('emergency');
  fill(d, say('web_emergency', ''));  // never collapsed: all of it matters
  reveal(row);
}

fill(document.getElementById('note'), say('web_header', ''));
document.getElementById('sos').addEventListener('click', emergency);
document.getElementById('f').addEventListener('submit', e => {
  e.preventDefault(); const v = input.value.trim();
  if (v && !busy) { input.value = ''; send(v); }
});
document.addEventListener('click', e => {  // quick buttons and tappable options
  const b = e.target.closest('button[data-send]');
  if (b && !b.disabled) send(b.dataset.send, false, b.classList.contains('opt') ? b.textContent : null);
});
send('你好', true);  // greeting without a fake '你好' bubble from the user
