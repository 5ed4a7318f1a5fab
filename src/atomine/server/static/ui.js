// Shared pieces of the catalog browser: DOM building, the JSON API client, formatting, cards.
// Every piece of catalog data reaches the page through textContent or attributes, never as
// markup, so titles and metadata written by anyone cannot inject script (the CSP forbids
// inline script too; this is the second wall).

export const $ = (id) => document.getElementById(id);

// Build an element: attrs are set as attributes (strings only), children are nodes or text.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined && v !== false) node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// ---------------------------------------------------------------- errors and fetch
export function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

export function clearError() {
  const box = $("error");
  box.textContent = "";
  box.hidden = true;
}

// GET JSON; on an HTTP error throw the server's one-line detail.
export async function api(url) {
  let resp;
  try {
    resp = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new Error("cannot reach the catalog server (" + e.message + ")");
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  if (!resp.ok) {
    let detail = body && body.detail;
    if (Array.isArray(detail)) {  // FastAPI validation errors: a list of {loc, msg}
      detail = detail.map((d) => (d.loc ? d.loc.join(".") + ": " : "") + d.msg).join("; ");
    }
    throw new Error(typeof detail === "string" && detail ? detail : "HTTP " + resp.status + " " + resp.statusText);
  }
  return body;
}

// ---------------------------------------------------------------- formatting
export function fmtNumber(v, digits) {
  if (v === null || v === undefined || v === "") return "";
  const x = Number(v);
  if (!Number.isFinite(x)) return String(v);
  return Number(x.toPrecision(digits || 4)).toString();
}

export function fmtShape(shape) {
  return Array.isArray(shape) && shape.length ? shape.join(" × ") : "";
}

export function fmtList(v) {
  return Array.isArray(v) ? v.join(", ") : v === null || v === undefined ? "" : String(v);
}

export function plural(n, one, many) {
  return n + " " + (n === 1 ? one : many || one + "s");
}

export function basename(path) {
  return path ? String(path).split(/[\\/]/).filter(Boolean).pop() || String(path) : "";
}

export function displayTitle(d) {
  return d.title || d.name || basename(d.path) || "dataset " + d.id;
}

// Quote a filter value when the query syntax would split it (spaces) or misread it (quotes).
export function quoted(v) {
  return /[\s"]/.test(v) ? '"' + v.replace(/"/g, "") + '"' : v;
}

// ---------------------------------------------------------------- cards
function cardMeta(hit, extraMeta) {
  const bits = [hit.signal, hit.kind, fmtShape(hit.shape)];
  if (hit.pixel_size_nm !== undefined && hit.pixel_size_nm !== null) {
    bits.push(fmtNumber(hit.pixel_size_nm) + " nm/px");
  }
  if (extraMeta) bits.push(extraMeta);
  return bits.filter(Boolean).join(" · ");
}

export function card(hit, extraMeta) {
  const a = el("a", { class: "card", href: "#/dataset/" + hit.id, "data-id": hit.id,
                      title: hit.path || "" });
  if (hit.thumbnail) {
    a.append(el("img", { class: "thumb", src: hit.thumbnail, alt: "thumbnail of dataset " + hit.id,
                         loading: "lazy" }));
  } else {
    a.append(el("div", { class: "thumb-none" }, hit.kind || "no preview"));
  }
  a.append(el("div", { class: "card-title" }, displayTitle(hit)));
  a.append(el("div", { class: "card-meta" }, cardMeta(hit, extraMeta)));
  if (hit.snippet) a.append(el("div", { class: "card-snippet" }, hit.snippet));
  a.append(el("div", { class: "card-id" }, "#" + hit.id + (hit.name ? " · " + hit.name : "")));
  // search hits carry no pixel size, similar hits no title or shape: complete them from the record
  if (!("pixel_size_nm" in hit) || !("title" in hit) || !("shape" in hit)) enrich(a, hit, extraMeta);
  return a;
}

async function enrich(node, hit, extraMeta) {
  let d;
  try {
    d = await api("/api/datasets/" + encodeURIComponent(hit.id));
  } catch (e) {
    return;  // a card without these details is still useful; the error box is for the user's actions
  }
  const full = Object.assign({}, d, hit);  // what the hit says wins; the record fills the gaps
  node.querySelector(".card-title").textContent = displayTitle(full);
  node.querySelector(".card-meta").textContent = cardMeta(full, extraMeta);
}
