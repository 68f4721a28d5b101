// The gradient map: one <canvas> that draws the server-made image of all samples (big maps) and
// the points sent by dashboard/mapfig.py (map_payload), with wheel zoom, drag pan, box and lasso
// selection, click to pick a sample and a hover tooltip. Nothing is fetched: Streamlit serves
// this module inline. Streamlit calls the default export on mount and again whenever the data
// change; the map object lives on the root element between calls. When a map has painted, the
// root gets data-painted (a count), data-title (the legend title) and window.__ogadMap is set.

const OUTLINE = "#1b1b1b";
const MIN_ZOOM = 0.5;
const MAX_ZOOM = 400;
const DRAG_PX = 3; // a press that moves less than this is a click
const CLICK_WAIT_MS = 250; // a second click within this is a double-click (resets the view)

function decode(b64, Type) {
  if (!b64) return null;
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer);
}

function hexToRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function scaleTable(stops, n = 256) {
  const rgb = stops.map(hexToRgb);
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = (i / (n - 1)) * (rgb.length - 1);
    const k = Math.min(Math.floor(t), rgb.length - 2);
    const f = t - k;
    const c = [0, 1, 2].map((j) => Math.round(rgb[k][j] + (rgb[k + 1][j] - rgb[k][j]) * f));
    out.push(`rgb(${c[0]},${c[1]},${c[2]})`);
  }
  return out;
}

function fmt(v) {
  if (!Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(2) : v.toFixed(3);
}

function fitView(e) {
  return { cx: (e[0] + e[1]) / 2, cy: (e[2] + e[3]) / 2, zoom: 1 };
}

function loaded(img) {
  return Boolean(img && img.complete && img.naturalWidth > 0);
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

class GradientMap {
  constructor(root) {
    this.root = root;
    this.stage = root.querySelector(".stage");
    this.canvas = root.querySelector("canvas");
    this.tip = root.querySelector(".tip");
    this.legendEl = root.querySelector(".legend");
    this.ctx = this.canvas.getContext("2d");
    this.mode = window.__ogadMapMode || "pan";
    this.size = [0, 0];
    this.view = null; // {cx, cy, zoom}: the map point at the canvas centre, zoom over the fit
    this.drag = null;
    this.pending = null; // a selection sent, not yet confirmed by the server
    this.hover = -1;
    this.frame = 0;
    this.paints = 0;
    this.img = null;
    this.bind();
    this.setMode(this.mode);
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.stage);
  }

  // ---- data ------------------------------------------------------------------------------
  update(data, setStateValue) {
    this.setStateValue = setStateValue;
    const extentKey = data.extent.join(",");
    const saved = window.__ogadMapView;
    if (!this.view || this.extentKey !== extentKey) {
      this.view = saved && saved.key === extentKey ? { ...saved.view } : fitView(data.extent);
    }
    this.extentKey = extentKey;
    this.data = data;
    this.n = data.n;
    this.x = decode(data.x, Float32Array);
    this.y = decode(data.y, Float32Array);
    this.sid = decode(data.sid, Float64Array);
    this.given = decode(data.given, Int32Array);
    this.pred = decode(data.pred, Int32Array);
    this.code = decode(data.code, Int32Array);
    this.score = decode(data.score, Float32Array);
    this.fill = this.colours(data);
    this.pending = null;
    this.hover = -1;
    this.tip.hidden = true;
    this.pickedIndex = this.indexOf(data.picked);
    this.img = this.loadImage(this.img, data.image);
    this.detailImg = this.loadImage(this.detailImg, data.detail ? data.detail.image : null);
    this.renderLegend(data.legend);
    this.stage.style.height = `${data.height || 460}px`;
    this.resize();
  }

  colours(data) {
    const fill = new Array(this.n);
    if (data.legend.kind === "scale") {
      const table = scaleTable(data.legend.colors);
      const value = decode(data.value, Float32Array);
      const [lo, hi] = data.legend.range;
      const span = hi > lo ? hi - lo : 1;
      for (let i = 0; i < this.n; i++) {
        const v = value[i];
        fill[i] = Number.isFinite(v)
          ? table[Math.max(0, Math.min(255, Math.round(((v - lo) / span) * 255)))]
          : data.legend.missing || "#a7b1c2";
      }
    } else {
      for (let i = 0; i < this.n; i++) fill[i] = data.colors[this.code[i]] || "#888888";
    }
    return fill;
  }

  indexOf(sid) {
    if (sid === null || sid === undefined) return -1;
    for (let i = this.n - 1; i >= 0; i--) if (this.sid[i] === sid) return i;
    return -1;
  }

  loadImage(current, src) {
    if (!src) return null;
    if (current && current.src === src) return current;
    const img = new Image();
    img.onload = () => {
      performance.mark("ogad-map:image");
      this.schedule();
    };
    img.src = src;
    return img;
  }

  renderLegend(legend) {
    const box = this.legendEl;
    box.replaceChildren(el("span", "title", legend.title));
    if (legend.kind === "scale") {
      const [lo, hi] = legend.range;
      const bar = el("span", "scale");
      bar.style.background = `linear-gradient(to right, ${legend.colors.join(", ")})`;
      box.append(el("span", "tick", fmt(lo)), bar, el("span", "tick", fmt(hi)));
      if (legend.missing) box.append(this.swatch(legend.missing, "no score"));
    } else {
      for (const entry of legend.entries) {
        const count = entry.count === undefined ? "" : ` (${entry.count.toLocaleString()})`;
        const text = entry.name + count;
        box.append(this.swatch(entry.color, text));
      }
    }
    if (this.data.n_top > 0) {
      const item = el("span", "item top");
      const top = this.data.top_text || `${this.data.n_top.toLocaleString()} top-ranked`;
      const text = `outlined: ${top}`;
      item.append(el("i", "ring"), el("span", "", text));
      box.append(item);
    }
  }

  swatch(color, text) {
    const item = el("span", "item");
    const dot = el("i", "sw");
    dot.style.background = color;
    item.append(dot, el("span", "", text));
    return item;
  }

  // ---- geometry --------------------------------------------------------------------------
  scale() {
    const [w, h] = this.size;
    const e = this.data.extent;
    return Math.min(w / (e[1] - e[0]), h / (e[3] - e[2])) * this.view.zoom;
  }

  toPx(x, y) {
    const s = this.scale();
    return [this.size[0] / 2 + (x - this.view.cx) * s, this.size[1] / 2 - (y - this.view.cy) * s];
  }

  toData(px, py) {
    const s = this.scale();
    return [this.view.cx + (px - this.size[0] / 2) / s, this.view.cy - (py - this.size[1] / 2) / s];
  }

  // page (client) pixels ↔ map units, for tests and benchmarks
  toClient(x, y) {
    const r = this.canvas.getBoundingClientRect();
    const [px, py] = this.toPx(x, y);
    return [r.left + px, r.top + py];
  }

  fromClient(cx, cy) {
    const r = this.canvas.getBoundingClientRect();
    return this.toData(cx - r.left, cy - r.top);
  }

  point(i) {
    return { sid: this.sid[i], x: this.x[i], y: this.y[i] };
  }

  local(event) {
    const r = this.canvas.getBoundingClientRect();
    return [event.clientX - r.left, event.clientY - r.top];
  }

  // The point drawn on top under the pointer: points are drawn in index order (the outlined
  // top-ranked ones last, the best-ranked last of all), so the last point whose drawn disc
  // holds the pointer is the one seen there. Only where no disc holds it does the nearest
  // point within reach count (small points stay easy to hit).
  hit(px, py) {
    const r = this.data.radius;
    const reach = r + 4;
    const top0 = this.n - this.data.n_top;
    let best = -1;
    let bestD = reach * reach;
    const s = this.scale();
    const ox = this.size[0] / 2 - this.view.cx * s;
    const oy = this.size[1] / 2 + this.view.cy * s;
    for (let i = this.n - 1; i >= 0; i--) {
      const dx = ox + this.x[i] * s - px;
      const dy = oy - this.y[i] * s - py;
      const d = dx * dx + dy * dy;
      const drawn = i >= top0 ? r + 2.5 : r + 0.5; // outlined: r + 1.5 and its stroke
      if (d <= drawn * drawn) return i;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    return best;
  }

  // ---- drawing ---------------------------------------------------------------------------
  resize() {
    const w = this.stage.clientWidth;
    const h = this.stage.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    this.size = [w, h];
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    if (!this.data || !this.size[0]) return;
    const ctx = this.ctx;
    const dpr = this.canvas.width / this.size[0];
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.size[0], this.size[1]);
    const imageReady = !this.img || loaded(this.img);
    if (this.img && imageReady) this.drawImage(this.img, this.data.extent);
    const detailDrawn = Boolean(this.data.detail) && loaded(this.detailImg);
    if (detailDrawn) {
      // the sharper image of a zoomed view replaces the whole map's image there
      const e = this.data.detail.extent;
      const [ax, ay] = this.toPx(e[0], e[3]);
      const [bx, by] = this.toPx(e[1], e[2]);
      ctx.clearRect(ax, ay, bx - ax, by - ay);
      this.drawImage(this.detailImg, e);
    }
    this.drawPoints(ctx);
    this.drawSelection(ctx);
    if (imageReady) this.painted(detailDrawn);
  }

  drawImage(img, e) {
    const [ax, ay] = this.toPx(e[0], e[3]);
    const [bx, by] = this.toPx(e[1], e[2]);
    this.ctx.imageSmoothingEnabled = (bx - ax) / img.naturalWidth < 2;
    this.ctx.drawImage(img, ax, ay, bx - ax, by - ay);
  }

  drawPoints(ctx) {
    const n = this.n;
    const top0 = n - this.data.n_top;
    const r = this.data.radius;
    const s = this.scale();
    const ox = this.size[0] / 2 - this.view.cx * s;
    const oy = this.size[1] / 2 + this.view.cy * s;
    const [w, h] = this.size;
    const visible = (px, py) => px > -8 && py > -8 && px < w + 8 && py < h + 8;
    ctx.globalAlpha = 0.85;
    for (let i = 0; i < top0; ) {
      const colour = this.fill[i];
      ctx.beginPath();
      for (; i < top0 && this.fill[i] === colour; i++) {
        const px = ox + this.x[i] * s;
        const py = oy - this.y[i] * s;
        if (!visible(px, py)) continue;
        ctx.moveTo(px + r, py);
        ctx.arc(px, py, r, 0, 2 * Math.PI);
      }
      ctx.fillStyle = colour;
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    ctx.lineWidth = 1;
    ctx.strokeStyle = OUTLINE;
    for (let i = top0; i < n; i++) {
      const px = ox + this.x[i] * s;
      const py = oy - this.y[i] * s;
      if (!visible(px, py)) continue;
      ctx.beginPath();
      ctx.arc(px, py, r + 1.5, 0, 2 * Math.PI);
      ctx.fillStyle = this.fill[i];
      ctx.fill();
      ctx.stroke();
    }
    for (const [i, colour] of [
      [this.pickedIndex, "#ff2b2b"],
      [this.hover, OUTLINE],
    ]) {
      if (i < 0 || i >= n) continue;
      const [px, py] = this.toPx(this.x[i], this.y[i]);
      ctx.beginPath();
      ctx.arc(px, py, r + 5, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = colour;
      ctx.stroke();
    }
  }

  drawSelection(ctx) {
    let path = null;
    if (this.drag && this.drag.moved && this.drag.mode !== "pan") {
      path = this.dragPath();
    } else {
      const shape = this.pending || this.data.selection;
      if (shape && shape.kind === "box") {
        const [x0, x1] = shape.x;
        const [y0, y1] = shape.y;
        path = [this.toPx(x0, y0), this.toPx(x1, y0), this.toPx(x1, y1), this.toPx(x0, y1)];
      } else if (shape && shape.kind === "lasso") {
        path = shape.x.map((x, i) => this.toPx(x, shape.y[i]));
      }
    }
    if (!path || path.length < 2) return;
    ctx.beginPath();
    path.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.closePath();
    ctx.fillStyle = "rgba(40, 110, 220, 0.08)";
    ctx.fill();
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#2864dc";
    ctx.stroke();
    ctx.setLineDash([]);
  }

  dragPath() {
    const d = this.drag;
    if (d.mode === "box") {
      const [[ax, ay], [bx, by]] = [d.start, d.last];
      return [
        [ax, ay],
        [bx, ay],
        [bx, by],
        [ax, by],
      ];
    }
    return d.path;
  }

  painted(detailDrawn) {
    const stamp = this.data;
    if (this.paintedData === stamp && this.paintedDetail === detailDrawn) return;
    this.paintedData = stamp;
    this.paintedDetail = detailDrawn;
    requestAnimationFrame(() => {
      // the frame after the draw: the painted canvas is on screen
      if (this.data !== stamp) return;
      this.paints += 1;
      Object.assign(this.root.dataset, {
        painted: String(this.paints),
        title: stamp.legend.title,
        points: String(stamp.n),
        raster: String(Boolean(stamp.raster)),
        selection: stamp.selection ? stamp.selection.kind : "",
        detail: detailDrawn ? "1" : "",
      });
      window.__ogadMap = this;
      if (window.__ogadMapFirstPaint === undefined) {
        window.__ogadMapFirstPaint = performance.now();
        performance.mark("ogad-map:painted");
      }
    });
  }

  // ---- interaction -----------------------------------------------------------------------
  bind() {
    const c = this.canvas;
    this.onMove = (e) => this.dragMove(e);
    this.onUp = (e) => this.dragEnd(e);
    c.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    c.addEventListener("mousedown", (e) => this.dragStart(e));
    c.addEventListener("mousemove", (e) => this.hoverAt(e));
    c.addEventListener("mouseleave", () => this.setHover(-1));
    c.addEventListener("dblclick", (e) => {
      e.preventDefault();
      clearTimeout(this.clickTimer);
      this.resetView();
    });
    for (const button of this.root.querySelectorAll("[data-mode]")) {
      button.addEventListener("click", () => this.setMode(button.dataset.mode));
    }
    this.root.querySelector("[data-act=reset]").addEventListener("click", () => this.resetView());
    this.root.querySelector("[data-act=clear]").addEventListener("click", () => {
      this.pending = null;
      if (this.setStateValue) this.setStateValue("selection", null);
      this.schedule();
    });
  }

  setMode(mode) {
    this.mode = mode;
    window.__ogadMapMode = mode;
    for (const button of this.root.querySelectorAll("[data-mode]")) {
      button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    }
    this.canvas.style.cursor = mode === "pan" ? "grab" : "crosshair";
  }

  saveView() {
    window.__ogadMapView = { key: this.extentKey, view: { ...this.view } };
    this.requestDetail();
  }

  // a raster map zoomed in asks the server for a sharper image of the view (once it settles)
  requestDetail() {
    if (!this.data || !this.data.raster || !this.setStateValue) return;
    clearTimeout(this.detailTimer);
    clearTimeout(this.clickTimer);
    this.detailTimer = setTimeout(() => {
      const [x0, y1] = this.toData(0, 0);
      const [x1, y0] = this.toData(this.size[0], this.size[1]);
      const round = (v) => Number(v.toPrecision(7));
      const view = this.view.zoom > 1.2 ? [x0, x1, y0, y1].map(round) : null;
      if (JSON.stringify(view) === JSON.stringify(this.sentView ?? null)) return;
      this.sentView = view;
      this.setStateValue("view", view);
    }, 400);
  }

  resetView() {
    this.view = fitView(this.data.extent);
    this.saveView();
    this.schedule();
  }

  wheel(e) {
    if (!this.data) return;
    e.preventDefault();
    const [px, py] = this.local(e);
    const [mx, my] = this.toData(px, py);
    const zoom = this.view.zoom * Math.exp(-e.deltaY * 0.0015);
    this.view.zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
    const s = this.scale();
    this.view.cx = mx - (px - this.size[0] / 2) / s;
    this.view.cy = my + (py - this.size[1] / 2) / s;
    this.saveView();
    this.setHover(-1);
    this.schedule();
  }

  dragStart(e) {
    if (e.button !== 0 || !this.data) return;
    e.preventDefault();
    const p = this.local(e);
    const view = { ...this.view };
    this.drag = { mode: this.mode, start: p, last: p, path: [p], moved: false, view };
    window.addEventListener("mousemove", this.onMove);
    window.addEventListener("mouseup", this.onUp);
    if (this.mode === "pan") this.canvas.style.cursor = "grabbing";
  }

  dragMove(e) {
    const d = this.drag;
    if (!d) return;
    const p = this.local(e);
    if (!d.moved && Math.hypot(p[0] - d.start[0], p[1] - d.start[1]) < DRAG_PX) return;
    d.moved = true;
    this.setHover(-1);
    if (d.mode === "pan") {
      const s = this.scale();
      this.view.cx = d.view.cx - (p[0] - d.start[0]) / s;
      this.view.cy = d.view.cy + (p[1] - d.start[1]) / s;
    } else if (d.mode === "lasso") {
      const last = d.path[d.path.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 2) d.path.push(p);
    }
    d.last = p;
    this.schedule();
  }

  dragEnd(e) {
    const d = this.drag;
    window.removeEventListener("mousemove", this.onMove);
    window.removeEventListener("mouseup", this.onUp);
    this.drag = null;
    this.setMode(this.mode);
    if (!d) return;
    const p = this.local(e);
    if (!d.moved) {
      // a click picks the point under it, unless it turns out to be half of a double-click
      clearTimeout(this.clickTimer);
      if (e.detail < 2) this.clickTimer = setTimeout(() => this.click(p), CLICK_WAIT_MS);
    } else if (d.mode === "pan") {
      this.saveView();
    } else if (d.mode === "box") {
      const [x0, y0] = this.toData(...d.start);
      const [x1, y1] = this.toData(...p);
      const xs = [Math.min(x0, x1), Math.max(x0, x1)];
      this.select({ kind: "box", x: xs, y: [Math.min(y0, y1), Math.max(y0, y1)] });
    } else if (d.path.length >= 3) {
      const pts = d.path.map(([px, py]) => this.toData(px, py));
      this.select({ kind: "lasso", x: pts.map((q) => q[0]), y: pts.map((q) => q[1]) });
    }
    this.schedule();
  }

  select(shape) {
    this.pending = shape;
    if (this.setStateValue) this.setStateValue("selection", shape);
  }

  click([px, py]) {
    const i = this.hit(px, py);
    if (i < 0) return;
    this.pickedIndex = i;
    this.pending = null;
    if (this.setStateValue) this.setStateValue("selection", { kind: "click", ids: [this.sid[i]] });
  }

  hoverAt(e) {
    if (this.drag || !this.data) return;
    const [px, py] = this.local(e);
    this.setHover(this.hit(px, py), px, py);
  }

  setHover(i, px, py) {
    if (i < 0) {
      if (this.hover >= 0) {
        this.hover = -1;
        this.tip.hidden = true;
        this.schedule();
      }
      if (!this.drag) this.canvas.style.cursor = this.mode === "pan" ? "grab" : "crosshair";
      return;
    }
    this.canvas.style.cursor = "pointer";
    if (i !== this.hover) {
      this.hover = i;
      this.fillTip(i);
      this.schedule();
    }
    const [w, h] = this.size;
    const tw = this.tip.offsetWidth;
    const th = this.tip.offsetHeight;
    this.tip.style.left = `${px + 14 + tw > w ? px - tw - 10 : px + 14}px`;
    this.tip.style.top = `${py + 12 + th > h ? py - th - 8 : py + 12}px`;
  }

  fillTip(i) {
    const d = this.data;
    const label = (k) => (k >= 0 && k < d.labels.length ? d.labels[k] : String(k));
    const lines = [
      el("b", "", `#${this.sid[i]}`),
      el("div", "", `given: ${label(this.given[i])}`),
      el("div", "", `predicted: ${label(this.pred[i])}`),
    ];
    if (this.score && Number.isFinite(this.score[i])) {
      lines.push(el("div", "", `score: ${fmt(this.score[i])}`));
    }
    if (d.status_names) lines.push(el("div", "", d.status_names[this.code[i]] || ""));
    this.tip.replaceChildren(...lines);
    this.tip.hidden = false;
  }

  destroy() {
    this.resizer.disconnect();
    clearTimeout(this.detailTimer);
    clearTimeout(this.clickTimer);
    window.removeEventListener("mousemove", this.onMove);
    window.removeEventListener("mouseup", this.onUp);
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}

export default function (component) {
  performance.mark("ogad-map:mount");
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".ogad-map");
  if (!root || !data) return undefined;
  if (!root.__ogadMap) root.__ogadMap = new GradientMap(root);
  const map = root.__ogadMap;
  map.update(data, setStateValue);
  return () => {
    if (root.__ogadMap === map && !root.isConnected) {
      map.destroy();
      delete root.__ogadMap;
    }
  };
}
