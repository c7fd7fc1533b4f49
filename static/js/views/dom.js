// DOM helpers shared by the views.

// Small DOM builder: el("td", {className: "x"}, "text", childNode)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// The report's identifiers as words: "no_response" reads "no response".
export function words(identifier) {
  return String(identifier).replaceAll("_", " ");
}

// A {status or identifier: count} table as text: "401 (2), no response (1)".
export function counted(counts) {
  return Object.entries(counts).map(([name, count]) => `${words(name)} (${count})`).join(", ");
}

// A control with its visible name: a real <label>, which a placeholder is not.
export function labelled(text, control, className = "field") {
  return el("label", { className }, el("span", { className: "field-name" }, text), " ", control);
}

// Rows (and the Enter key on them) that open something: focusable, so the
// keyboard reaches every row a mouse can click.
export function activatable(node, action) {
  node.tabIndex = 0;
  node.addEventListener("click", action);
  node.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === node) {
      event.preventDefault();
      action(event);
    }
  });
  return node;
}

// Each cell names its column (data-label): on a narrow screen app.css stacks
// a row as "column value" lines instead of letting the table scroll sideways.
// Rows of one cell spanning the table (details, "show more") need no name.
export function labelCells(row, columns) {
  [...row.cells].forEach((cell, index) => {
    if (cell.colSpan === 1 && columns[index]) cell.dataset.label = columns[index];
  });
  return row;
}

// A table with a header row; rows may be nested arrays of <tr>.
export function dataTable(className, columns, rows = []) {
  const body = el("tbody", {}, rows);
  for (const row of body.rows) labelCells(row, columns);
  return el(
    "table",
    { className },
    el("thead", {}, el("tr", {}, columns.map((name) => el("th", { scope: "col" }, name)))),
    body,
  );
}

// A capture's timestamps can lie beyond the 100,000,000 days either side of
// 1970 that a Date holds (a damaged pcapng if_tsresol or if_tsoffset): there
// toISOString() throws, so such a time is shown as out of range instead.
export const TIME_OUT_OF_RANGE = "time out of range";

// ISO 8601 text of epoch seconds, or null when no Date can hold them.
export function isoTime(epochSeconds) {
  const date = new Date(epochSeconds * 1000);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

// Rows shown at first, and per "show more": a carrier's capture can hold
// 100,000 SIP messages, and a table of them all would stall the tab.
const PAGE_SIZE = 500;

// Fills `body` (a tbody) with makeRow(item) for the first page of `items`,
// then a button row that appends the next page. `columns` are the header names.
export function fillPaged(body, items, makeRow, columns) {
  body.replaceChildren();
  let shown = 0;
  const more = el("button", { type: "button", className: "show-more" });
  const moreRow = el("tr", { className: "show-more-row" }, el("td", { colSpan: columns.length }, more));
  const showNext = () => {
    moreRow.remove();
    const fragment = document.createDocumentFragment();
    for (const end = Math.min(shown + PAGE_SIZE, items.length); shown < end; shown += 1) {
      fragment.append(labelCells(makeRow(items[shown]), columns));
    }
    body.append(fragment);
    const left = items.length - shown;
    if (left > 0) {
      more.textContent = `show ${Math.min(PAGE_SIZE, left)} more (${left} not shown)`;
      body.append(moreRow);
    }
  };
  more.addEventListener("click", showNext);
  showNext();
}

// Text for the report's RFC 6076 figures (Calls and Registrations tabs).
// A delay is {count, min, mean, max} in ms, or null when nothing was measured.
export function delayText(stats) {
  if (!stats) return "–";
  return stats.count === 1 ? `${stats.mean} ms` : `${stats.mean} ms (${stats.count}: ${stats.min}–${stats.max})`;
}

// A ratio is {count, total, percent}; percent is null when nothing could be judged.
export function ratioText(ratio) {
  if (!ratio || ratio.percent === null) return "–";
  return `${ratio.percent} % (${ratio.count}/${ratio.total})`;
}

// A table of `items` shown a page at a time (fillPaged).
export function pagedTable(className, columns, items, makeRow) {
  const table = dataTable(className, columns);
  fillPaged(table.tBodies[0], items, makeRow, columns);
  return table;
}
