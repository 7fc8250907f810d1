// vidlake search page: plain JS, no build step. Every URL is relative to <base href> (the app's mount path).
"use strict";

const $ = (sel) => document.querySelector(sel);
const COLORS = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#5ac8fa"];
let apiKey = localStorage.getItem("vidlake-api-key") || "";
let current = null; // {media (a video's or an image set's detail), path ("videos/ID" or "sets/ID"), events, hit}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function fmt(t) {
  if (t === null || t === undefined) return "";
  const m = Math.floor(t / 60), s = (t - m * 60).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

async function api(path, asBlob = false) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = apiKey ? { "X-API-Key": apiKey } : {};
    const resp = await fetch(path, { headers });
    if (resp.status === 401 && attempt === 0) {
      apiKey = prompt("This vidlake service needs an API key:") || "";
      localStorage.setItem("vidlake-api-key", apiKey);
      continue;
    }
    if (!resp.ok) {
      let body = {};
      try { body = await resp.json(); } catch (e) { body = { error: resp.statusText }; }
      const err = new Error(body.error || `HTTP ${resp.status}`);
      err.body = body; err.status = resp.status;
      throw err;
    }
    return asBlob ? resp.blob() : resp.json();
  }
}

function showError(err) {
  const box = $("#error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.replaceChildren(el("strong", {}, err.message));
  for (const d of (err.body && err.body.detail) || []) box.append(el("div", {}, d));
  if (err.body && err.body.run) box.append(el("div", {}, "Run: ", el("code", {}, err.body.run)));
}

async function imageUrl(path) {
  if (!apiKey) return path; // plain <img src>, cached by the browser
  return URL.createObjectURL(await api(path, true));
}

function highlighted(text, spans) {
  // spans count Unicode code points (the server's string offsets); JavaScript strings index UTF-16
  // units, where an emoji takes two: slice the code points
  const chars = Array.from(text);
  const part = (a, b) => chars.slice(a, b).join("");
  const frag = document.createDocumentFragment();
  let pos = 0;
  for (const [s, e] of spans) {
    frag.append(part(pos, s), el("mark", {}, part(s, e)));
    pos = e;
  }
  frag.append(part(pos));
  return frag;
}

function basename(uri) { return (uri || "").split("/").pop(); }

// a wall-clock time as the API gives it ("2026-06-01T09:00:02"): "2026-06-01 09:00:02", or the clock alone
function clock(iso, timeOnly = false) {
  if (!iso) return "";
  const text = iso.replace("T", " ").slice(0, 19);
  return timeOnly ? text.slice(11) : text;
}

// the image of a set whose time is nearest t (the first of equal ones), as the server picks it
function nearestImage(images, t) {
  return images.reduce((best, im) => (Math.abs(im.t - t) < Math.abs(best.t - t) ? im : best), images[0]);
}

const STRIP_ALL = 5; // a set this small shows all its images, those outside the hit dimmed

function setStrip(hit) {
  const images = hit.image_set.images;
  let shown = images.length <= STRIP_ALL ? images : images.filter((im) => im.in_hit).slice(0, STRIP_ALL);
  if (!shown.length) shown = [nearestImage(images, (hit.start_s + hit.end_s) / 2)];
  const figures = shown.map((im) => {
    const img = el("img", { alt: `image at ${clock(im.captured_local)}`, loading: "lazy" });
    imageUrl(`${im.thumbnail_url}&w=160`).then((u) => { img.src = u; });
    return el("figure", { class: im.in_hit ? "in-hit" : "out", "data-image": im.image_id, title: im.uri },
      img, el("figcaption", {}, clock(im.captured_local, true)));
  });
  return el("div", { class: "strip" }, ...figures);
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const params = new URLSearchParams();
  for (const name of ["q", "mode", "k", "video_id", "task", "t_from", "t_to"]) {
    const v = $("#" + name).value.trim();
    if (v !== "") params.set(name, v);
  }
  history.replaceState(null, "", "?" + params.toString());
  showError(null);
  $("#summary").textContent = "searching…";
  try {
    const res = await api("search?" + params.toString());
    renderHits(res);
  } catch (err) {
    $("#summary").textContent = "";
    $("#hits").replaceChildren();
    showError(err);
  }
}

function renderHits(res) {
  const stale = res.index.stale ? " (index is stale)" : "";
  $("#summary").textContent = `${res.hits.length} hits for “${res.query}” · ${res.mode} · ${res.took_ms.toFixed(0)} ms${stale}`;
  const cards = res.hits.map((hit, i) => {
    const set = hit.media === "set" ? hit.image_set : null;
    let picture;
    if (set) {
      picture = setStrip(hit);
    } else {
      picture = el("img", { alt: `frame at ${fmt((hit.start_s + hit.end_s) / 2)}`, loading: "lazy" });
      imageUrl(hit.thumbnail_url).then((u) => { picture.src = u; });
    }
    const nTracks = hit.evidence.tracks.length, nPoints = hit.evidence.points.length;
    const onImages = set ? ` on ${new Set(hit.evidence.points.map((p) => p.image_id)).size} images` : "";
    const evidence = nTracks || nPoints
      ? el("div", { class: "ev" }, [nPoints ? `${nPoints} points${onImages}` : "", nTracks ? `tracks ${hit.evidence.tracks.map((t) => `#${t.object_id} ${t.label || ""}`).join(", ")}` : ""].filter(Boolean).join(" · "))
      : "";
    const inHit = set ? set.images.filter((im) => im.in_hit) : [];
    const range = set
      ? el("span", { class: "range" }, inHit.length ? clock(inHit[0].captured_local) : clock(set.start_local))
      : el("span", { class: "range" }, `${fmt(hit.start_s)}–${fmt(hit.end_s)}`);
    const card = el("article", { class: "hit", tabIndex: 0, "data-video": hit.video_id, "data-media": hit.media,
      "data-rank": i + 1 },
      picture,
      el("div", { class: "body" },
        set ? el("div", { class: "media" }, `image set · ${set.kind}${set.label ? " " + set.label : ""} · `
          + `${inHit.length} of ${set.images.length} images`) : "",
        el("div", { class: "meta" }, range,
          el("span", { title: hit.uri || "" }, basename(hit.uri)), el("span", {}, hit.source)),
        el("p", { class: "text" }, highlighted(hit.text, hit.spans)),
        evidence));
    card.addEventListener("click", () => openTimeline(hit, card));
    card.addEventListener("keydown", (e) => { if (e.key === "Enter") openTimeline(hit, card); });
    return card;
  });
  $("#hits").replaceChildren(...cards);
}

async function openTimeline(hit, card) {
  document.querySelectorAll(".hit.active").forEach((c) => c.classList.remove("active"));
  if (card) card.classList.add("active");
  showError(null);
  try {
    const path = `${hit.media === "set" ? "sets" : "videos"}/${hit.video_id}`;
    const [media, tl] = await Promise.all([api(path), api(`${path}/timeline?limit=2000`)]);
    current = { media, path, events: tl.events, hit };
    $("#timeline").hidden = false;
    $("#tl-title").textContent = hit.media === "set"
      ? `image set · ${media.kind} · ${media.images.length} images · ${clock(media.start_local)} · ${media.folder || ""}`
      : `${basename(media.uri)} · ${fmt(media.duration_s)} · ${media.width}×${media.height}`;
    const items = tl.events.map((e) => {
      const inHit = e.t <= hit.end_s && (e.end ?? e.t) >= hit.start_s;
      const text = e.text || `${e.label || ""}${e.object_id !== null && e.object_id !== undefined ? " #" + e.object_id : ""}`;
      const li = el("li", { class: inHit ? "in-hit" : "", "data-kind": e.kind, "data-t": e.t },
        el("span", { class: "t" }, e.end !== undefined && e.end !== null ? `${fmt(e.t)}–${fmt(e.end)}` : fmt(e.t)),
        el("span", { class: "kind" }, e.kind), text);
      li.addEventListener("click", () => drawFrame(e.end !== undefined && e.end !== null ? (e.t + e.end) / 2 : e.t, e.image_id));
      return li;
    });
    $("#events").replaceChildren(...items);
    const first = document.querySelector("#events li.in-hit");
    if (first) first.scrollIntoView({ block: "nearest" });
    await drawFrame((hit.start_s + hit.end_s) / 2);
  } catch (err) {
    showError(err);
  }
}

function marksNear(t) {
  const tol = Math.max(0.6, current.media.fps ? 1 / current.media.fps : 0);
  const best = new Map();
  for (const e of current.events) {
    if ((e.kind !== "points" && e.kind !== "tracks") || Math.abs(e.t - t) > tol) continue;
    const key = `${e.kind}/${e.task_key}/${e.object_id}`;
    if (!best.has(key) || Math.abs(e.t - t) < Math.abs(best.get(key).t - t)) best.set(key, e);
  }
  return [...best.values()];
}

async function drawFrame(t, imageId) {
  const { media, path } = current;
  t = Math.min(Math.max(0, t), media.duration_s || t);
  // an image set shows the image of the event (or the one nearest t), with the points and boxes on that
  // image (its own pixels)
  const image = media.images
    ? media.images.find((im) => im.image_id === imageId) || nearestImage(media.images, t) : null;
  const canvas = $("#frame");
  const img = new Image();
  img.src = await imageUrl(image ? `${path}/thumbnail?image=${image.image_id}&w=640`
    : `${path}/thumbnail?t=${t.toFixed(3)}&w=640`);
  await img.decode();
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const turned = Math.abs(media.rotation || 0) % 180 === 90;
  const [width, height] = image ? [image.width, image.height] : turned ? [media.height, media.width] : [media.width, media.height];
  const sx = canvas.width / (width || canvas.width);
  const sy = canvas.height / (height || canvas.height);
  const marks = image
    ? current.events.filter((e) => (e.kind === "points" || e.kind === "tracks") && e.image_id === image.image_id)
    : marksNear(t);
  if (image) t = image.t;
  ctx.lineWidth = 2;
  ctx.font = "bold 14px system-ui, sans-serif";
  for (const m of marks) {
    const color = COLORS[(m.object_id || 0) % COLORS.length];
    ctx.strokeStyle = color; ctx.fillStyle = color;
    if (m.box) ctx.strokeRect(m.box[0] * sx, m.box[1] * sy, (m.box[2] - m.box[0]) * sx, (m.box[3] - m.box[1]) * sy);
    const x = m.x_norm !== null && m.x_norm !== undefined ? m.x_norm * canvas.width : m.x * sx;
    const y = m.y_norm !== null && m.y_norm !== undefined ? m.y_norm * canvas.height : m.y * sy;
    ctx.beginPath(); ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.fill();
    ctx.fillText(`${m.label || ""} #${m.object_id ?? ""}`, x + 9, y - 9);
  }
  canvas.dataset.t = t.toFixed(3);
  canvas.dataset.marks = String(marks.length);
  canvas.dataset.image = image ? image.image_id : "";
  $("#frame-caption").textContent = image
    ? `image ${media.images.indexOf(image) + 1} of ${media.images.length} · ${clock(image.captured_local)} · ${marks.length} point/track marks`
    : `frame at ${fmt(t)} · ${marks.length} point/track marks`;
}

async function loadVideos() {
  try {
    const [videos, sets] = await Promise.all([api("videos?limit=1000"), api("sets?limit=1000")]);
    const select = $("#video_id");
    for (const v of videos.videos) select.append(el("option", { value: v.video_id }, basename(v.uri) || v.video_id.slice(0, 12)));
    if (sets.sets.length) {
      const group = el("optgroup", { label: "image sets" });
      for (const s of sets.sets) {
        group.append(el("option", { value: s.set_id }, `${s.label || basename(s.uri)} · ${s.kind} of ${s.images.length}`));
      }
      select.append(group);
    }
  } catch (err) { /* the search itself reports what is wrong */ }
}

async function loadStatus() {
  const status = $("#status");
  try {
    const h = await (await fetch("healthz")).json();
    status.textContent = h.index === "ready" ? "index ready" : `index ${h.index}: ${h.message || ""}`;
    status.classList.toggle("bad", h.index !== "ready");
  } catch (err) { status.textContent = "service unreachable"; status.classList.add("bad"); }
}

$("#search-form").addEventListener("submit", search);
$("#tl-close").addEventListener("click", () => { $("#timeline").hidden = true; });
const initial = new URLSearchParams(location.search);
for (const [k, v] of initial) { const input = document.getElementById(k); if (input) input.value = v; }
loadStatus();
loadVideos().then(() => { if (initial.get("q")) search(); });
