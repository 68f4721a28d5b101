// The review cards of one queue page as one element: each card's body (HTML made and escaped by
// dashboard/cards.py: head, image or text, labels, why line), Confirm / Reject, a "Relabel →
// class" menu and, on a decided card, Back to unreviewed. A button sends the trigger
// "decision" = {sid, decision, label}; the server saves it and sends the next page. Nothing is
// fetched. The cards carry the same st-key-* class names as native Streamlit elements
// (st-key-card_<id>, st-key-confirm_<id>, ...; the prefixes come in data.keys, from
// dashboard/keys.py), so the keyboard shortcuts and the tests find a
// card and its buttons the same way in the grid and in focus mode. Streamlit calls the default
// export on mount and again whenever the data change; the deck object lives on the root.

const ACTIONS = [
  ["confirm", "Confirm", "confirmed", "ogad-primary"],
  ["reject", "Reject", "rejected", ""],
];

const PENDING_MS = 3000;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(keyClass, text, cls, act, sid, disabled) {
  const wrap = el("div", keyClass);
  const b = el("button", cls, text);
  b.type = "button";
  b.dataset.act = act;
  b.dataset.sid = String(sid);
  b.disabled = disabled;
  wrap.appendChild(b);
  return wrap;
}

class Deck {
  constructor(root) {
    this.root = root;
    this.choices = new Map(); // card's choice key -> class index picked in its menu
    this.open = new Set(); // sample ids whose Relabel menu is open
    this.setTriggerValue = null;
    this.queue = []; // decisions clicked while one is on its way, sent one at a time
    this.pending = null; // {version, at}: the decision sent, until the deck shows a newer version
    root.addEventListener("click", (e) => this.onClick(e));
    root.addEventListener("change", (e) => this.onChange(e));
  }

  update(data, setTriggerValue) {
    this.setTriggerValue = setTriggerValue;
    if (this.pending && Number(data.version) > this.pending.version) this.pending = null;
    this.redraw(data);
    this.flush();
  }

  // Two triggers sent before the server took the first in would be merged by Streamlit into the
  // newer one (the first decision lost), so a decision is sent only once the deck shows the
  // outcome of the one before (a newer store version), or after PENDING_MS without one (a
  // refused decision changes nothing).
  send(decision) {
    this.queue.push(decision);
    this.flush();
  }

  flush() {
    if (this.pending && Date.now() - this.pending.at < PENDING_MS) {
      clearTimeout(this.retry);
      this.retry = setTimeout(() => this.flush(), PENDING_MS);
      return;
    }
    this.pending = null;
    const next = this.queue.shift();
    if (!next || !this.setTriggerValue) return;
    this.pending = { version: Number(this.data.version), at: Date.now() };
    this.setTriggerValue("decision", next);
  }

  redraw(data) {
    // Streamlit may call again with the same data (a redraw of the page around the deck): the
    // cards stay, and data-rendered counts only real redraws (the keys wait for one)
    const text = JSON.stringify(data);
    if (text === this.text) return;
    this.text = text;
    const same = this.data && this.data.writable === data.writable
      && JSON.stringify(this.data.label_names) === JSON.stringify(data.label_names);
    this.data = data;
    this.root.style.setProperty("--ogad-columns", String(data.columns || 4));
    // a card drawn before with the same content is moved, not redrawn (its image is not
    // decoded again, an open menu stays open)
    const old = same ? this.nodes || new Map() : new Map();
    this.nodes = new Map();
    const cards = (data.cards || []).map((card) => {
      const stamp = JSON.stringify(card);
      const kept = old.get(card.sid);
      const node = kept && kept.stamp === stamp && !kept.node.classList.contains("ogad-sent")
        ? kept.node : this.card(card);
      this.nodes.set(card.sid, { node, stamp });
      return node;
    });
    this.root.replaceChildren(...cards);
    this.root.dataset.rendered = String(Number(this.root.dataset.rendered || 0) + 1);
    this.root.dataset.version = String(data.version ?? "");
    // the card an Undo brought back: the keys' outline moves to it (dashboard/shortcuts.py)
    this.root.dataset.focus = data.focus ? String(data.focus.sid) : "";
    this.root.dataset.focusNonce = data.focus ? String(data.focus.nonce) : "";
    for (const { sid } of this.queue) this.markSent(this.nodes.get(sid));
  }

  choiceOf(card) {
    const picked = this.choices.get(card.choice_key);
    return picked === undefined ? card.choice : picked;
  }

  card(card) {
    const sid = card.sid;
    const locked = !this.data.writable;
    const keys = this.data.keys; // widget key prefixes: dashboard/keys.py
    const node = el("div", `ogad-deck-card ogad-card st-key-${keys.card}${sid}`);
    node.dataset.sid = String(sid);
    const body = el("div", "ogad-body");
    body.innerHTML = card.body; // made and escaped by the server (dashboard/cards.py)
    node.appendChild(body);
    if (card.set) {
      node.appendChild(this.setButtons(card, locked));
      node.appendChild(this.relabelMenu(card, locked));
      return node;
    }
    const row = el("div", "ogad-buttons");
    const texts = card.texts || {}; // the card's words (a corrupt card: Drop / Keep)
    for (const [act, text, , cls] of ACTIONS) {
      row.appendChild(button(`st-key-${keys[act]}${sid}`, texts[act] || text, cls, act, sid,
        locked));
    }
    node.appendChild(row);
    node.appendChild(this.relabelMenu(card, locked));
    if (card.status !== "unreviewed") {
      node.appendChild(
        button(`st-key-${keys.unreview}${sid}`, "↺ Back to unreviewed", "ogad-tertiary", "unreview",
          sid, locked),
      );
    }
    return node;
  }

  // a duplicate set's card (All): Keep #id per member (the others dropped) and Keep all, no
  // Confirm / Reject (the keys' C and R find no button on it)
  setButtons(card, locked) {
    const keys = this.data.keys;
    const row = el("div", "ogad-buttons ogad-set-buttons");
    card.set.forEach((member) => { // none stands out: which member is right is the question
      row.appendChild(button(`st-key-${keys.keepMember}${member.sid}`, `Keep #${member.sid}`, "",
        "keep_one", member.sid, locked));
    });
    row.appendChild(button(`st-key-${keys.keepAll}${card.sid}`, "Keep all", "", "keep_all",
      card.sid, locked));
    return row;
  }

  relabelMenu(card, locked) {
    const sid = card.sid;
    const names = this.data.label_names;
    const choice = this.choiceOf(card);
    const keys = this.data.keys;
    // a card without the model's suggestion reads card.menu ("Relabel…") until a class is picked
    const picked = this.choices.has(card.choice_key);
    const title = card.menu && !picked ? card.menu : `Relabel → ${names[choice]}`;
    const wrap = button(`st-key-${keys.relabelMenu}${sid}`, title, "", "menu", sid, false);
    const menu = el("div", "ogad-menu");
    menu.hidden = !this.open.has(sid);
    if (card.set) { // which member the relabel is for
      const who = el("label", "", "Member ");
      const members = el("select", "ogad-member-pick");
      card.set.forEach((member) => {
        const option = el("option", "", `#${member.sid}`);
        option.value = String(member.sid);
        members.appendChild(option);
      });
      who.appendChild(members);
      menu.appendChild(who);
    }
    const label = el("label", "", card.set ? "New class " : `New class for #${sid}`);
    const select = el("select");
    select.dataset.sid = String(sid);
    select.dataset.choiceKey = card.choice_key;
    names.forEach((name, i) => {
      const option = el("option", "", String(name));
      option.value = String(i);
      option.selected = i === choice;
      select.appendChild(option);
    });
    label.appendChild(select);
    menu.appendChild(label);
    menu.appendChild(button(`st-key-${keys.relabel}${sid}`, "Relabel", "ogad-primary", "relabel", sid,
      locked));
    wrap.appendChild(menu);
    return wrap;
  }

  onChange(e) {
    const select = e.target.closest("select[data-choice-key]");
    if (!select) return;
    const index = Number(select.value);
    this.choices.set(select.dataset.choiceKey, index);
    const menuButton = select.closest(".ogad-menu").parentElement.querySelector("[data-act=menu]");
    menuButton.textContent = `Relabel → ${this.data.label_names[index]}`;
  }

  onClick(e) {
    const b = e.target.closest("button[data-act]");
    if (!b || b.disabled || !this.root.contains(b)) return;
    const sid = Number(b.dataset.sid);
    const act = b.dataset.act;
    if (act === "menu") {
      const menu = b.parentElement.querySelector(".ogad-menu");
      menu.hidden = !menu.hidden;
      if (menu.hidden) this.open.delete(sid);
      else this.open.add(sid);
      return;
    }
    const decision = { confirm: "confirmed", reject: "rejected", relabel: "relabeled",
      unreview: "unreviewed", keep_one: "keep_one", keep_all: "keep_all" }[act];
    let label = null;
    let target = sid;
    if (act === "relabel") {
      const menu = b.closest(".ogad-menu");
      label = Number(menu.querySelector("select[data-choice-key]").value);
      const member = menu.querySelector(".ogad-member-pick");
      if (member) target = Number(member.value); // a set card: the member picked
      this.open.delete(sid);
    }
    this.markSent({ node: b.closest(".ogad-deck-card") });
    this.send({ sid: target, decision, label });
  }

  // the card's decision is on its way: faded, no second click
  markSent(entry) {
    if (!entry) return;
    entry.node.classList.add("ogad-sent");
    entry.node.querySelectorAll("button").forEach((other) => { other.disabled = true; });
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".ogad-deck");
  if (!root || !data) return undefined;
  if (!root.__ogadDeck) root.__ogadDeck = new Deck(root);
  root.__ogadDeck.update(data, setTriggerValue);
  return undefined;
}
