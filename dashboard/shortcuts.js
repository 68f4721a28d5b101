(() => {
  // Keyboard shortcuts for the review queue (dashboard/shortcuts.py puts this script in the
  // page). The key tables are filled in from dashboard/keys.py, where the widget keys are spelled.
  const CARD_KEYS = __CARD_KEYS__, PAGE_KEYS = __PAGE_KEYS__, NAV_KEYS = __NAV_KEYS__;
  const MENU_KEYS = __MENU_KEYS__;
  const CARD = __CARD__;  // a card container's key prefix (then the sample id)
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  const win = doc.defaultView;
  if (win.__ogadKeys) win.removeEventListener('keydown', win.__ogadKeys.listener, true);
  const state = win.__ogadKeys || {sid: null, index: 0};
  const cards = () => Array.from(doc.querySelectorAll(`[class*='st-key-${CARD}']`));
  const sidOf = (el) => ((el.className.match(new RegExp(`st-key-${CARD}(\\d+)`)) || [])[1]);
  const style = doc.getElementById('ogad-focus-style') || (() => {
    const s = doc.createElement('style'); s.id = 'ogad-focus-style'; doc.head.appendChild(s);
    return s; })();
  // a rerun is redrawing the page: its cards are half old, half new
  // the decision store's version the grid's card deck shows (null: no deck on the page);
  // decided(): the deck shows the outcome of the latest decision key (its rerun has run)
  const deckVersion = () => {
    const deck = doc.querySelector('.ogad-deck');
    const v = deck ? deck.dataset.version : undefined;
    return v === undefined || v === '' ? null : Number(v);
  };
  const decided = () => state.versionAtKey !== null && state.versionAtKey !== undefined
    && deckVersion() !== null && deckVersion() > state.versionAtKey;
  const updating = () => !!doc.querySelector(
    "[data-stale='true'], [data-testid='stStatusWidget']");
  // an Undo brought a card back: the outline (and the next key) goes to it, once per undo
  const restored = (all) => {
    const deck = doc.querySelector('.ogad-deck');
    const nonce = deck ? deck.dataset.focusNonce : '';
    if (!nonce || nonce === state.focusNonce) return;
    const el = all.find((c) => sidOf(c) === deck.dataset.focus);
    if (!el) return;
    state.focusNonce = nonce; state.sid = deck.dataset.focus; state.used = true;
  };
  const focused = () => {
    const all = cards();
    if (!all.length) return null;
    restored(all);
    // until a key was used the focus is the first card, whatever order the page shows
    let el = state.sid !== null && state.used ? all.find((c) => sidOf(c) === state.sid) : null;
    // the focused card left: its place is known once the page is redrawn
    // (the card deck's new cards are in place as soon as it has drawn them)
    if (!el && state.used && updating() && !decided()) return null;
    if (!el) el = all[Math.min(state.index, all.length - 1)];
    state.index = all.indexOf(el); state.sid = sidOf(el);
    return el;
  };
  const paint = () => {
    const el = focused();
    const css = el ? `.st-key-${CARD}${state.sid}{outline:3px solid #ff4b4b;outline-offset:3px;` +
      `border-radius:0.6rem}` : '';
    if (style.textContent !== css) style.textContent = css;
    doc.body.dataset.ogadFocus = el ? state.sid : '';
  };
  const press = (key) => {
    const button = doc.querySelector(`.st-key-${key} button`);
    if (!button || button.disabled) return false;
    button.click(); return true;
  };
  const TEXT_INPUTS = ['text', 'search', 'number', 'email', 'password', 'url', 'tel'];
  const typing = (t) => t && t.getAttribute && (t.isContentEditable
    || (t.tagName === 'INPUT' && TEXT_INPUTS.includes((t.type || 'text').toLowerCase()))
    || ['TEXTAREA', 'SELECT'].includes(t.tagName)
    || ['combobox', 'listbox'].includes(t.getAttribute('role')));
  const move = (step, pageKey) => {
    const all = cards();
    const next = state.index + step;
    if (next < 0 || next >= all.length) {
      if (press(pageKey)) { state.index = step > 0 ? 0 : 1e9; state.sid = null; }
      return;
    }
    state.index = next; state.sid = sidOf(all[next]);
    paint();
    all[next].scrollIntoView({block: 'nearest', behavior: 'instant'});
  };
  // A key that reruns the app (a decision, undo, a page turn) locks the keys until that rerun
  // has replaced the cards: keys typed meanwhile wait in a queue, so none lands on a card that
  // is being redrawn (Streamlit marks such elements data-stale="true").
  const stale = () => !!doc.querySelector("[data-stale='true']");
  // After a decision or an undo, the lock ends as soon as the grid's card deck shows its
  // outcome: the server has taken that rerun in (a click sent before could be merged with it
  // and lost); the rest of the page may still be redrawing.
  const busy = () => {
    if (state.lock && decided()) { state.lock = 0; return false; }
    if (stale()) { state.sawStale = true; return true; }
    if (!state.lock) return false;
    const age = Date.now() - state.lock;
    const waitsForDeck = state.versionAtKey !== null && state.versionAtKey !== undefined;
    if ((!waitsForDeck && state.sawStale && age > 30) || age > 1500) {
      state.lock = 0; return false;
    }
    return true;
  };
  // a card button inside a closed popover (Relabel): open the popover once, then the queued key
  // presses the button when it shows
  const openMenu = (key) => {
    if (!(key in MENU_KEYS) || !focused()) return;
    const menu = MENU_KEYS[key] + state.sid;
    if (state.menu === menu && Date.now() - state.menuAt < 1000) return;
    if (press(menu)) { state.menu = menu; state.menuAt = Date.now(); }
  };
  // act on one key; false when its button is not there (yet): the key then stays queued
  const act = (key) => {
    let reruns = false;
    if (key in NAV_KEYS) {
      const [focusKey, pageKey, step] = NAV_KEYS[key];
      reruns = press(focusKey);
      if (!reruns) {
        const turned = state.index + step < 0 || state.index + step >= cards().length;
        move(step, pageKey);
        reruns = turned;
      }
    } else if (key in PAGE_KEYS) {
      reruns = press(PAGE_KEYS[key]);
      if (!reruns) return false;
    } else {
      reruns = !!focused() && press(CARD_KEYS[key] + state.sid);
      if (!reruns) { openMenu(key); return false; }
    }
    if (reruns) {
      state.lock = Date.now(); state.sawStale = false;
      state.versionAtKey = key in NAV_KEYS ? null : deckVersion();
    }
    return true;
  };
  const KEEP_MS = 2000;  // a key whose button does not show up within this time is dropped
  const drain = () => {
    while (state.queue.length && !busy()) {
      const [key, at] = state.queue[0];
      if (!act(key) && Date.now() - at < KEEP_MS) return;
      state.queue.shift();
    }
  };
  const listener = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || !e.key) return;
    if (typing(e.target)) { if (e.key === 'Escape') e.target.blur(); return; }
    const key = e.key.toLowerCase();
    if (!(key in NAV_KEYS || key in PAGE_KEYS || key in CARD_KEYS)) return;
    e.preventDefault();
    e.stopImmediatePropagation();  // Streamlit's C (clear caches) and R (rerun) stay out
    state.used = true;
    state.queue.push([key, Date.now()]);
    drain();
  };
  // a card's "copy path" control (grid and focus mode): the file's path to the clipboard
  const copied = (button) => {
    button.dataset.copied = '1'; button.textContent = 'copied ✓';
    win.setTimeout(() => { delete button.dataset.copied; button.textContent = 'copy path'; },
      1500);
  };
  const copyPath = (e) => {
    const button = e.target.closest && e.target.closest('.ogad-copy');
    if (!button) return;
    e.preventDefault(); e.stopPropagation();
    const text = button.dataset.copy || '';
    const fallback = () => {
      const area = doc.createElement('textarea');
      area.value = text; area.style.position = 'fixed'; area.style.opacity = '0';
      doc.body.appendChild(area); area.select();
      try { doc.execCommand('copy'); } finally { area.remove(); }
      copied(button);
    };
    const clip = win.navigator.clipboard;
    if (clip && clip.writeText) clip.writeText(text).then(() => copied(button), fallback);
    else fallback();
  };
  if (state.copyListener) doc.removeEventListener('click', state.copyListener, true);
  state.copyListener = copyPath;
  doc.addEventListener('click', copyPath, true);
  state.queue = [];
  state.listener = listener;
  win.__ogadKeys = state;
  win.addEventListener('keydown', listener, true);  // before Streamlit's own C / R keys
  if (state.observer) state.observer.disconnect();
  // a redraw moves the outline at the next frame, not at the next tick of the timer
  const repaint = () => { if (!state.frame) state.frame = win.requestAnimationFrame(() => {
    state.frame = 0; drain(); paint(); }); };
  state.observer = new win.MutationObserver(() => {
    if (stale()) state.sawStale = true;
    repaint();
  });
  state.observer.observe(doc.body, {subtree: true, attributes: true, childList: true,
    attributeFilter: ['data-stale']});
  if (state.timer) win.clearInterval(state.timer);
  state.timer = win.setInterval(() => { drain(); paint(); }, 100);
  paint();
})();
