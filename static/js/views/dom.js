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

// Rows a page of a table holds: a carrier's capture can hold 100,000 SIP
// messages, and a table of them all would stall the tab.
export const PAGE_SIZE = 500;

// A cell for a value that may be long (a Call-ID, a URI with parameters):
// app.css cuts it with an ellipsis at the column's width, the title shows it whole.
export function elided(text, className = "") {
  const value = text ?? "";
  return el("td", { className: `elide ${className}`.trim(), title: value }, value);
}

// Fills `body` (a tbody) with makeRow(item) for the first page of `items`,
// then a button row that appends the next page. `columns` are the header
// names. For lists the page holds itself (the redaction summary's); the
// report's tables come from the worker (workerTable).
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

// A table of `items` shown a page at a time (fillPaged).
export function pagedTable(className, columns, items, makeRow) {
  const table = dataTable(className, columns);
  fillPaged(table.tBodies[0], items, makeRow, columns);
  return table;
}

// A table whose rows the worker serves a page at a time, sorted, filtered
// and searched there (py/sipdiag/report_tables.py): the page never sorts the
// report itself. `columns`: [{label, column}] (column: the table's sort key,
// null for a column that does not sort); `makeRow(entry)` gives the <tr> (or
// [tr, ...detail rows]) of one {index, row, derived}; `show(find)` opens the
// page holding the row the table's key names (report_tables' `find`).
// Returns {element, table, setQuery, show, narrowed}.
export function workerTable({ className, table, columns, makeRow, api, pageSize = PAGE_SIZE, filters = {} }) {
  const labels = columns.map((column) => column.label);
  const state = { sort: [], filters: { ...filters }, search: "", offset: 0 };
  const body = el("tbody");
  const headers = columns.map(({ label, column }) => {
    if (!column) return el("th", { scope: "col" }, label);
    const button = el("button", { type: "button", className: "sort-button", "data-column": column }, label);
    button.addEventListener("click", () => {
      const [first] = state.sort;
      // First click sorts ascending, the next on the same column descending.
      state.sort = [{ column, descending: first?.column === column && !first.descending }];
      state.offset = 0;
      load();
    });
    return el("th", { scope: "col", "data-column": column }, button);
  });
  // On a narrow screen the header row is out of sight (the rows stack): this
  // select sorts instead. app.css shows it only there.
  const sortSelect = el("select", { className: "sort-select" }, el("option", { value: "" }, "report order"),
    columns.filter(({ column }) => column).flatMap(({ label, column }) => [
      el("option", { value: `${column}:asc` }, `${label} ↑`), el("option", { value: `${column}:desc` }, `${label} ↓`)]));
  sortSelect.addEventListener("change", () => {
    const [column, direction] = sortSelect.value.split(":");
    state.sort = column ? [{ column, descending: direction === "desc" }] : [];
    state.offset = 0;
    load();
  });
  const element = el("table", { className, "aria-busy": "true" }, el("thead", {}, el("tr", {}, headers)), body);
  const previous = el("button", { type: "button", className: "page-previous" }, "previous page");
  const next = el("button", { type: "button", className: "page-next" }, "next page");
  const position = el("span", { className: "page-position", "aria-live": "polite" });
  const pager = el("div", { className: "pager" }, previous, " ", position, " ", next);
  previous.addEventListener("click", () => load({ offset: Math.max(0, state.offset - pageSize) }));
  next.addEventListener("click", () => load({ offset: state.offset + pageSize }));
  let asked = 0; // only the answer to the latest request is drawn (typing sends many)
  let shownRows = []; // the page's rows, one per entry (detail rows left out)
  let held = null; // {timer, resolve}: a query setQuery holds back while the user types

  async function load({ offset = state.offset, find } = {}) {
    const ask = ++asked;
    element.setAttribute("aria-busy", "true");
    let page;
    try {
      page = await api.rows(table, { sort: state.sort, filters: state.filters, search: state.search, offset,
        limit: pageSize, ...(find === undefined ? {} : { find }) });
    } catch (error) {
      // A sentence in the table, never a spinner that turns for ever.
      if (ask !== asked) return null;
      body.replaceChildren(el("tr", { className: "no-rows" }, el("td", { colSpan: labels.length }, error.message)));
      element.setAttribute("aria-busy", "false");
      return null;
    }
    if (ask !== asked) return null;
    state.offset = page.offset;
    draw(page);
    element.setAttribute("aria-busy", "false");
    return page;
  }

  function draw(page) {
    const [first] = state.sort;
    sortSelect.value = first ? `${first.column}:${first.descending ? "desc" : "asc"}` : "";
    for (const header of headers) {
      const sorted = state.sort[0]?.column === header.dataset.column;
      if (sorted) header.setAttribute("aria-sort", state.sort[0].descending ? "descending" : "ascending");
      else header.removeAttribute("aria-sort");
    }
    const fragment = document.createDocumentFragment();
    shownRows = page.rows.map((entry) => {
      const [row, ...rest] = [makeRow(entry)].flat();
      fragment.append(labelCells(row, labels), ...rest);
      return row;
    });
    if (!page.rows.length) {
      fragment.append(el("tr", { className: "no-rows" }, el("td", { colSpan: labels.length }, "No rows match.")));
    }
    body.replaceChildren(fragment);
    const shown = page.rows.length;
    position.textContent = shown ? `rows ${page.offset + 1}–${page.offset + shown} of ${page.total}` : `0 of ${page.total}`;
    previous.disabled = page.offset === 0;
    next.disabled = page.offset + shown >= page.total;
    pager.hidden = page.total <= pageSize;
  }

  load();
  return {
    element: el("div", { className: "worker-table" }, labelled("Sort by", sortSelect, "field sort-field"), element, pager),
    table: element,
    // Filters and search change the rows from the first page on. `delay` (ms) holds the
    // request back until the user stops typing (a later query replaces it); the table is
    // busy meanwhile. A held query that is replaced resolves to null.
    setQuery({ filters: changed = state.filters, search = state.search }, { delay = 0 } = {}) {
      Object.assign(state, { filters: { ...changed }, search, offset: 0 });
      if (held) {
        clearTimeout(held.timer);
        held.resolve(null);
        held = null;
      }
      if (!delay) return load();
      element.setAttribute("aria-busy", "true");
      return new Promise((resolve) => {
        held = { resolve, timer: setTimeout(() => {
          held = null;
          resolve(load());
        }, delay) };
      });
    },
    // The page holding the row named `find` (under the current query): its <tr>, or null.
    async show(find) {
      const page = await load({ find });
      if (!page || page.found === null) return null;
      return shownRows[page.found - page.offset] ?? null;
    },
    // Whether a filter or search is set (an evidence link may have to clear them).
    get narrowed() {
      return Boolean(state.search) || Object.values(state.filters).some((value) => value !== "" && value !== null);
    },
  };
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

// Which of its frame's messages a report row is (0 unless one packet carries several):
// with the frame, what the worker reads a message's text by.
export function indexInFrame(messages, position) {
  let first = position;
  while (first > 0 && messages[first - 1].frame === messages[position].frame) first--;
  return position - first;
}
