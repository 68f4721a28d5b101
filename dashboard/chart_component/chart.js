// One plotly figure (ogad_core/reporting/charts.py, sent as its JSON text in data.figure) drawn
// with the partial plotly.js bundle the dashboard's own server serves (data.src; loaded once per
// page, shared by every chart). A click on a point that carries customdata sends the trigger
// "click" = that customdata when data.clickable (a class bar: its name; a cell of the given x
// predicted grid: [given, predicted]). Streamlit calls the default export on mount and again
// whenever the data change; an unchanged figure is not drawn again. A chart is drawn once a part
// of it is on the screen (below the fold: when scrolled to). Nothing is fetched from the internet.

// On a fresh visit to a page with charts, the page's head (dashboard/page_head.py) has already
// started loading plotly.js under this name.
const LOADING = "__ogadPlotlyLoading";
// A chart below the fold is drawn when a part of it scrolls onto the screen: the first screen
// paints without waiting for it (drawing one takes some 50 ms).

function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window[LOADING]) {
    window[LOADING] = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => {
        performance.mark("ogad-chart:plotly");
        resolve(window.Plotly);
      };
      script.onerror = () => {
        window[LOADING] = undefined; // a later chart tries again
        reject(new Error(`cannot load plotly.js from ${src}`));
      };
      document.head.appendChild(script);
    });
  }
  return window[LOADING];
}

function onClick(root, event) {
  const point = event && event.points && event.points[0];
  const chart = root.__ogadChart;
  if (!point || point.customdata === undefined || !chart.clickable) return;
  chart.send("click", point.customdata);
}

async function draw(root, text) {
  const Plotly = await loadPlotly(root.__ogadChart.src);
  if (root.__ogadChart.text !== text) return; // a newer figure came while plotly.js loaded
  const figure = JSON.parse(text);
  await Plotly.react(root, figure.data, figure.layout, { displaylogo: false, responsive: true });
  if (!root.__ogadChart.listening) {
    root.__ogadChart.listening = true;
    root.on("plotly_click", (event) => onClick(root, event));
  }
  root.dataset.drawn = String(Number(root.dataset.drawn) + 1);
  performance.mark("ogad-chart:drawn");
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".ogad-chart");
  if (!root || !data) return undefined;
  if (data.preload) {
    loadPlotly(data.src).catch(() => undefined); // a chart that needs it reports the error
    return undefined;
  }
  const chart = root.__ogadChart || (root.__ogadChart = {});
  chart.send = setTriggerValue;
  chart.clickable = Boolean(data.clickable);
  chart.src = data.src;
  if (chart.text === data.figure) return undefined;
  chart.text = data.figure;
  reserveHeight(root, data.figure);
  // once plotly.js is there (the page's other charts have reserved their heights by then),
  // drawn when on the screen; a failed load is reported by drawOrReport
  const drawWhenSeen = () => whenOnScreen(root, () => drawOrReport(root, data.figure));
  loadPlotly(chart.src).then(drawWhenSeen, drawWhenSeen);
  return undefined;
}

// The figure's own height, kept free before it is drawn: the page does not move when it is, and
// a chart below the fold stays there until drawn.
function reserveHeight(root, text) {
  let height;
  try {
    height = Number(JSON.parse(text).layout.height);
  } catch {
    return; // draw() reports a figure it cannot read
  }
  if (height > 0) root.style.minHeight = `${height}px`;
}

function scrollParent(node) {
  for (let el = node.parentElement; el; el = el.parentElement) {
    const { overflowY } = getComputedStyle(el);
    if (overflowY === "auto" || overflowY === "scroll") return el;
  }
  return null; // the viewport
}

function onScreen(root, scroller) {
  const box = root.getBoundingClientRect();
  const view = scroller
    ? scroller.getBoundingClientRect()
    : { top: 0, bottom: window.innerHeight };
  return box.bottom > view.top && box.top < view.bottom;
}

function whenOnScreen(root, action) {
  if (root.__ogadObserver) root.__ogadObserver.disconnect();
  if (typeof IntersectionObserver === "undefined") {
    action();
    return;
  }
  const scroller = scrollParent(root);
  const observer = new IntersectionObserver(
    (entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      // the page above may still be mounting (with plotly.js loaded early, a chart can mount
      // before those above it have their height): drawn if it is still on the screen two
      // frames later, else the observer calls again once it is scrolled to
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          if (root.__ogadObserver !== observer || !onScreen(root, scroller)) return;
          observer.disconnect();
          root.__ogadObserver = undefined;
          action();
        }),
      );
    },
    { root: scroller },
  );
  root.__ogadObserver = observer;
  observer.observe(root);
}

function drawOrReport(root, text) {
  draw(root, text).catch((err) => {
    root.textContent = "";
    const note = document.createElement("div");
    note.className = "ogad-chart-error";
    note.textContent = `This chart could not be drawn: ${err.message || err}`;
    root.appendChild(note);
  });
}
