// The page side of the ladder. The engine draws it (py/sipdiag/ladder.py: the
// same SVG the HTML report and the evidence pack carry, so every ladder shows
// the same facts); this module puts that markup into the page, lets its
// arrows select a message (click, or Enter on a focused arrow) or compare a
// second one (Shift), shows a message with its header names emphasised, diffs
// two messages, and exports the SVG or a PNG of it.

import { el } from "./dom.js";

// The engine's SVG text as a node of this document (DOMParser: no innerHTML, nothing run).
export function ladderElement(svgText) {
  const root = new DOMParser().parseFromString(svgText, "image/svg+xml").documentElement;
  if (root.localName !== "svg") throw new Error("the engine's ladder could not be read");
  return document.importNode(root, true);
}

// onActivate(frame, compare): compare is true with Shift held (a second message to diff).
export function wireArrows(svg, onActivate) {
  for (const arrow of svg.querySelectorAll(".ladder-arrow")) {
    const frame = Number(arrow.dataset.frame);
    arrow.addEventListener("click", (event) => onActivate(frame, event.shiftKey));
    arrow.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      onActivate(frame, event.shiftKey);
    });
  }
}

// The selected arrow and the one compared with it stand out (calls.css).
export function markArrows(svg, selected, compared) {
  for (const arrow of svg.querySelectorAll(".ladder-arrow")) {
    const frame = Number(arrow.dataset.frame);
    arrow.classList.toggle("ladder-selected", frame === selected);
    arrow.classList.toggle("ladder-compared", frame === compared);
    arrow.setAttribute("aria-pressed", String(frame === selected || frame === compared));
  }
}

// "Name: value" (token characters before the colon, RFC 3261 25.1): the name is emphasised.
const HEADER_LINE = /^([!#-'*+\-.0-9A-Z^-z|~]+)([ \t]*:)(.*)$/;

function lines(text) {
  return text.replace(/\r\n/g, "\n").replace(/\n+$/, "").split("\n");
}

// A message split where SIP splits it: start line, header lines, body lines.
function messageParts(text) {
  const all = lines(text);
  const blank = all.indexOf("");
  const head = blank < 0 ? all : all.slice(0, blank);
  return { start: head[0] ?? "", headers: head.slice(1), body: blank < 0 ? [] : all.slice(blank + 1) };
}

function headerName(line) {
  return HEADER_LINE.exec(line)?.[1].toLowerCase() ?? null;
}

// One line of a message, its header name in <strong>.
function lineNode(line, isHeader) {
  const match = isHeader ? HEADER_LINE.exec(line) : null;
  if (!match) return document.createTextNode(line);
  return el("span", {}, el("strong", { className: "sip-header-name" }, match[1]), match[2] + match[3]);
}

// The message as sngrep shows it: start line bold, header names emphasised, body as is.
export function messageText(text) {
  const { start, headers, body } = messageParts(text);
  return el("pre", { className: "ladder-message" },
    el("strong", { className: "sip-start-line" }, start), "\n",
    headers.map((line) => [lineNode(line, true), "\n"]),
    body.length ? ["\n", body.join("\n")] : []);
}

// Longest common subsequence of two line lists, as same/removed/added steps in order.
// Messages are cut at 64 KiB by the report, so a few thousand lines at most.
function lineDiff(a, b) {
  const width = b.length + 1;
  const common = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i * width + j] = a[i] === b[j] ? common[(i + 1) * width + j + 1] + 1
        : Math.max(common[(i + 1) * width + j], common[i * width + j + 1]);
    }
  }
  const steps = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) steps.push({ kind: "same", line: a[i++], other: b[j++] });
    else if (j >= b.length || (i < a.length && common[(i + 1) * width + j] >= common[i * width + j + 1])) {
      steps.push({ kind: "removed", line: a[i++] });
    } else steps.push({ kind: "added", line: b[j++] });
  }
  return steps;
}

// Header-aware: within a run of removed and added header lines, a header the
// second message has with another value is one "changed" step (both values),
// not an unrelated removal and addition.
function pairHeaders(steps) {
  const out = [];
  for (let start = 0; start < steps.length; ) {
    if (steps[start].kind === "same") {
      out.push(steps[start++]);
      continue;
    }
    let end = start;
    while (end < steps.length && steps[end].kind !== "same") end++;
    const run = steps.slice(start, end);
    const added = run.filter((step) => step.kind === "added");
    for (const step of run) {
      if (step.kind === "removed") {
        const name = headerName(step.line);
        const partner = added.find((other) => !other.paired && name !== null && headerName(other.line) === name);
        if (partner) {
          partner.paired = true;
          out.push({ kind: "changed", line: step.line, other: partner.line });
          continue;
        }
        out.push(step);
      } else if (!step.paired) out.push(step);
    }
    start = end;
  }
  return out;
}

// Lines compared at most per part: the table of common lengths grows with the product.
const MAX_DIFF_LINES = 1500;

function clipped(parts) {
  return { start: parts.start, headers: parts.headers.slice(0, MAX_DIFF_LINES), body: parts.body.slice(0, MAX_DIFF_LINES) };
}

// Steps of the diff of two message texts: start line, headers (paired by name), body.
export function messageDiff(first, second) {
  const a = clipped(messageParts(first));
  const b = clipped(messageParts(second));
  const start = a.start === b.start ? [{ kind: "same", line: a.start }] : [{ kind: "changed", line: a.start, other: b.start }];
  const body = lineDiff(a.body, b.body);
  return [
    ...start.map((step) => ({ ...step, part: "start" })),
    ...pairHeaders(lineDiff(a.headers, b.headers)).map((step) => ({ ...step, part: "header" })),
    ...(a.body.length || b.body.length ? [{ kind: "same", line: "", part: "blank" }] : []),
    ...body.map((step) => ({ ...step, part: "body" })),
  ];
}

const MARKS = { same: "  ", removed: "− ", added: "+ " };

// The diff as lines: "− " only in the first message, "+ " only in the second, a changed header both.
export function diffView(steps) {
  const row = (kind, mark, line, part) => el("span", { className: `diff-line diff-${kind}` },
    mark, lineNode(line, part === "header"), "\n");
  return el("pre", { className: "ladder-diff-text" }, steps.map((step) => (step.kind === "changed"
    ? [row("removed", MARKS.removed, step.line, step.part), row("added", MARKS.added, step.other, step.part)]
    : row(step.kind, MARKS[step.kind], step.line, step.part))));
}

export function svgBlob(svgText) {
  return new Blob([svgText], { type: "image/svg+xml" });
}

// PNG through an <img> of the SVG drawn onto a canvas (no external resources needed).
export function pngBlob(svgText) {
  const size = ladderElement(svgText);
  const url = URL.createObjectURL(svgBlob(svgText));
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Number(size.getAttribute("width"));
      canvas.height = Number(size.getAttribute("height"));
      canvas.getContext("2d").drawImage(image, 0, 0);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("PNG export failed"))), "image/png");
    };
    image.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("PNG export failed"));
    };
    image.src = url;
  });
}
