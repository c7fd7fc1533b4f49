// DOM helpers shared by the views.

// Small DOM builder: el("td", {className: "x"}, "text", childNode)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
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
// then a button row that appends the next page.
export function fillPaged(body, items, makeRow, columns) {
  body.replaceChildren();
  let shown = 0;
  const more = el("button", { type: "button", className: "show-more" });
  const moreRow = el("tr", { className: "show-more-row" }, el("td", { colSpan: columns }, more));
  const showNext = () => {
    moreRow.remove();
    const fragment = document.createDocumentFragment();
    for (const end = Math.min(shown + PAGE_SIZE, items.length); shown < end; shown += 1) {
      fragment.append(makeRow(items[shown]));
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
