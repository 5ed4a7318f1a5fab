// atomine catalog browser: vanilla JS (ES modules, no build step) against the JSON API of
// atomine.server. This module: the search form, the query it composes, results, hash routing.
import { $, api, card, clear, clearError, el, plural, quoted, showError } from "./ui.js";
import { loadSimilar, showDataset } from "./dataset.js";

const PAGE = 20;  // default results per request; "More results" fetches the next page

// ---------------------------------------------------------------- query composition
const FILTER_IDS = ["f-signal", "f-kind", "f-element", "f-beam-min", "f-beam-max",
                    "f-lattice-min", "f-lattice-max", "f-date-from", "f-date-to"];

function readForm() {
  const state = { q: $("q").value.trim() };
  for (const id of FILTER_IDS) state[id] = $(id).value.trim();
  return state;
}

function writeForm(state) {
  $("q").value = state.q || "";
  for (const id of FILTER_IDS) {
    const node = $(id);
    const v = state[id] || "";
    if (node.tagName === "SELECT" && v && ![...node.options].some((o) => o.value === v)) {
      node.append(el("option", { value: v }, v));  // a bookmarked value not (yet) in the stats
    }
    node.value = v;
  }
}

function range(field, lo, hi, unit) {
  if (!lo && !hi) return null;
  if (lo && hi && lo === hi) return field + ":" + lo + (unit || "");
  return field + ":" + (lo ? lo + (unit || "") : "") + ".." + (hi ? hi + (unit || "") : "");
}

// The query string the server parses (atomine.catalog.query syntax): free text AND filters.
function effectiveQuery(state) {
  const parts = [];
  if (state.q) parts.push(state.q);
  if (state["f-signal"]) parts.push("signal:" + quoted(state["f-signal"]));
  if (state["f-kind"]) parts.push("kind:" + quoted(state["f-kind"]));
  const elements = (state["f-element"] || "").split(/[\s,;]+/).filter(Boolean);
  if (elements.length) parts.push("element:" + elements.join(","));
  parts.push(range("beam_energy", state["f-beam-min"], state["f-beam-max"], "kV"));
  parts.push(range("lattice_a", state["f-lattice-min"], state["f-lattice-max"], "nm"));
  parts.push(range("date", state["f-date-from"], state["f-date-to"], ""));
  return parts.filter(Boolean).join(" ");
}

function stateToHash(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const id of FILTER_IDS) if (state[id]) params.set(id.slice(2), state[id]);
  if (state.limit) params.set("limit", state.limit);
  const s = params.toString();
  return "#/search" + (s ? "?" + s : "");
}

function hashToState(query) {
  const params = new URLSearchParams(query || "");
  const state = { q: params.get("q") || "" };
  // page size: bookmarkable as &limit=N, bounded like the server's limit
  const limit = parseInt(params.get("limit") || "", 10);
  if (limit >= 1 && limit <= 200) state.limit = limit;
  for (const id of FILTER_IDS) state[id] = params.get(id.slice(2)) || "";
  return state;
}

function updateEffective() {
  $("effective-query").textContent = effectiveQuery(readForm()) || "(everything)";
}

// ---------------------------------------------------------------- views
function showView(name) {
  $("view-search").hidden = name !== "search";
  $("view-dataset").hidden = name !== "dataset";
}

let current = { query: null, offset: 0, shown: 0, token: 0 };
let lastSearchHash = "#/search";

async function runSearch(state, append) {
  const query = effectiveQuery(state);
  const token = ++current.token;  // a slower earlier response must not overwrite a newer one
  if (!append) current = { query, offset: 0, shown: 0, token };
  const limit = state.limit || PAGE;
  const url = "/api/search?q=" + encodeURIComponent(query) + "&limit=" + limit + "&offset=" + current.offset;
  const results = $("results");
  $("more").hidden = true;
  let body;
  try {
    body = await api(url);
  } catch (e) {
    if (token !== current.token) return;
    if (!append) {
      clear(results);
      $("result-count").textContent = "";
      rankedNote(null);
    }
    showError(e.message);
    return;
  }
  if (token !== current.token) return;
  clearError();
  if (!append) clear(results);
  const hits = body.hits || [];
  for (const hit of hits) {
    const node = card(hit);
    results.append(node);
  }
  current.offset += hits.length;
  current.shown += hits.length;
  const more = hits.length === limit;
  $("more").hidden = !more;
  const n = current.shown;
  $("result-count").textContent = n === 0 ? "No datasets match."
    : (more ? n + "+ datasets" : plural(n, "dataset"));
  rankedNote(body.ranked_over);
}

// Very common words: the server ranked only the newest N matches; say so under the count.
function rankedNote(window) {
  let note = $("ranked-note");
  if (!note) {
    note = document.createElement("div");
    note.id = "ranked-note";
    note.className = "count";
    $("result-count").after(note);
  }
  note.textContent = window ? "ranked among the newest " + Number(window).toLocaleString("en-US")
    + " of the matches" : "";
  note.hidden = !window;
}

// ---------------------------------------------------------------- routing
// <main> says what it shows: aria-busy while a route loads, data-rendered = the hash it rendered
// (assistive technology reads the first; scripts and tests wait on both).
async function route() {
  const main = document.querySelector("main");
  const hash = location.hash || "#/search";
  main.setAttribute("aria-busy", "true");
  try {
    await render(hash);
  } finally {
    if ((location.hash || "#/search") === hash) {
      main.setAttribute("data-rendered", hash);
      main.setAttribute("aria-busy", "false");
    }
  }
}

async function render(hash) {
  const m = /^#\/(search|dataset|similar)(?:\/([^?]*))?(?:\?(.*))?$/.exec(hash);
  if (!m) {
    showError("unknown page " + hash + "; showing the search");
    location.replace("#/search");
    return;
  }
  const [, view, arg, query] = m;
  if (view === "search") {
    lastSearchHash = hash;
    showView("search");
    document.title = "atomine catalog";
    const state = hashToState(query);
    writeForm(state);
    updateEffective();
    await runSearch(state, false);
    return;
  }
  if (!/^\d+$/.test(arg || "")) {
    showError("a dataset id is a whole number, got '" + (arg || "") + "'");
    return;
  }
  showView("dataset");
  $("back-to-results").setAttribute("href", lastSearchHash);
  await showDataset(arg, view === "similar");
}

function submit(ev) {
  if (ev) ev.preventDefault();
  const state = readForm();
  const shown = hashToState(location.hash.split("?")[1] || "");
  if (shown.limit) state.limit = shown.limit;  // a new search keeps the page size in use
  const hash = stateToHash(state);
  if (location.hash === hash) route();  // same hash: no hashchange event, search again anyway
  else location.hash = hash;
}

async function loadStats() {
  try {
    const s = await api("/api/stats");
    $("stats").textContent = plural(s.datasets, "dataset") + " · " + plural(s.analyses, "analysis", "analyses");
    fillSelect($("f-signal"), s.by_signal || {});
    fillSelect($("f-kind"), s.by_kind || {});
  } catch (e) {
    $("stats").textContent = "";
    showError(e.message);
  }
}

function fillSelect(select, counts) {
  const keep = select.value;
  for (const [value, n] of Object.entries(counts)) {
    if (value === "unknown") continue;  // stats' label for a missing value: not searchable
    let opt = [...select.options].find((o) => o.value === value);
    if (!opt) {
      opt = el("option", { value: value });
      select.append(opt);
    }
    opt.textContent = value + " (" + n + ")";
  }
  select.value = keep;
}

document.addEventListener("DOMContentLoaded", async () => {
  $("search-form").addEventListener("submit", submit);
  $("q").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") submit(ev);
  });
  $("clear").addEventListener("click", () => {
    writeForm({ q: "" });
    submit();
  });
  for (const id of ["q", ...FILTER_IDS]) {
    $(id).addEventListener("input", updateEffective);
    $(id).addEventListener("change", updateEffective);
  }
  $("more").addEventListener("click", () => runSearch(hashToState((location.hash.split("?")[1]) || ""), true));
  $("more-like-this").addEventListener("click", () => {
    const id = $("more-like-this").getAttribute("data-id");
    const target = "#/similar/" + id;
    if (location.hash === target) loadSimilar(id);
    else location.hash = target;
  });
  window.addEventListener("hashchange", route);
  await loadStats();
  await route();
});
