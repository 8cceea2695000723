// grantflow console: keeps "what waits on me" current without reloading the page.
// Loaded only by the home page; the list works without it (reload to refresh).
(() => {
  'use strict';
  const list = document.getElementById('waiting');
  if (!list) return;
  const every = Number(list.dataset.every || 15000);
  let busy = false;
  const refresh = async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const r = await fetch('/live', { credentials: 'same-origin', headers: { accept: 'application/json' } });
      if (!r.ok) return;
      const { fingerprint } = await r.json();
      if (fingerprint === list.dataset.live) return;
      const page = await fetch('/', { credentials: 'same-origin' });
      if (!page.ok) return;
      const doc = new DOMParser().parseFromString(await page.text(), 'text/html');
      const fresh = doc.getElementById('waiting');
      if (!fresh) return;
      list.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
      list.dataset.live = fresh.dataset.live;
      const status = document.getElementById('live-status');
      if (status) status.textContent = status.dataset.updated;
    } catch (_) {
      // Offline for a moment: try again at the next tick.
    } finally {
      busy = false;
    }
  };
  setInterval(refresh, every);
  document.addEventListener('visibilitychange', refresh);
})();
