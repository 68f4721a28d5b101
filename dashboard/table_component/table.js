// A table sent as {columns, bars, values, shown, maxHeight} (dashboard/table_component): plain
// HTML cells (set as text, never parsed as HTML); a click on a header sorts by that column
// (numbers as numbers, missing last; a second click reverses). Streamlit calls the default
// export on mount and whenever the data change; an unchanged table is not built again.

function compare(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function cell(row, values, text, c, bars, columns) {
  const td = document.createElement("td");
  const v = values[c];
  if (typeof v === "number") td.className = "num";
  if (bars.includes(columns[c]) && typeof v === "number") {
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(1, v)) * 4}rem`;
    const label = document.createElement("em");
    label.style.fontStyle = "normal";
    label.textContent = text[c];
    bar.append(fill, label);
    td.appendChild(bar);
  } else {
    td.textContent = text[c];
  }
  row.appendChild(td);
}

function body(tbody, data, order) {
  const rows = order.map((i) => {
    const tr = document.createElement("tr");
    data.columns.forEach((_, c) => cell(tr, data.values[i], data.shown[i], c, data.bars, data.columns));
    return tr;
  });
  tbody.replaceChildren(...rows);
}

function sortBy(root, th, c) {
  const state = root.__ogadTable;
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  root.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const values = state.data.values;
  const order = values.map((_, i) => i);
  order.sort((i, j) => {
    const a = values[i][c];
    const b = values[j][c];
    if (a === null || b === null) return (a === null) - (b === null) || i - j; // missing last
    const d = compare(a, b);
    return (ascending ? d : -d) || i - j;
  });
  body(root.querySelector("tbody"), state.data, order);
}

function build(root, data) {
  const table = document.createElement("table");
  const head = document.createElement("tr");
  data.columns.forEach((name, c) => {
    const th = document.createElement("th");
    th.textContent = name;
    th.title = `Sort by ${name}`;
    th.tabIndex = 0; // sortable from the keyboard too (Enter or Space)
    th.addEventListener("click", () => sortBy(root, th, c));
    th.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      sortBy(root, th, c);
    });
    head.appendChild(th);
  });
  const thead = document.createElement("thead");
  thead.appendChild(head);
  const tbody = document.createElement("tbody");
  table.append(thead, tbody);
  body(tbody, data, data.values.map((_, i) => i));
  root.replaceChildren(table);
  root.style.maxHeight = `${data.maxHeight}px`;
}

export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".ogad-table");
  if (!root || !data) return undefined;
  const text = JSON.stringify(data);
  const state = root.__ogadTable || (root.__ogadTable = {});
  if (state.text === text) return undefined;
  state.text = text;
  state.data = data;
  build(root, data);
  return undefined;
}
