// grantflow console: keeps "what waits on me" current without reloading the page.
// Loaded only by the home page; the list works without it (reload to refresh).
//
// Live: a graphql-transport-ws socket to /graphql/ws on this site (CSP `connect-src
// 'self'`), authenticated by the session cookie (the server accepts it from pages of
// this origin only; the page holds no token). Each `myTasks` event (an instance arriving
// in or leaving a state that waits on the viewer) fetches the home page and swaps the
// list in place, announced politely to screen readers. If the socket cannot be opened or
// closes, the page falls back to asking `/live` for a digest every 15 seconds, and tries
// the socket again later.
(() => {
  'use strict';
  const list = document.getElementById('waiting');
  if (!list) return;
  const every = Number(list.dataset.every || 15000);
  let busy = false;
  let again = false;

  // Fetch the home page and swap the list in (when `force` or its digest changed).
  const swap = async (force) => {
    if (busy) { again = again || force; return; }
    busy = true;
    try {
      if (!force) {
        if (document.hidden) return;
        const r = await fetch('/live', { credentials: 'same-origin', headers: { accept: 'application/json' } });
        if (!r.ok) return;
        const { fingerprint } = await r.json();
        if (fingerprint === list.dataset.live) return;
      }
      const page = await fetch('/', { credentials: 'same-origin' });
      if (!page.ok) return;
      const doc = new DOMParser().parseFromString(await page.text(), 'text/html');
      const fresh = doc.getElementById('waiting');
      if (!fresh) return;
      list.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
      list.dataset.live = fresh.dataset.live;
      list.dataset.refreshed = String(Number(list.dataset.refreshed || 0) + 1);
      const status = document.getElementById('live-status');
      if (status) status.textContent = status.dataset.updated;
    } catch (_) {
      // Offline for a moment: the next event or tick tries again.
    } finally {
      busy = false;
      if (again) { again = false; swap(true); }
    }
  };

  // Polling, while the socket is down.
  let timer = null;
  const poll = (on) => {
    if (on && timer === null) timer = setInterval(() => swap(false), every);
    if (!on && timer !== null) { clearInterval(timer); timer = null; }
  };
  document.addEventListener('visibilitychange', () => { if (timer !== null) swap(false); });

  let failures = 0;
  const connect = () => {
    let socket;
    try {
      const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
      socket = new WebSocket(`${scheme}//${window.location.host}/graphql/ws`, 'graphql-transport-ws');
    } catch (_) {
      list.dataset.liveMode = 'polling';
      poll(true);
      return;
    }
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'connection_init' }));
    });
    socket.addEventListener('message', (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      if (msg.type === 'connection_ack') {
        socket.send(JSON.stringify({
          type: 'subscribe',
          id: 'tasks',
          payload: { query: 'subscription { myTasks { change instance { id } } }' },
        }));
        failures = 0;
        poll(false);
        list.dataset.liveMode = 'socket';
        // Whatever changed while the socket was being opened.
        swap(false);
      } else if (msg.type === 'next' && msg.id === 'tasks') {
        swap(true);
      } else if (msg.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      }
    });
    socket.addEventListener('close', (e) => {
      list.dataset.liveMode = 'polling';
      poll(true);
      // Signed out (4403) or the server going away: polling carries on; the socket is
      // tried again later, less often after each failure.
      if (e.code === 4403) return;
      failures += 1;
      setTimeout(connect, Math.min(60000, 2000 * 2 ** Math.min(failures, 5)));
    });
  };
  if (typeof WebSocket === 'function') connect(); else { list.dataset.liveMode = 'polling'; poll(true); }
})();
