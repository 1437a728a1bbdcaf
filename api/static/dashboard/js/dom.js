// Small DOM helpers: elements, tables (sortable), formats and a view's state line.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export const $ = (selector) => document.querySelector(selector);

export function money(usd) {
  if (usd === null || usd === undefined) return "–";
  return Math.abs(usd) >= 1 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(6)}`;
}

export function seconds(value) {
  return value === null || value === undefined ? "–" : `${value.toFixed(3)} s`;
}

export function percent(ratio) {
  return ratio === null || ratio === undefined ? "–" : `${(100 * ratio).toFixed(1)}%`;
}

export function when(unix) {
  return unix ? new Date(unix * 1000).toLocaleString() : "–";
}

// A view's state line: "loading", "empty", "error" or "" (hidden), with what is happening.
export function setState(view, kind, text = "") {
  const line = view.querySelector("[data-state]");
  line.dataset.state = kind;
  line.textContent = text;
  line.hidden = !kind;
}

// Fill `table` with one row per item. Each column: {key, label, value(row), show(value)}.
// Clicking a header sorts by that column (again: the other way). Cells carry data-col.
export function fillTable(table, columns, rows, rowKey) {
  const state = table._sort || { key: null, descending: true };
  table._sort = state;
  const sorted = [...rows];
  const column = columns.find((c) => c.key === state.key);
  if (column) {
    const value = column.value || ((row) => row[column.key]);
    sorted.sort((a, b) => compare(value(a), value(b)) * (state.descending ? -1 : 1));
  }
  const header = el("tr", {}, ...columns.map((c) => el("th", {
    scope: "col", "data-col": c.key, "aria-sort": c.key === state.key ? (state.descending ? "descending" : "ascending") : null,
    onclick: () => {
      state.descending = state.key === c.key ? !state.descending : true;
      state.key = c.key;
      fillTable(table, columns, rows, rowKey);
    },
  }, c.label)));
  const body = sorted.map((row) => el("tr", { "data-key": rowKey(row) }, ...columns.map((c) => {
    const value = c.value ? c.value(row) : row[c.key];
    return el("td", { "data-col": c.key }, c.show ? c.show(value, row) : String(value ?? "–"));
  })));
  table.replaceChildren(el("thead", {}, header), el("tbody", {}, ...body));
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
}
