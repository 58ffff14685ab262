// samstream's page: prompts on frames, tracking with progress, review, downloads.
// Talks to the HTTP API under /v1 (see /docs); masks arrive as COCO RLE and are drawn on a
// canvas above the frame, so a click's mask appears without reloading the frame.
"use strict";

const $ = (id) => document.getElementById(id);

const S = {
  sid: null,
  info: null,                 // SessionInfo
  frame: 0,
  objects: new Map(),         // obj_id -> {id, name, color: [r, g, b], visible}
  current: null,              // selected obj_id
  prompts: new Map(),         // "obj:frame" -> {points: [[x, y, label]], box: [x0, y0, x1, y1] | null}
  masks: new Map(),           // frame -> Map(obj_id -> {rle, area, score})
  decoded: new Map(),         // "obj:frame" -> Uint8Array (recent ones)
  undo: [],                   // {obj, frame, before, after}
  redo: [],
  trackedOnce: false,
  dirty: new Set(),           // frames whose prompts changed since the last tracking
  tracking: null,             // {controller} while a propagation streams
  playing: null,              // interval id
  proposals: null,            // segment-everything results on S.proposalsFrame
  proposalsFrame: null,
  problems: [],
  busy: 0,
  lastTrack: null,            // {status, done, total, fps}
};
window.samstream = S; // for the end-to-end tests and the curious

// ------------------------------------------------------------------ helpers
function setStatus(text, error = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response.status === 204 ? null : response.json();
}

function objectColor(id) { // the same colours as the exported MP4 (samstream.io.overlay.object_color)
  const h = (0.08 + 0.618033988749895 * id) % 1, s = 0.85, v = 1.0;
  const i = Math.floor(h * 6), f = h * 6 - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

const key = (obj, frame) => `${obj}:${frame}`;
const clonePrompt = (p) => ({ points: p.points.map((q) => q.slice()), box: p.box ? p.box.slice() : null });
const emptyPrompt = () => ({ points: [], box: null });
const isEmpty = (p) => p.points.length === 0 && !p.box;

// ------------------------------------------------------------------ sessions
async function openSession(request) {
  stopPlaying();
  if (S.sid) { const old = S.sid; S.sid = null; api("DELETE", `/v1/sessions/${old}`).catch(() => {}); }
  setStatus("opening…");
  try {
    S.info = await request();
  } catch (e) {
    setStatus(`could not open: ${e.message}`, true);
    return;
  }
  S.sid = S.info.session_id;
  Object.assign(S, { frame: 0, current: null, trackedOnce: false, proposals: null, problems: [] });
  for (const m of [S.objects, S.prompts, S.masks, S.decoded, S.dirty]) m.clear();
  S.undo.length = 0; S.redo.length = 0;
  const { width, height, num_frames, kind } = S.info;
  for (const id of ["frame-canvas", "mask-canvas", "marks-canvas"]) { $(id).width = width; $(id).height = height; }
  $("viewer").hidden = false;
  const video = kind === "video";
  $("playback").hidden = !video; $("tracking").hidden = !video; $("timeline").hidden = !video;
  $("slider").max = num_frames - 1;
  for (const a of document.querySelectorAll("#downloads a")) {
    a.href = `/v1/sessions/${S.sid}/export/${a.dataset.format}`;
    a.parentElement.hidden = a.dataset.format === "mp4" && !video;
  }
  newObject();
  setStatus(`${kind} ${width}×${height}` + (video ? `, ${num_frames} frames at ${S.info.fps} fps` : "") +
    " — click on an object");
  await showFrame(0);
}

$("example").onclick = () => openSession(() => api("POST", "/v1/sessions/example"));
$("file").onchange = (e) => {
  const file = e.target.files[0];
  if (!file) return;
  openSession(async () => {
    const response = await fetch("/v1/sessions", { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    const body = await response.json().catch(() => ({ detail: response.statusText }));
    if (!response.ok) throw new Error(body.detail);
    return body;
  });
  e.target.value = "";
};
window.addEventListener("pagehide", () => { if (S.sid) fetch(`/v1/sessions/${S.sid}`, { method: "DELETE", keepalive: true }); });

// ------------------------------------------------------------------ objects
function newObject() {
  const id = S.objects.size ? Math.max(...S.objects.keys()) + 1 : 1;
  S.objects.set(id, { id, name: `object ${id}`, color: objectColor(id), visible: true });
  S.current = id;
  renderObjects();
  return id;
}

async function deleteObject(id) {
  const known = [...S.prompts.keys()].some((k) => k.startsWith(`${id}:`));
  if (known) {
    try {
      const result = await api("DELETE", `/v1/sessions/${S.sid}/objects/${id}`);
      for (const frame of result.refreshed) storeFrame(frame.frame_index, frame.objects);
    } catch (e) { setStatus(e.message, true); return; }
  }
  for (const m of S.masks.values()) m.delete(id);
  for (const k of [...S.prompts.keys()]) if (k.startsWith(`${id}:`)) S.prompts.delete(k);
  S.undo = S.undo.filter((h) => h.obj !== id); S.redo = S.redo.filter((h) => h.obj !== id);
  S.objects.delete(id);
  if (S.current === id) S.current = S.objects.size ? [...S.objects.keys()][0] : null;
  if (!S.objects.size) newObject();
  renderObjects(); redraw(); drawTimeline();
}

function renderObjects() {
  const list = $("objects");
  list.innerHTML = "";
  for (const o of S.objects.values()) {
    const li = document.createElement("li");
    li.dataset.obj = o.id;
    li.classList.toggle("selected", o.id === S.current);
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = `rgb(${o.color.join(",")})`;
    const name = document.createElement("input");
    name.type = "text"; name.value = o.name; name.setAttribute("aria-label", "name");
    name.oninput = () => { o.name = name.value; };
    if (o.label) name.title = `found by text: “${o.label}”, score ${o.score.toFixed(2)}`;
    const show = document.createElement("input");
    show.type = "checkbox"; show.checked = o.visible; show.title = "show / hide (H)";
    show.onchange = () => { o.visible = show.checked; redraw(); drawTimeline(); };
    const del = document.createElement("button");
    del.className = "delete"; del.textContent = "×"; del.title = "delete (Delete)";
    del.onclick = (e) => { e.stopPropagation(); deleteObject(o.id); };
    li.append(swatch, name, show, del);
    li.onclick = () => { S.current = o.id; renderObjects(); redrawMarks(); };
    list.append(li);
  }
}
$("new-object").onclick = () => newObject();

// ------------------------------------------------------------------ frames and masks
const frameImages = new Map(); // frame -> HTMLImageElement (recent ones)

function loadFrame(frame) {
  let img = frameImages.get(frame);
  if (!img) {
    img = new Image();
    img.src = `/v1/sessions/${S.sid}/frames/${frame}`;
    img.ready = img.decode().catch(() => {});
    frameImages.set(frame, img);
    if (frameImages.size > 64) frameImages.delete(frameImages.keys().next().value);
  }
  return img;
}

async function showFrame(frame) {
  if (!S.info) return;
  frame = Math.max(0, Math.min(S.info.num_frames - 1, frame));
  S.frame = frame;
  $("slider").value = frame;
  $("frame-label").textContent = `frame ${frame} / ${S.info.num_frames - 1}`;
  const sid = S.sid;
  const img = loadFrame(frame);
  if (!S.masks.has(frame)) {
    api("GET", `/v1/sessions/${sid}/frames/${frame}/masks`).then((r) => {
      if (S.sid === sid && !S.masks.has(frame)) { storeFrame(frame, r.objects); if (S.frame === frame) redraw(); }
    }).catch(() => {});
  }
  await img.ready;
  if (S.frame !== frame || S.sid !== sid) return;
  $("frame-canvas").getContext("2d").drawImage(img, 0, 0);
  redraw();
  drawTimeline();
  if (S.info.kind === "video") loadFrame(Math.min(frame + 1, S.info.num_frames - 1)); // preload the next frame
}

function storeFrame(frame, objects) {
  const m = new Map();
  for (const o of objects) m.set(o.obj_id, { rle: o.mask, area: o.area, score: o.score });
  S.masks.set(frame, m);
  for (const k of [...S.decoded.keys()]) if (k.endsWith(`:${frame}`)) S.decoded.delete(k);
}

function decodedMask(obj, frame) {
  const k = key(obj, frame);
  let bits = S.decoded.get(k);
  if (!bits) {
    const m = S.masks.get(frame)?.get(obj);
    if (!m) return null;
    bits = SamRle.decode(m.rle);
    S.decoded.set(k, bits);
    if (S.decoded.size > 200) S.decoded.delete(S.decoded.keys().next().value);
  }
  return bits;
}

function redraw() { redrawMasks(); redrawMarks(); }

function redrawMasks() {
  if (!S.info) return;
  const { width: w, height: h } = S.info;
  const ctx = $("mask-canvas").getContext("2d");
  const image = ctx.createImageData(w, h);
  const px = image.data;
  const paint = (bits, [r, g, b], alpha) => {
    for (let i = 0; i < bits.length; i++) {
      if (bits[i]) { const j = 4 * i; px[j] = r; px[j + 1] = g; px[j + 2] = b; px[j + 3] = alpha; }
    }
  };
  if (S.proposals && S.proposalsFrame === S.frame) {
    S.proposals.forEach((p, i) => paint(p.bits, objectColor(i + 101), 110));
  }
  for (const o of S.objects.values()) {
    if (!o.visible) continue;
    const bits = decodedMask(o.id, S.frame);
    if (bits) paint(bits, o.color, 140);
  }
  ctx.putImageData(image, 0, 0);
}

function redrawMarks() {
  if (!S.info) return;
  const canvas = $("marks-canvas");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const scale = canvas.width / Math.max(1, canvas.clientWidth); // canvas pixels per screen pixel
  for (const o of S.objects.values()) {
    if (!o.visible) continue;
    const p = S.prompts.get(key(o.id, S.frame));
    if (!p) continue;
    if (p.box) {
      ctx.strokeStyle = `rgb(${o.color.join(",")})`; ctx.lineWidth = 2 * scale; ctx.setLineDash([6 * scale, 4 * scale]);
      ctx.strokeRect(p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]);
      ctx.setLineDash([]);
    }
    for (const [x, y, label] of p.points) {
      ctx.beginPath(); ctx.arc(x, y, 5 * scale, 0, 2 * Math.PI);
      ctx.fillStyle = label ? "#22c55e" : "#ef4444"; ctx.fill();
      ctx.lineWidth = 1.5 * scale; ctx.strokeStyle = o.id === S.current ? "#fff" : "#000"; ctx.stroke();
    }
  }
  if (drag && drag.moved) {
    ctx.strokeStyle = "#fff"; ctx.lineWidth = scale; ctx.setLineDash([4 * scale, 3 * scale]);
    ctx.strokeRect(drag.x0, drag.y0, drag.x1 - drag.x0, drag.y1 - drag.y0); ctx.setLineDash([]);
  }
}

$("slider").oninput = (e) => { stopPlaying(); showFrame(Number(e.target.value)); };

// ------------------------------------------------------------------ playback
function stopPlaying() {
  if (S.playing) { clearInterval(S.playing); S.playing = null; $("play").textContent = "▶"; }
}
function togglePlay() {
  if (!S.info || S.info.kind !== "video") return;
  if (S.playing) { stopPlaying(); return; }
  $("play").textContent = "❚❚";
  let busy = false;
  S.playing = setInterval(async () => {
    if (busy) return; // a frame still loading: skip a tick rather than queue
    if (S.frame >= S.info.num_frames - 1) { stopPlaying(); return; }
    busy = true; await showFrame(S.frame + 1); busy = false;
  }, 1000 / (S.info.fps || 25));
}
$("play").onclick = togglePlay;

// ------------------------------------------------------------------ prompts: click, right click, drag, point removal
let drag = null;

function canvasXY(e) {
  const c = $("marks-canvas");
  const r = c.getBoundingClientRect();
  return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height];
}

const marks = $("marks-canvas");
marks.addEventListener("contextmenu", (e) => e.preventDefault());
marks.addEventListener("mousedown", (e) => {
  if (!S.sid) return;
  const [x, y] = canvasXY(e);
  drag = { x0: x, y0: y, x1: x, y1: y, button: e.button, moved: false };
});
marks.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const [x, y] = canvasXY(e);
  drag.x1 = x; drag.y1 = y;
  const scale = marks.width / marks.clientWidth;
  if (Math.hypot(x - drag.x0, y - drag.y0) > 6 * scale) drag.moved = true;
  if (drag.moved) redrawMarks();
});
window.addEventListener("mouseup", (e) => {
  if (!drag) return;
  const d = drag; drag = null;
  if (e.target !== marks && !d.moved) return;
  if (S.proposals && S.proposalsFrame === S.frame && !d.moved) { adoptProposalAt(d.x0, d.y0); return; }
  if (S.current === null) newObject();
  const obj = S.current;
  const before = S.prompts.get(key(obj, S.frame)) || emptyPrompt();
  const after = clonePrompt(before);
  if (d.moved) {
    after.box = [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.max(d.x0, d.x1), Math.max(d.y0, d.y1)];
  } else {
    const scale = marks.width / marks.clientWidth;
    const hit = after.points.findIndex(([px, py]) => Math.hypot(px - d.x0, py - d.y0) <= 8 * scale);
    if (hit >= 0) after.points.splice(hit, 1); // clicking a point removes it
    else after.points.push([d.x0, d.y0, d.button === 2 ? 0 : 1]);
  }
  change(obj, S.frame, before, after, true);
});

async function change(obj, frame, before, after, record) {
  if (record) { S.undo.push({ obj, frame, before: clonePrompt(before), after: clonePrompt(after) }); S.redo.length = 0; }
  if (isEmpty(after)) S.prompts.delete(key(obj, frame)); else S.prompts.set(key(obj, frame), clonePrompt(after));
  S.dirty.add(frame);
  if (frame !== S.frame) await showFrame(frame); else redrawMarks();
  await sendPrompt(obj, frame, after);
}

async function sendPrompt(obj, frame, prompt) {
  if (S.tracking) await cancelTracking(true);
  S.busy += 1;
  try {
    let objects;
    if (isEmpty(prompt)) {
      const r = await api("POST", `/v1/sessions/${S.sid}/prompts/clear`, { frame_index: frame, obj_id: obj });
      objects = r.frame.objects;
      if (r.object_removed) for (const m of S.masks.values()) m.delete(obj);
    } else {
      const body = { frame_index: frame, obj_id: obj, coords: "pixels" };
      if (prompt.points.length) {
        body.points = prompt.points.map(([x, y]) => [x, y]);
        body.point_labels = prompt.points.map((p) => p[2]);
      }
      if (prompt.box) body.box = prompt.box;
      objects = (await api("POST", `/v1/sessions/${S.sid}/prompts`, body)).objects;
    }
    storeFrame(frame, objects);
    if (S.frame === frame) redrawMasks();
    drawTimeline();
    setStatus(`object ${obj}: ${objects.find((o) => o.obj_id === obj)?.area ?? 0} pixels on frame ${frame}`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    S.busy -= 1;
  }
}

function undo() {
  const h = S.undo.pop();
  if (!h || !S.objects.has(h.obj)) return;
  S.redo.push(h);
  change(h.obj, h.frame, h.after, h.before, false);
}
function redo() {
  const h = S.redo.pop();
  if (!h || !S.objects.has(h.obj)) return;
  S.undo.push(h);
  change(h.obj, h.frame, h.before, h.after, false);
}
$("undo").onclick = undo;
$("redo").onclick = redo;

// ------------------------------------------------------------------ tracking
function promptedFrames() {
  return [...S.prompts.keys()].map((k) => Number(k.split(":")[1]));
}

// What to re-track: the first time, everything from the first prompted frame in both
// directions; after that only the frames a changed prompt can affect (from the changed
// frame onwards, away from the first prompt).
function trackingPlan() {
  const choice = $("direction").value;
  if (choice !== "auto") return [{ propagation_direction: choice, start_frame_index: S.frame }];
  const frames = promptedFrames();
  if (!frames.length) return [];
  const anchor = Math.min(...frames);
  if (!S.trackedOnce) return [{ propagation_direction: "both", start_frame_index: anchor }];
  const changed = [...S.dirty];
  const plan = [];
  const later = changed.filter((f) => f >= anchor), earlier = changed.filter((f) => f < anchor);
  if (later.length) plan.push({ propagation_direction: "forward", start_frame_index: Math.min(...later) });
  if (earlier.length) plan.push({ propagation_direction: "backward", start_frame_index: Math.max(...earlier) });
  return plan;
}

async function track() {
  if (!S.sid || S.info.kind !== "video" || S.tracking) return;
  while (S.busy) await new Promise((r) => setTimeout(r, 20)); // let a prompt in flight land first
  const plan = trackingPlan();
  if (!plan.length) { setStatus(S.prompts.size ? "nothing changed since the last tracking" : "click on an object first"); return; }
  S.tracking = { cancelled: false };
  $("track").disabled = true; $("cancel").disabled = false;
  const changed = new Set(S.dirty);
  let status = "done";
  for (const request of plan) {
    status = await streamPropagation(request);
    if (status !== "done") break;
  }
  if (status === "done") { S.trackedOnce = true; for (const f of changed) S.dirty.delete(f); }
  S.tracking = null;
  $("track").disabled = false; $("cancel").disabled = true;
  refreshProblems();
}

async function streamPropagation(request) {
  let response;
  try {
    response = await fetch(`/v1/sessions/${S.sid}/propagate`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
    });
  } catch (e) { setStatus(e.message, true); return "error"; }
  if (!response.ok) {
    const body = await response.json().catch(() => ({ detail: response.statusText }));
    setStatus(body.detail, true);
    return "error";
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", status = "error";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl); buffer = buffer.slice(nl + 1);
      if (!line.trim()) continue;
      const ev = JSON.parse(line);
      $("progress").max = Math.max(1, ev.total); $("progress").value = ev.done;
      if (ev.type === "frame") {
        storeFrame(ev.frame_index, ev.objects);
        $("progress-text").textContent = `${ev.progress} · ${ev.fps.toFixed(1)} frames/s`;
        if (!S.playing) showFrame(ev.frame_index);
        drawTimeline();
      } else {
        status = ev.status;
        S.lastTrack = ev;
        const rate = ev.seconds > 0 ? ` · ${(ev.done / ev.seconds).toFixed(1)} frames/s` : "";
        $("progress-text").textContent = `${ev.status}: ${ev.progress}${rate}` + (ev.message ? ` (${ev.message})` : "");
      }
    }
  }
  return status;
}

async function cancelTracking(wait = false) {
  if (!S.tracking) return;
  S.tracking.cancelled = true;
  await api("POST", `/v1/sessions/${S.sid}/propagate/cancel`).catch(() => {});
  while (wait && S.tracking) await new Promise((r) => setTimeout(r, 20));
}
$("track").onclick = track;
$("cancel").onclick = () => cancelTracking();

// ------------------------------------------------------------------ timeline and problem frames
function drawTimeline() {
  if (!S.info || S.info.kind !== "video") return;
  const canvas = $("timeline");
  const objs = [...S.objects.values()].filter((o) => o.visible);
  const rowH = 8, n = S.info.num_frames;
  canvas.width = Math.max(200, canvas.clientWidth || 800);
  canvas.height = Math.max(rowH, objs.length * rowH + 4);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const fw = canvas.width / n;
  objs.forEach((o, row) => {
    for (let t = 0; t < n; t++) {
      const m = S.masks.get(t)?.get(o.id);
      if (!m) continue;
      ctx.fillStyle = m.area > 0 && m.score > 0 ? `rgb(${o.color.join(",")})` : "#444";
      ctx.fillRect(t * fw, row * rowH + 1, Math.max(1, fw), rowH - 2);
    }
  });
  ctx.fillStyle = "#ef4444";
  for (const p of S.problems) ctx.fillRect(p.frame_index * fw, canvas.height - 3, Math.max(2, fw), 3);
  ctx.fillStyle = "#fff";
  ctx.fillRect(S.frame * fw, 0, Math.max(1, fw / 4), canvas.height);
}
$("timeline").onclick = (e) => {
  const r = e.target.getBoundingClientRect();
  stopPlaying();
  showFrame(Math.floor((e.clientX - r.left) / r.width * S.info.num_frames)).then(drawTimeline);
};

async function refreshProblems() {
  if (!S.sid) return;
  try { S.problems = (await api("GET", `/v1/sessions/${S.sid}/problems`)).problems; } catch (_) { S.problems = []; }
  drawTimeline();
}

async function nextProblem() {
  await refreshProblems();
  const next = S.problems.find((p) => p.frame_index > S.frame);
  if (!next) { setStatus("no problem frame after this one"); return; }
  stopPlaying();
  const name = S.objects.get(next.obj_id)?.name ?? `object ${next.obj_id}`;
  setStatus(`frame ${next.frame_index}: ${name} ${next.kind.replace("_", " ")} (${next.detail})`);
  if (S.objects.has(next.obj_id)) { S.current = next.obj_id; renderObjects(); }
  await showFrame(next.frame_index);
  drawTimeline();
}
$("problem").onclick = nextProblem;

// ------------------------------------------------------------------ segment everything
async function everything() {
  if (!S.sid) return;
  setStatus("segmenting everything on this frame…");
  try {
    const r = await api("POST", `/v1/sessions/${S.sid}/everything`, { frame_index: S.frame });
    S.proposals = r.masks.map((m) => ({ ...m, bits: SamRle.decode(m.mask) }));
    S.proposalsFrame = r.frame_index;
    $("everything-text").textContent = `${r.masks.length} masks found: click one to add it as an object, Esc to dismiss.`;
    $("adopt-all").hidden = r.masks.length === 0;
    setStatus(`${r.masks.length} masks on frame ${r.frame_index}`);
    redrawMasks();
  } catch (e) { setStatus(e.message, true); }
}

async function adoptProposal(p) {
  const id = newObject();
  try {
    const r = await api("POST", `/v1/sessions/${S.sid}/masks`, { frame_index: S.proposalsFrame, obj_id: id, mask: p.mask });
    S.prompts.set(key(id, S.proposalsFrame), { points: [], box: null, mask: true });
    S.dirty.add(S.proposalsFrame);
    storeFrame(r.frame_index, r.objects);
  } catch (e) { setStatus(e.message, true); S.objects.delete(id); renderObjects(); }
}

async function adoptProposalAt(x, y) {
  const i = Math.round(y) * S.info.width + Math.round(x);
  const hits = S.proposals.filter((p) => p.bits[i]).sort((a, b) => a.area - b.area);
  if (!hits.length) return;
  await adoptProposal(hits[0]);
  S.proposals = S.proposals.filter((p) => p !== hits[0]);
  if (!S.proposals.length) dismissProposals();
  redraw(); drawTimeline();
}

async function adoptAll() {
  const all = S.proposals || [];
  dismissProposals();
  for (const p of all) {
    if (S.objects.size >= (serverInfo?.limits.max_objects ?? 64)) break;
    await adoptProposal(p);
  }
  redraw(); drawTimeline();
}

function dismissProposals() {
  S.proposals = null;
  $("everything-text").textContent = "";
  $("adopt-all").hidden = true;
  redrawMasks();
}
$("everything").onclick = everything;
$("adopt-all").onclick = adoptAll;

// ------------------------------------------------------------------ find by text
// The phrases go to the server's detector on the current frame; every detection comes back
// as a new object (its box as prompt, its phrase as name) with its mask.
async function addFromText() {
  if (!S.sid) { setStatus("open an image or a video first", true); return; }
  const input = $("text-prompt");
  const text = input.value.trim();
  if (!text.replace(/[.\s]/g, "")) { setStatus("type what to find, e.g. “cyclist. car.”", true); input.focus(); return; }
  if (S.tracking) await cancelTracking(true);
  const frame = S.frame;
  const first = S.objects.size ? Math.max(...S.objects.keys()) + 1 : 1;
  S.busy += 1;
  $("text-add").disabled = true;
  setStatus(`looking for “${text}” on frame ${frame}…`);
  try {
    const r = await api("POST", `/v1/sessions/${S.sid}/text`, { frame_index: frame, text, first_obj_id: first });
    for (const o of r.added) {
      S.objects.set(o.obj_id, { id: o.obj_id, name: o.label, color: objectColor(o.obj_id), visible: true, label: o.label, score: o.score });
      S.prompts.set(key(o.obj_id, frame), { points: [], box: o.box.slice() });
    }
    if (r.added.length) { S.current = r.added[0].obj_id; S.dirty.add(frame); }
    storeFrame(frame, r.objects);
    renderObjects();
    if (S.frame === frame) redraw();
    drawTimeline();
    const what = r.phrases.join(". ");
    if (!r.added.length) setStatus(`nothing found for “${what}” on frame ${frame} (${r.detector})`);
    else {
      const skipped = r.found - r.added.length;
      setStatus(`${r.added.length} object${r.added.length === 1 ? "" : "s"} found for “${what}” on frame ${frame}` +
        (skipped > 0 ? ` (${skipped} more not added: object limit or empty boxes)` : ""));
    }
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    S.busy -= 1;
    $("text-add").disabled = false;
  }
}
$("text-form").onsubmit = (e) => { e.preventDefault(); addFromText(); };

// ------------------------------------------------------------------ keyboard
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement && e.target.type === "text") return;
  const k = e.key;
  if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) { e.preventDefault(); e.shiftKey ? redo() : undo(); return; }
  if ((e.ctrlKey || e.metaKey) && (k === "y" || k === "Y")) { e.preventDefault(); redo(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey || !S.sid) return;
  if (k === " ") { e.preventDefault(); togglePlay(); }
  else if (k === "ArrowRight") { e.preventDefault(); stopPlaying(); showFrame(S.frame + (e.shiftKey ? 10 : 1)).then(drawTimeline); }
  else if (k === "ArrowLeft") { e.preventDefault(); stopPlaying(); showFrame(S.frame - (e.shiftKey ? 10 : 1)).then(drawTimeline); }
  else if (k === "n" || k === "N") newObject();
  else if (k >= "1" && k <= "9") { const id = [...S.objects.keys()][Number(k) - 1]; if (id !== undefined) { S.current = id; renderObjects(); redrawMarks(); } }
  else if ((k === "h" || k === "H") && S.current !== null) { const o = S.objects.get(S.current); o.visible = !o.visible; renderObjects(); redraw(); drawTimeline(); }
  else if ((k === "Delete" || k === "Backspace") && S.current !== null) deleteObject(S.current);
  else if (k === "t" || k === "T") track();
  else if (k === "Escape") { if (S.tracking) cancelTracking(); else dismissProposals(); }
  else if (k === "p" || k === "P") nextProblem();
  else if (k === "e" || k === "E") everything();
  else if (k === "f" || k === "F") { e.preventDefault(); $("text-prompt").focus(); }
});

let serverInfo = null;
api("GET", "/v1/info").then((info) => {
  serverInfo = info;
  $("text-hint").textContent = `detector: ${info.detector} — each object it finds on this frame is added`;
  $("model-info").textContent = `model: ${info.model}` + (info.model_note ? ` — ${info.model_note}` : "");
}).catch(() => {});
