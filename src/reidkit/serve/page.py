"""The web page `reid serve` shows at ``/``: pick or drop a query photo, see the ranked hits, click
one for that identity's other appearances; drag a box on the photo to search one region of it.
``GALLERY_PAGE`` (at ``/gallery``) shows the gallery's counts per camera. Each is one
self-contained HTML file (inline CSS and script, no external CDN), talking to the JSON API."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reidkit search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
header { display: flex; gap: 2em; align-items: baseline; flex-wrap: wrap; }
#drop { border: 2px dashed #888; padding: 1.2em; width: 22em; text-align: center; cursor: pointer; }
#drop.over { background: #eef; }
#query { position: relative; display: inline-block; margin-top: .5em; }
#query img { max-height: 320px; max-width: 100%; display: block; cursor: crosshair; }
#region { position: absolute; border: 2px solid #e33; display: none; pointer-events: none; }
#hits, #timeline { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 1em; }
figure { margin: 0; width: 110px; font-size: 12px; text-align: center; cursor: pointer; }
figure img { height: 160px; max-width: 110px; object-fit: contain; background: #f4f4f4; }
figure.identity { outline: 2px solid #36c; }
#status { color: #a00; min-height: 1.2em; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; border-bottom: 1px solid #ddd; }
</style></head>
<body>
<header><h1>reidkit</h1><span id="stats">loading gallery...</span>
<label>API key <input id="key" type="password" size="14" placeholder="if reads need one"></label>
<a href="/gallery">gallery</a> <a href="/docs">API</a></header>
<div id="drop">Drop a photo of a person here, or click to pick one
<input id="file" type="file" accept="image/*" hidden></div>
<div id="query"></div>
<p id="hint" hidden>Drag a box around one person to search for that region only.
<button id="whole" type="button">whole photo</button></p>
<label>top <input id="topk" type="number" value="20" min="1" max="100" style="width:4em"></label>
<label>camera <select id="camera"><option value="">any</option></select></label>
<p id="status"></p>
<h2 id="hits-title" hidden>Hits</h2><div id="hits"></div>
<h2 id="timeline-title" hidden></h2><div id="timeline"></div>
<script>
const $ = (id) => document.getElementById(id);
const headers = () => ($("key").value ? {"X-API-Key": $("key").value} : {});
function say(text) { $("status").textContent = text || ""; }
async function api(path, options = {}) {
  const r = await fetch(path, {...options, headers: {...headers(), ...(options.headers || {})}});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}
async function thumb(url) {  // thumbnails need the key too when reads do
  const r = await fetch(url, {headers: headers()});
  return r.ok ? URL.createObjectURL(await r.blob()) : "";
}
function card(hit, rank) {
  const f = document.createElement("figure");
  if (hit.identity_id != null) f.className = "identity";
  const img = document.createElement("img");
  thumb(hit.thumbnail_url).then((src) => { img.src = src; });
  const cap = document.createElement("figcaption");
  const time = hit.timestamp != null ? ` ${hit.timestamp.toFixed(1)} s` : "";
  cap.textContent = `${rank ? "#" + rank + " " : ""}${hit.score != null ? hit.score.toFixed(3) : ""} `
    + `cam ${hit.camera ?? "?"}${time}` + (hit.identity_id != null ? ` id ${hit.identity_id}` : "");
  f.append(img, cap);
  f.dataset.id = hit.id;
  if (hit.identity_id != null) f.onclick = () => showIdentity(hit.identity_id);
  return f;
}
async function loadStats() {
  try {
    const s = await api("/v1/gallery/stats");
    $("stats").textContent = `${s.items} items, ${Object.keys(s.cameras).length} cameras, ${s.identities} identities`;
    for (const cam of Object.keys(s.cameras)) {
      const o = document.createElement("option"); o.value = o.textContent = cam; $("camera").append(o);
    }
  } catch (e) { $("stats").textContent = "gallery: " + e.message; }
}
let current = null, region = null;
function showQuery(file) {
  current = file; region = null;
  $("query").innerHTML = '<div id="region"></div>';
  const img = document.createElement("img"); img.id = "qimg"; img.src = URL.createObjectURL(file);
  img.draggable = false; $("query").prepend(img); $("hint").hidden = false;
  let start = null;
  const at = (e) => { const r = img.getBoundingClientRect();
    return [Math.min(Math.max(e.clientX - r.left, 0), r.width), Math.min(Math.max(e.clientY - r.top, 0), r.height)]; };
  const draw = (a, b) => { const box = $("region"); box.style.display = "block";
    box.style.left = Math.min(a[0], b[0]) + "px"; box.style.top = Math.min(a[1], b[1]) + "px";
    box.style.width = Math.abs(a[0] - b[0]) + "px"; box.style.height = Math.abs(a[1] - b[1]) + "px"; };
  img.onmousedown = (e) => { start = at(e); e.preventDefault(); };
  img.onmousemove = (e) => { if (start) draw(start, at(e)); };
  window.onmouseup = (e) => {
    if (!start) return;
    const end = at(e), a = start; start = null;
    if (Math.abs(a[0] - end[0]) < 4 || Math.abs(a[1] - end[1]) < 4) return;  // a click, not a box
    const sx = img.naturalWidth / img.width, sy = img.naturalHeight / img.height;  // to the photo's pixels
    region = [Math.min(a[0], end[0]) * sx, Math.min(a[1], end[1]) * sy,
              Math.max(a[0], end[0]) * sx, Math.max(a[1], end[1]) * sy].map(Math.round).join(",");
    search();
  };
}
async function search() {
  say("searching...");
  const form = new FormData();
  form.append("image", current);
  form.append("top_k", $("topk").value);
  if (region) form.append("box", region);
  if ($("camera").value) form.append("cameras", $("camera").value);
  try {
    const body = await api("/v1/search", {method: "POST", body: form});
    $("hits").innerHTML = "";
    body.hits.forEach((h, i) => $("hits").append(card(h, i + 1)));
    $("hits-title").hidden = false;
    $("hits-title").textContent = region ? `Hits for the region ${region}` : "Hits";
    say(body.hits.length ? "" : "no items match");
  } catch (e) { say(e.message); }
}
function pick(file) { if (file) { showQuery(file); search(); } }
async function showIdentity(id) {
  try {
    const body = await api(`/v1/identities/${id}`);
    $("timeline-title").hidden = false;
    $("timeline-title").textContent = `identity ${id}: ${body.appearances.length} appearances in ${body.cameras.join(", ")}`;
    $("timeline").innerHTML = "";
    body.appearances.forEach((a) => $("timeline").append(card(a, 0)));
  } catch (e) { say(e.message); }
}
$("drop").onclick = () => $("file").click();
$("file").onchange = () => pick($("file").files[0]);
$("whole").onclick = () => { region = null; $("region").style.display = "none"; search(); };
$("drop").ondragover = (e) => { e.preventDefault(); $("drop").classList.add("over"); };
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => { e.preventDefault(); $("drop").classList.remove("over");
  pick(e.dataTransfer.files[0]); };
loadStats();
</script></body></html>
"""

GALLERY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reidkit gallery</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; } td, th { padding: 3px 12px; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; } .bar { background: #69c; height: 12px; }
#status { color: #a00; }
</style></head>
<body>
<h1>reidkit gallery</h1>
<p><a href="/">search</a> <a href="/docs">API</a>
<label>API key <input id="key" type="password" size="14" placeholder="if reads need one"></label>
<button id="load" type="button">reload</button></p>
<p id="status"></p>
<table id="facts"></table>
<h2>Items per camera</h2>
<table id="cameras"><tr><th>camera</th><th>items</th><th></th></tr></table>
<script>
const $ = (id) => document.getElementById(id);
async function load() {
  $("status").textContent = "";
  const r = await fetch("/v1/gallery/stats", {headers: $("key").value ? {"X-API-Key": $("key").value} : {}});
  const s = await r.json().catch(() => ({}));
  if (!r.ok) { $("status").textContent = s.detail || r.statusText; return; }
  const facts = $("facts"); facts.innerHTML = "";
  const ts = s.timestamps || [];
  const span = ts[0] != null ? `${ts[0].toFixed(1)} s to ${ts[1].toFixed(1)} s` : "";
  for (const [k, v] of [["items", s.items], ["cameras", Object.keys(s.cameras).length],
                        ["identities", s.identities], ["model", s.model], ["time", span]]) {
    if (v === undefined || v === null || v === "") continue;
    const row = facts.insertRow(); row.insertCell().textContent = k; row.insertCell().textContent = v;
  }
  const table = $("cameras");
  while (table.rows.length > 1) table.deleteRow(1);
  const most = Math.max(1, ...Object.values(s.cameras));
  for (const [cam, n] of Object.entries(s.cameras)) {
    const row = table.insertRow(); row.insertCell().textContent = cam;
    const c = row.insertCell(); c.textContent = n; c.className = "n";
    const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = (200 * n / most) + "px";
    row.insertCell().append(bar);
  }
}
$("load").onclick = load;
load();
</script></body></html>
"""
