"""The web page `reid serve` shows at ``/``: pick or drop a query photo, see the ranked hits, click
one for that identity's other appearances; the gallery's counts per camera. One self-contained
HTML file (inline CSS and script, no external CDN), talking to the JSON API."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reidkit search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
header { display: flex; gap: 2em; align-items: baseline; flex-wrap: wrap; }
#drop { border: 2px dashed #888; padding: 1.2em; width: 22em; text-align: center; cursor: pointer; }
#drop.over { background: #eef; }
#query img { max-height: 180px; margin-top: .5em; }
#hits, #timeline { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 1em; }
figure { margin: 0; width: 110px; font-size: 12px; text-align: center; cursor: pointer; }
figure img { height: 160px; max-width: 110px; object-fit: contain; background: #f4f4f4; }
figure.identity { outline: 2px solid #36c; }
#status { color: #a00; min-height: 1.2em; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; border-bottom: 1px solid #ddd; }
</style></head>
<body>
<header><h1>reidkit</h1><span id="stats">loading gallery...</span>
<label>API key <input id="key" type="password" size="14" placeholder="if reads need one"></label></header>
<div id="drop">Drop a photo of a person here, or click to pick one
<input id="file" type="file" accept="image/*" hidden><div id="query"></div></div>
<label>top <input id="topk" type="number" value="20" min="1" max="100" style="width:4em"></label>
<label>camera <select id="camera"><option value="">any</option></select></label>
<p id="status"></p>
<h2 id="hits-title" hidden>Hits</h2><div id="hits"></div>
<h2 id="timeline-title" hidden></h2><div id="timeline"></div>
<h2>Gallery</h2><table id="cameras"><tr><th>camera</th><th>items</th></tr></table>
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
    const table = $("cameras"), select = $("camera");
    for (const [cam, n] of Object.entries(s.cameras)) {
      const row = table.insertRow(); row.insertCell().textContent = cam; row.insertCell().textContent = n;
      const o = document.createElement("option"); o.value = o.textContent = cam; select.append(o);
    }
  } catch (e) { $("stats").textContent = "gallery: " + e.message; }
}
async function search(file) {
  say("searching...");
  $("query").innerHTML = "";
  const img = document.createElement("img"); img.src = URL.createObjectURL(file); $("query").append(img);
  const form = new FormData();
  form.append("image", file);
  form.append("top_k", $("topk").value);
  if ($("camera").value) form.append("cameras", $("camera").value);
  try {
    const body = await api("/v1/search", {method: "POST", body: form});
    $("hits").innerHTML = "";
    body.hits.forEach((h, i) => $("hits").append(card(h, i + 1)));
    $("hits-title").hidden = false;
    say(body.hits.length ? "" : "no items match");
  } catch (e) { say(e.message); }
}
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
$("file").onchange = () => $("file").files[0] && search($("file").files[0]);
$("drop").ondragover = (e) => { e.preventDefault(); $("drop").classList.add("over"); };
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => { e.preventDefault(); $("drop").classList.remove("over");
  if (e.dataTransfer.files[0]) search(e.dataTransfer.files[0]); };
loadStats();
</script></body></html>
"""
