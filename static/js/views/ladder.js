// Ladder (sequence) diagram of one call as SVG: a column per host, an arrow
// per SIP message, RTP streams as bands. Colours are SVG attributes, not CSS,
// so an exported SVG or PNG looks the same outside the page; the classes let
// the page's dark theme recolour it on screen (calls.css). Arrows take the
// keyboard focus, and Enter or Space on one is a click.

// The SVG namespace name: an identifier createElementNS needs, never fetched.
const SVG_NS = "http://www.w3.org/2000/svg";
const COLUMN_WIDTH = 220;
const CHAR_WIDTH = 7.5; // bold 12px sans-serif, generous
const ROW_HEIGHT = 28;
const TOP = 56;
const LEFT = 110; // room for the time labels
const COLOURS = { request: "#1f4e8c", success: "#1d7a35", provisional: "#6b6b6b", failure: "#b42318", rtp: "#c7d7f0" };

function svgNode(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

function label(message) {
  if (message.method) return `${message.method}${message.has_sdp ? " (SDP)" : ""}`;
  return `${message.status} ${message.reason ?? ""}${message.has_sdp ? " (SDP)" : ""}`.trim();
}

function kind(message) {
  if (message.method) return "request";
  if (message.status < 200) return "provisional";
  return message.status < 300 ? "success" : "failure";
}

function hostport(ip, port) {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

// The rows of the diagram in time order: messages and the start of each RTP stream.
export function ladderRows(call, messages, { collapseRetransmissions = false } = {}) {
  const retransmitted = new Set(call.retransmission_frames ?? []);
  const frames = new Set(call.frames);
  const rows = messages
    .filter((m) => frames.has(m.frame) && !(collapseRetransmissions && retransmitted.has(m.frame)))
    .map((m) => ({ kind: "message", time: m.time, message: m, retransmission: retransmitted.has(m.frame) }));
  for (const media of call.media ?? []) rows.push({ kind: "rtp", time: media.first_time, media });
  return rows.sort((a, b) => a.time - b.time);
}

// Columns: every host of the call in order of appearance (addresses RTP uses included).
function columnsFor(call, rows) {
  const names = new Map((call.hosts ?? []).map((host) => [host.address, host.name]));
  const columns = [];
  const add = (address) => {
    if (!columns.some((c) => c.address === address)) columns.push({ address, name: names.get(address) ?? null });
  };
  for (const row of rows) {
    if (row.kind === "message") {
      add(hostport(row.message.src_ip, row.message.src_port));
      add(hostport(row.message.dst_ip, row.message.dst_port));
    }
  }
  for (const row of rows) if (row.kind === "rtp") [row.media.src, row.media.dst].forEach(add);
  return columns;
}

export function renderLadder(call, messages, options = {}) {
  const rows = ladderRows(call, messages, options);
  const columns = columnsFor(call, rows);
  // Wide enough for the longest host label (an IPv6 address with its port is 45 characters).
  const columnWidth = columns.reduce((widest, c) => Math.max(widest, c.address.length * CHAR_WIDTH + 24), COLUMN_WIDTH);
  const x = (address) => LEFT + columns.findIndex((c) => c.address === address) * columnWidth + columnWidth / 2;
  const width = LEFT + columns.length * columnWidth;
  const height = TOP + rows.length * ROW_HEIGHT + 20;
  const svg = svgNode("svg", {
    xmlns: SVG_NS, class: "ladder-svg", width, height, viewBox: `0 0 ${width} ${height}`,
    "font-family": "sans-serif", "font-size": "12",
  });
  svg.append(svgNode("rect", { x: 0, y: 0, width, height, fill: "#ffffff", class: "ladder-bg" }));
  for (const column of columns) {
    const cx = x(column.address);
    svg.append(svgNode("text", { x: cx, y: 18, "text-anchor": "middle", "font-weight": "bold", class: "ladder-host" }, column.address));
    if (column.name) svg.append(svgNode("text", { x: cx, y: 34, "text-anchor": "middle", fill: "#555", class: "ladder-host-name" }, column.name.slice(0, 32)));
    svg.append(svgNode("line", { x1: cx, y1: TOP - 12, x2: cx, y2: height - 10, stroke: "#999", "stroke-width": 1, class: "ladder-lifeline" }));
  }
  const start = rows.length ? rows[0].time : 0;
  rows.forEach((row, index) => {
    const y = TOP + index * ROW_HEIGHT + ROW_HEIGHT / 2;
    svg.append(svgNode("text", { x: 6, y: y + 4, fill: "#555", class: "ladder-time" }, `+${(row.time - start).toFixed(3)} s`));
    if (row.kind === "rtp") svg.append(rtpBand(row.media, x, y));
    else svg.append(arrow(row, x, y));
  });
  return svg;
}

function arrow(row, x, y) {
  const message = row.message;
  const x1 = x(hostport(message.src_ip, message.src_port));
  const x2 = x(hostport(message.dst_ip, message.dst_port));
  const direction = x2 >= x1 ? 1 : -1;
  const stroke = COLOURS[kind(message)];
  const group = svgNode("g", {
    class: `ladder-arrow ladder-${kind(message)}${row.retransmission ? " ladder-retransmission" : ""}`,
    "data-frame": message.frame, cursor: "pointer", tabindex: 0, role: "button",
    "aria-label": `${label(message)}, frame ${message.frame}${row.retransmission ? ", retransmission" : ""}`,
  });
  group.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    group.dispatchEvent(new MouseEvent("click", { bubbles: true }));
  });
  group.append(svgNode("title", {}, `frame ${message.frame}${row.retransmission ? " (retransmission)" : ""}`));
  group.append(svgNode("line", {
    x1, y1: y, x2: x2 - direction * 6, y2: y, stroke, "stroke-width": 2,
    ...(row.retransmission ? { "stroke-dasharray": "5 4" } : {}),
  }));
  group.append(svgNode("path", { d: `M ${x2} ${y} l ${-direction * 8} -5 v 10 z`, fill: stroke }));
  const text = `${label(message)}${row.retransmission ? " ⟳" : ""}`;
  group.append(svgNode("text", { x: (x1 + x2) / 2, y: y - 5, "text-anchor": "middle", fill: stroke }, text));
  return group;
}

function rtpBand(media, x, y) {
  const x1 = x(media.src);
  const x2 = x(media.dst);
  const group = svgNode("g", { class: "ladder-rtp", "data-frame": media.first_frame });
  group.append(svgNode("rect", { x: Math.min(x1, x2), y: y - 9, width: Math.max(Math.abs(x2 - x1), 4), height: 18, fill: COLOURS.rtp, rx: 4 }));
  const text = `RTP ${media.codec ?? media.payload_types.join("/")} ${media.packets} pkts, lost ${media.lost}, jitter ${media.jitter_ms} ms`;
  group.append(svgNode("text", { x: (x1 + x2) / 2, y: y + 4, "text-anchor": "middle", fill: "#1f2937" }, `${x2 >= x1 ? "" : "◀ "}${text}${x2 >= x1 ? " ▶" : ""}`));
  return group;
}

export function svgBlob(svg) {
  return new Blob([new XMLSerializer().serializeToString(svg)], { type: "image/svg+xml" });
}

// PNG through an <img> of the SVG drawn onto a canvas (no external resources needed).
export function pngBlob(svg) {
  const url = URL.createObjectURL(svgBlob(svg));
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Number(svg.getAttribute("width"));
      canvas.height = Number(svg.getAttribute("height"));
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
