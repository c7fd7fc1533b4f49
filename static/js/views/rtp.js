// RTP streams tab: one row per stream of the report's calls, like Wireshark's
// RTP Streams; opening one measures it again in the worker (the report keeps
// no per-packet data) and plots delta, jitter and skew over time with its DTMF
// and sequence errors marked, and plays its G.711 voice, or both directions
// of its call, with Web Audio.

import { activatable, dataTable, el, isoTime, labelled, TIME_OUT_OF_RANGE } from "./dom.js";

const COLUMNS = ["Stream", "SSRC", "Codec", "Packets", "Lost", "Sequence errors", "Max delta", "Jitter mean / max",
  "Call"];
const SVG_NS = "http://www.w3.org/2000/svg"; // a namespace name createElementNS needs, never fetched
// The plot: three panels over one time axis.
const PLOTS = [
  { key: "delta_ms", name: "Delta", className: "rtp-line-delta" },
  { key: "jitter_ms", name: "Jitter", className: "rtp-line-jitter" },
  { key: "skew_ms", name: "Skew", className: "rtp-line-skew" },
];
const PANEL_HEIGHT = 96;
const PANEL_GAP = 26;
const PLOT_LEFT = 58;
const PLOT_RIGHT = 12;
const PLOT_TOP = 22; // room for the DTMF labels
const AXIS_HEIGHT = 34;
// What the player offers for a stream whose call has media both ways.
const MODES = { stream: "this stream", stereo: "both directions, stereo (caller left)", mixed: "both directions, mixed" };

// "src dst ssrc" names a stream; the URL form joins the three with commas (none of them holds one).
const keyOf = (media) => `${media.src},${media.dst},${media.ssrc}`;
const streamOf = (media) => ({ src: media.src, dst: media.dst, ssrc: media.ssrc });

// Each stream once, with the calls that own it (several dialogs may: a B2BUA's legs).
export function streamRows(report) {
  const rows = new Map();
  for (const call of report.calls) {
    for (const media of call.media ?? []) {
      const key = keyOf(media);
      if (!rows.has(key)) rows.set(key, { key, media, calls: [] });
      rows.get(key).calls.push(call);
    }
  }
  return [...rows.values()].sort((a, b) => a.media.first_frame - b.media.first_frame);
}

const fixed = (value, digits = 3) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
const msText = (value) => (value === null || value === undefined ? "–" : `${fixed(value)} ms`);

function codecText(media) {
  const types = media.payload_types.join(", ");
  return media.codec ? `${media.codec} (${types})` : types;
}

function callText(call) {
  return `${call.from_uri ?? call.caller} → ${call.to_uri ?? call.callee}`;
}

function clock(seconds) {
  const iso = isoTime(seconds);
  return iso === null ? TIME_OUT_OF_RANGE : iso.slice(11, 23);
}

// Each panel's state, so select() (URL routing) can drive a drawn tab.
const tabs = new WeakMap();

export function render(report, container, api) {
  const rows = streamRows(report);
  if (!rows.length) {
    container.append(el("p", { className: "empty" }, "No RTP streams in this capture's calls."));
    return;
  }
  const state = { report, api, rows, measured: new Map(), pending: new Map(), player: null, selected: null };
  const detail = el("section", { className: "rtp-detail", "aria-live": "polite" });
  state.detail = detail;
  state.tableRows = new Map(rows.map((row) => [row.key, streamRow(state, row)]));
  const frameInput = el("input", { type: "number", min: "1", step: "1", className: "rtp-frame-input",
    inputMode: "numeric" });
  const frameForm = el("form", { className: "rtp-frame-form" }, labelled("RTP frame", frameInput), " ",
    el("button", { type: "submit" }, "Show its stream"));
  frameForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (frameInput.value) showFrame(state, Number(frameInput.value));
  });
  container.append(
    el("h3", { className: "rtp-heading" }, `RTP streams (${rows.length})`),
    el("p", { className: "rtp-note" },
      "Open a stream to measure it packet by packet and to play it: the capture is read again, on this computer. "
      + "Jitter is RFC 3550's interarrival jitter; max delta leaves out the pause before a marker packet "
      + "(a new talkspurt), as Wireshark does."),
    frameForm,
    dataTable("rtp-table", COLUMNS, [...state.tableRows.values()]),
    detail,
  );
  tabs.set(container, state);
}

function streamRow(state, row) {
  const { media, calls } = row;
  const tr = el("tr", { className: "rtp-row", "data-stream": row.key },
    el("td", { className: "rtp-flow" }, `${media.src} → ${media.dst}`),
    el("td", {}, media.ssrc),
    el("td", {}, codecText(media)),
    el("td", {}, String(media.packets)),
    el("td", {}, media.expected ? `${media.lost} (${((100 * media.lost) / media.expected).toFixed(1)} %)` : String(media.lost)),
    el("td", { className: "rtp-seq-errors", title: "counted when the stream is opened" }, "–"),
    el("td", {}, msText(media.max_gap_ms)),
    el("td", {}, `${fixed(media.jitter_ms)} / ${fixed(media.max_jitter_ms)} ms`),
    el("td", { className: "rtp-call" }, calls.map(callText).join("; ")));
  return activatable(tr, () => openStream(state, row.key));
}

// Measures these streams in the worker once; later askers share the answer.
function measure(state, keys) {
  const missing = keys.filter((key) => !state.measured.has(key) && !state.pending.has(key));
  if (missing.length) {
    const rows = missing.map((key) => state.rows.find((row) => row.key === key));
    const job = state.api.rtpStream(rows.map((row) => streamOf(row.media)), {
      onProgress: ({ done, total }) => state.onProgress?.(done, total),
    });
    missing.forEach((key, index) => state.pending.set(key, job.then((results) => results[index])));
    // A failed reading is not remembered: opening the stream again tries again.
    job.catch(() => missing.forEach((key) => state.pending.delete(key)));
  }
  return Promise.all(keys.map(async (key) => {
    if (state.measured.has(key)) return state.measured.get(key);
    const result = await state.pending.get(key);
    state.pending.delete(key);
    state.measured.set(key, result);
    state.tableRows.get(key).querySelector(".rtp-seq-errors").textContent = String(result.summary.seq_errors);
    return result;
  }));
}

function openStream(state, key) {
  const row = state.rows.find((candidate) => candidate.key === key);
  if (!row) return null;
  for (const [other, tr] of state.tableRows) tr.classList.toggle("rtp-selected", other === key);
  state.player?.stop();
  state.player = null;
  state.selected = key;
  const { media } = row;
  const progress = el("progress", { max: "1", value: "0", className: "rtp-progress" });
  const status = el("p", { className: "rtp-status", role: "status" }, "Reading the capture again for this stream… ",
    progress);
  progress.setAttribute("aria-label", "Measuring the stream");
  state.onProgress = (done, total) => {
    progress.max = total || 1;
    progress.value = done;
  };
  state.detail.replaceChildren(el("h3", {}, `Stream ${media.src} → ${media.dst} (SSRC ${media.ssrc})`), status);
  measure(state, [key]).then(
    ([result]) => state.selected === key && showMeasured(state, row, result),
    (error) => {
      if (state.selected !== key) return;
      status.className = "rtp-status error";
      status.textContent = `This stream could not be measured: ${error.message}`;
    },
  );
  return state.detail;
}

function showMeasured(state, row, result) {
  const { summary } = result;
  const status = state.detail.querySelector(".rtp-status");
  const facts = [
    ["Packets", `${summary.packets} of ${summary.expected} expected`],
    ["Lost", String(summary.lost)],
    ["Sequence errors", String(summary.seq_errors)],
    ["Delta min / mean / max", `${fixed(summary.min_delta_ms)} / ${fixed(summary.mean_delta_ms)} / ${fixed(summary.max_delta_ms)} ms`],
    ["Jitter mean / max", `${fixed(summary.mean_jitter_ms)} / ${fixed(summary.max_jitter_ms)} ms`],
    ["Max skew", msText(summary.max_skew_ms)],
    ["Clock rate", summary.clock_rate ? `${summary.clock_rate} Hz` : "–"],
    ["First / last packet", `frame ${row.media.first_frame} at ${clock(summary.first_time)}, frame ${row.media.last_frame} at ${clock(summary.last_time)} (UTC)`],
  ];
  const dtmf = dtmfOf(state.report, row);
  const plot = el("div", { className: "rtp-plot" });
  state.detail.replaceChildren(
    state.detail.firstChild,
    el("dl", { className: "rtp-facts" }, facts.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)])),
    ...(summary.series_truncated ? [el("p", { className: "rtp-note" }, "The plot shows the stream's first 100,000 packets.")] : []),
    plot,
    player(state, row, result),
  );
  status?.remove();
  const draw = () => drawPlot(plot, state, row, result.series, dtmf);
  draw();
  // The plot is drawn to the width it has: again when that changes (a rotated phone).
  let width = plot.clientWidth;
  new ResizeObserver(() => {
    if (plot.isConnected && plot.clientWidth !== width && plot.clientWidth > 0) {
      width = plot.clientWidth;
      draw();
    }
  }).observe(plot);
}

function dtmfOf(report, row) {
  const digits = row.calls.flatMap((call) => call.dtmf ?? []);
  return digits.filter((digit) => digit.source === "rfc4733" && digit.src === row.media.src
    && digit.dst === row.media.dst && digit.ssrc === row.media.ssrc);
}

function svgNode(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

// A round step for about `count` ticks over `span`: 1, 2 or 5 times a power of ten.
function tickStep(span, count) {
  const raw = span / count || 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw);
}

// A pause this long (no packets: silence suppression, hold) breaks the lines:
// a line across it would show values nobody measured.
const GAP_S = 0.5;

// An SVG path through the values, broken where a packet has none (skew on
// telephone events) and across pauses: at most two points per pixel column (its lowest and
// highest value), so a long stream's 100,000 packets draw as fast as a short
// one's, peaks kept.
function linePath(times, values, x, y) {
  const commands = [];
  let column = null;
  let low = 0;
  let high = 0;
  let move = true;
  const flush = () => {
    if (column === null) return;
    commands.push(`${move ? "M" : "L"}${column},${y(low).toFixed(1)}`);
    if (high !== low) commands.push(`L${column},${y(high).toFixed(1)}`);
    move = false;
    column = null;
  };
  times.forEach((time, index) => {
    const value = values[index];
    if (index > 0 && time - times[index - 1] > GAP_S) {
      flush();
      move = true;
    }
    if (value === null) {
      flush();
      move = true;
      return;
    }
    const at = Math.round(x(time));
    if (at !== column) {
      flush();
      column = at;
      low = high = value;
    } else {
      low = Math.min(low, value);
      high = Math.max(high, value);
    }
  });
  flush();
  return commands.join(" ");
}

function drawPlot(container, state, row, series, dtmf) {
  const width = Math.max(300, container.clientWidth || 720);
  const height = PLOT_TOP + PLOTS.length * (PANEL_HEIGHT + PANEL_GAP) - PANEL_GAP + AXIS_HEIGHT;
  const origin = state.report.capture.first_time ?? series.time[0];
  const times = series.time.map((time) => time - origin);
  const start = times[0] ?? 0;
  const end = Math.max(times[times.length - 1] ?? 1, start + 0.001);
  const x = (t) => PLOT_LEFT + ((t - start) / (end - start)) * (width - PLOT_LEFT - PLOT_RIGHT);
  const errors = series.seq_error.reduce((count, error) => count + error, 0);
  const svg = svgNode("svg", {
    class: "rtp-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Delta, jitter and skew of ${row.media.src} → ${row.media.dst} over ${(end - start).toFixed(1)} s: `
      + `${dtmf.length} DTMF events, ${errors} sequence errors marked`,
  });
  const bottom = PLOT_TOP + PLOTS.length * (PANEL_HEIGHT + PANEL_GAP) - PANEL_GAP;
  PLOTS.forEach((plot, index) => {
    const top = PLOT_TOP + index * (PANEL_HEIGHT + PANEL_GAP);
    const values = series[plot.key].filter((value) => value !== null);
    let low = Math.min(0, extreme(values, "min") ?? 0);
    let high = Math.max(extreme(values, "max") ?? 0, low + 1);
    const step = tickStep(high - low, 3);
    low = Math.floor(low / step) * step;
    high = Math.ceil(high / step) * step;
    const y = (v) => top + PANEL_HEIGHT - ((v - low) / (high - low)) * PANEL_HEIGHT;
    svg.append(svgNode("rect", { x: PLOT_LEFT, y: top, width: width - PLOT_LEFT - PLOT_RIGHT, height: PANEL_HEIGHT,
      class: "rtp-panel" }));
    for (let v = low; v <= high + step / 2; v += step) {
      svg.append(svgNode("line", { x1: PLOT_LEFT, x2: width - PLOT_RIGHT, y1: y(v), y2: y(v), class: "rtp-grid" }));
      svg.append(svgNode("text", { x: PLOT_LEFT - 4, y: y(v) + 4, class: "rtp-tick", "text-anchor": "end" },
        String(Number(v.toFixed(3)))));
    }
    svg.append(svgNode("text", { x: PLOT_LEFT, y: top - 5, class: `rtp-panel-name ${plot.className}-name` },
      `${plot.name} (ms)`));
    svg.append(svgNode("path", { d: linePath(times, series[plot.key], x, y), class: `rtp-line ${plot.className}`,
      fill: "none" }));
  });
  // Sequence errors: a tick under the delta panel where each came.
  const deltaBottom = PLOT_TOP + PANEL_HEIGHT;
  times.forEach((time, index) => {
    if (!series.seq_error[index]) return;
    svg.append(svgNode("line", { x1: x(time), x2: x(time), y1: deltaBottom - 10, y2: deltaBottom, class: "rtp-seq-error" }));
  });
  for (const digit of dtmf) {
    const at = x(digit.time - origin);
    svg.append(svgNode("line", { x1: at, x2: at, y1: PLOT_TOP - 4, y2: bottom, class: "rtp-dtmf" }));
    svg.append(svgNode("text", { x: at + 3, y: PLOT_TOP - 8, class: "rtp-dtmf-label" }, `DTMF ${digit.digit}`));
  }
  const step = tickStep(end - start, Math.max(2, Math.floor(width / 110)));
  for (let t = Math.ceil(start / step) * step; t <= end + 1e-9; t += step) {
    svg.append(svgNode("line", { x1: x(t), x2: x(t), y1: bottom, y2: bottom + 5, class: "rtp-axis" }));
    svg.append(svgNode("text", { x: x(t), y: bottom + 18, class: "rtp-tick", "text-anchor": "middle" },
      `${Number(t.toFixed(3))} s`));
  }
  svg.append(svgNode("text", { x: width - PLOT_RIGHT, y: height - 2, class: "rtp-tick", "text-anchor": "end" },
    "time since the capture's first packet"));
  const cursor = svgNode("line", { x1: 0, x2: 0, y1: PLOT_TOP, y2: bottom, class: "rtp-cursor", visibility: "hidden" });
  svg.append(cursor);
  // The player moves this line to the capture time it is playing.
  svg.showTime = (captureTime) => {
    const t = captureTime - origin;
    const visible = captureTime !== null && t >= start && t <= end;
    cursor.setAttribute("visibility", visible ? "visible" : "hidden");
    if (visible) {
      cursor.setAttribute("x1", x(t));
      cursor.setAttribute("x2", x(t));
    }
  };
  container.replaceChildren(svg);
}

// min/max of a long list (null when empty) without spreading 100,000 arguments into Math.min.
function extreme(values, which) {
  let result = null;
  for (const value of values) {
    if (result === null || (which === "min" ? value < result : value > result)) result = value;
  }
  return result;
}

// ---------------------------------------------------------------------------
// Playback
// ---------------------------------------------------------------------------

// The call's streams by direction (caller → callee left, callee → caller right).
function callStreams(state, row) {
  const call = row.calls[0];
  const byDirection = { caller_to_callee: [], callee_to_caller: [] };
  for (const media of call.media ?? []) byDirection[media.direction]?.push(keyOf(media));
  return byDirection;
}

function player(state, row, result) {
  const directions = callStreams(state, row);
  const both = directions.caller_to_callee.length && directions.callee_to_caller.length;
  const mode = el("select", { className: "rtp-play-mode" },
    Object.entries(MODES).filter(([name]) => name === "stream" || both)
      .map(([name, text]) => el("option", { value: name }, text)));
  const play = el("button", { type: "button", className: "rtp-play" }, "Play");
  const scrub = el("input", { type: "range", className: "rtp-scrub", min: "0", max: "0", step: "0.01", value: "0" });
  const time = el("span", { className: "rtp-time" }, "");
  const note = el("p", { className: "rtp-audio-note" });
  const box = el("div", { className: "rtp-player", "data-state": "idle" },
    el("h4", {}, "Playback"),
    el("div", { className: "rtp-player-controls" }, labelled("Play", mode), " ", play, " ",
      labelled("Position", scrub, "field rtp-scrub-field"), " ", time),
    note);
  const controller = new Player(state, box, { play, scrub, time, note });
  state.player = controller;
  const load = async () => {
    const keys = mode.value === "stream" ? [row.key] : [...directions.caller_to_callee, ...directions.callee_to_caller];
    note.textContent = mode.value === "stream" ? "" : "Reading the capture again for the call's other direction…";
    const results = await measure(state, keys);
    const left = mode.value === "stream" ? [result] : results.filter((_, i) => i < directions.caller_to_callee.length);
    const right = mode.value === "stream" ? [] : results.filter((_, i) => i >= directions.caller_to_callee.length);
    controller.load(left, right, mode.value, row);
  };
  mode.addEventListener("change", () => load().catch((error) => controller.fail(error)));
  controller.load([result], [], "stream", row);
  return box;
}

class Player {
  constructor(state, box, controls) {
    Object.assign(this, { state, box, ...controls });
    this.context = null;
    this.buffer = null;
    this.source = null;
    this.offset = 0; // seconds into the buffer where playback starts or stopped
    this.startedAt = 0;
    this.origin = 0; // capture time (epoch s) of the buffer's first sample
    this.play.addEventListener("click", () => (this.source ? this.pause() : this.start()));
    this.scrub.addEventListener("input", () => this.seek(Number(this.scrub.value)));
  }

  // left/right: measured streams placed on one time line at their first packet's arrival.
  load(left, right, mode, row) {
    this.stop();
    const playable = [...left, ...right].filter((stream) => stream.audio?.playable);
    const silent = [...left, ...right].filter((stream) => !stream.audio?.playable);
    this.note.textContent = silent.map((stream) => `${stream.src} → ${stream.dst}: ${stream.audio.reason}.`).join(" ");
    if (!playable.length) {
      this.buffer = null;
      this.play.disabled = this.scrub.disabled = true;
      this.box.dataset.state = "unplayable";
      this.time.textContent = "";
      return;
    }
    const rate = playable[0].audio.rate;
    this.origin = Math.min(...playable.map((stream) => stream.audio.start_time));
    const place = (stream) => Math.round((stream.audio.start_time - this.origin) * rate);
    const length = Math.max(...playable.map((stream) => place(stream) + stream.audio.samples));
    const channels = mode === "stream" ? [left] : mode === "stereo" ? [left, right] : [[...left, ...right]];
    this.channels = channels.map((streams) => {
      const samples = new Float32Array(length);
      for (const stream of streams.filter((s) => s.audio?.playable)) {
        const pcm = new Int16Array(stream.audio.pcm.buffer, stream.audio.pcm.byteOffset, stream.audio.samples);
        const at = place(stream);
        for (let i = 0; i < pcm.length; i++) samples[at + i] += pcm[i] / 32768;
      }
      if (mode === "mixed") for (let i = 0; i < length; i++) samples[i] = Math.max(-1, Math.min(1, samples[i]));
      return samples;
    });
    this.rate = rate;
    this.duration = length / rate;
    this.buffer = null; // built on the first Play: an AudioContext needs the user's gesture
    this.play.disabled = this.scrub.disabled = false;
    this.scrub.max = String(this.duration);
    this.seek(0);
    this.box.dataset.state = "ready";
    this.box.dataset.channels = String(this.channels.length);
    this.row = row;
    const cut = playable.some((stream) => stream.audio.cut);
    const codecs = [...new Set(playable.map((stream) => stream.audio.codec))].join(" and ");
    this.note.textContent = `${codecs}, ${this.duration.toFixed(2)} s; lost packets and pauses play as silence.`
      + (cut ? " Only the first 20 minutes are played." : "") + (this.note.textContent ? ` ${this.note.textContent}` : "");
  }

  fail(error) {
    this.note.textContent = `The call's audio could not be read: ${error.message}`;
  }

  start() {
    if (!this.channels) return;
    if (!this.context) this.context = new AudioContext();
    if (!this.buffer) {
      this.buffer = this.context.createBuffer(this.channels.length, this.channels[0].length, this.rate);
      this.channels.forEach((samples, index) => this.buffer.copyToChannel(samples, index));
    }
    if (this.offset >= this.duration) this.offset = 0;
    const source = this.context.createBufferSource();
    source.buffer = this.buffer;
    source.connect(this.context.destination);
    source.onended = () => {
      if (this.source !== source) return;
      this.source = null;
      this.offset = this.duration;
      this.showPosition();
      this.play.textContent = "Play";
      this.box.dataset.state = "ended";
    };
    this.context.resume();
    source.start(0, this.offset);
    this.source = source;
    this.startedAt = this.context.currentTime - this.offset;
    this.play.textContent = "Pause";
    this.box.dataset.state = "playing";
    const tick = () => {
      if (this.source !== source) return;
      // Another tab shown, or another capture opened: the voice stops with its view.
      if (!this.box.isConnected) {
        this.pause();
        return;
      }
      this.offset = Math.min(this.duration, this.context.currentTime - this.startedAt);
      this.showPosition();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  pause() {
    if (!this.source) return;
    this.offset = Math.min(this.duration, this.context.currentTime - this.startedAt);
    this.halt();
    this.box.dataset.state = "paused";
    this.showPosition();
  }

  halt() {
    const source = this.source;
    this.source = null;
    source?.stop();
    this.play.textContent = "Play";
  }

  stop() {
    this.halt();
    this.channels = null;
  }

  seek(seconds) {
    const playing = Boolean(this.source);
    if (playing) this.halt();
    this.offset = Math.max(0, Math.min(this.duration ?? 0, seconds));
    this.showPosition();
    if (playing) this.start();
  }

  // The position as capture time: the plot's cursor, and the time from the
  // capture's first packet and from the call's start (the ladder's +0).
  showPosition() {
    const captureTime = this.origin + this.offset;
    this.scrub.value = String(this.offset);
    this.box.dataset.position = this.offset.toFixed(3);
    const { report } = this.state;
    const call = this.row?.calls[0];
    const callStart = call ? Math.min(call.start_time, ...call.media.map((media) => media.first_time)) : null;
    const fromCall = callStart === null ? "" : `, call +${(captureTime - callStart).toFixed(3)} s`;
    this.time.textContent = `${clock(captureTime)} UTC (capture +${(captureTime - report.capture.first_time).toFixed(3)} s${fromCall})`;
    this.scrub.setAttribute("aria-valuetext", this.time.textContent);
    this.box.closest(".rtp-detail")?.querySelector(".rtp-svg")?.showTime(captureTime);
  }
}

// ---------------------------------------------------------------------------
// Links into the tab (#rtp/stream/SRC,DST,SSRC and #rtp/frame/N)
// ---------------------------------------------------------------------------

function showFrame(state, frame) {
  const heading = el("h3", {}, `Frame ${frame}`);
  const status = el("p", { className: "rtp-status", role: "status" }, `Looking for the RTP stream of frame ${frame}…`);
  state.selected = `frame ${frame}`;
  state.player?.stop();
  state.detail.replaceChildren(heading, status);
  state.api.rtpFrame(frame).then((stream) => {
    if (state.selected !== `frame ${frame}`) return;
    const key = stream && keyOf(stream);
    if (key && state.tableRows.has(key)) {
      openStream(state, key);
      state.tableRows.get(key).focus();
    } else {
      status.textContent = stream
        ? `Frame ${frame} is RTP from ${stream.src} to ${stream.dst} (SSRC ${stream.ssrc}), a stream no call of this capture announced.`
        : `Frame ${frame} is not an RTP packet of this capture.`;
    }
  }, (error) => (status.textContent = `Frame ${frame} could not be looked up: ${error.message}`));
  return state.detail;
}

// For URL routing (#rtp/KIND/VALUE): kind "stream" (value "src,dst,ssrc") or
// "frame" (an RTP frame number, resolved by the worker). Returns the element
// now showing the selection: the stream's detail, which fills in as the
// worker answers; null when the tab has nothing to show for it.
export function select(panel, kind, value, api) {
  const state = tabs.get(panel);
  if (!state) return null;
  if (kind === "stream") return state.tableRows.has(value) ? openStream(state, value) : null;
  if (kind === "frame" && /^\d+$/.test(String(value))) return showFrame(state, Number(value));
  return null;
}
