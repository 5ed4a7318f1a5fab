// The dataset page (#/dataset/<id>, #/similar/<id>): metadata, descriptors, paths, analyses, similar.
import { $, api, card, clear, clearError, displayTitle, el, fmtList, fmtNumber, fmtShape,
         showError } from "./ui.js";

export async function showDataset(id, withSimilar) {
  for (const t of ["dataset-meta", "dataset-descriptors"]) clear($(t).tBodies[0]);
  for (const t of ["dataset-paths", "dataset-analyses", "similar"]) clear($(t));
  $("dataset-title").textContent = "dataset " + id;
  $("dataset-thumb").hidden = true;
  $("more-like-this").setAttribute("data-id", id);
  let d;
  try {
    d = await api("/api/datasets/" + encodeURIComponent(id));
  } catch (e) {
    showError(e.message);
    return;
  }
  clearError();
  $("dataset-title").textContent = displayTitle(d);
  document.title = displayTitle(d) + " · atomine catalog";
  const img = $("dataset-thumb");
  if (d.thumbnail) {
    img.setAttribute("src", d.thumbnail);
    img.hidden = false;
  } else {
    img.removeAttribute("src");
  }
  fillMeta(d);
  fillDescriptors(d.descriptors || {});
  fillPaths(d);
  fillAnalyses(d.analyses || []);
  if (withSimilar) await loadSimilar(id);
}

function row(tbody, key, label, value) {
  if (value === null || value === undefined || value === "") return;
  tbody.append(el("tr", { "data-field": key }, el("th", {}, label), el("td", {}, value)));
}

function fillMeta(d) {
  const tb = $("dataset-meta").tBodies[0];
  const withUnit = (v, unit) => (v === null || v === undefined ? null : fmtNumber(v, 6) + " " + unit);
  row(tb, "id", "Id", String(d.id));
  row(tb, "name", "Signal name", d.name);
  row(tb, "instrument", "Instrument", d.instrument);
  row(tb, "beam_energy_kv", "Beam energy", withUnit(d.beam_energy_kv, "kV"));
  row(tb, "pixel_size_nm", "Pixel size", withUnit(d.pixel_size_nm, "nm"));
  row(tb, "magnification", "Magnification", d.magnification ? fmtNumber(d.magnification, 6) + "×" : null);
  row(tb, "detector", "Detector", d.detector);
  row(tb, "acquisition_date", "Acquisition date", d.acquisition_date);
  row(tb, "operator", "Operator", d.operator);
  row(tb, "sample", "Sample", d.sample);
  row(tb, "elements", "Elements", fmtList(d.elements));
  row(tb, "signal", "Signal", d.signal);
  row(tb, "kind", "Kind", d.kind);
  row(tb, "shape", "Shape", fmtShape(d.shape));
  row(tb, "dtype", "Data type", d.dtype);
  if (Array.isArray(d.energy_range)) {
    const unit = d.kind === "cits" ? "V" : "eV";
    row(tb, "energy_range", "Energy range",
        d.energy_range.map((v) => fmtNumber(v, 6)).join(" – ") + " " + unit);
  }
  row(tb, "tags", "Tags", fmtList(d.tags));
  row(tb, "file_size", "File size", d.file_size ? fmtNumber(d.file_size / 1e6, 4) + " MB" : null);
  row(tb, "content_hash", "Content hash", d.content_hash);
}

const DESCRIPTOR_LABELS = {
  lattice_a_nm: ["Lattice a", "nm"], lattice_b_nm: ["Lattice b", "nm"],
  lattice_angle_deg: ["Lattice angle", "°"], n_phases: ["Phases", ""], gap_v: ["Gap", "V"],
};

function fillDescriptors(desc) {
  const tb = $("dataset-descriptors").tBodies[0];
  const edges = [], lines = [], rest = [];
  for (const [k, v] of Object.entries(desc)) {
    if (k.startsWith("edge:")) edges.push(k.slice(5));
    else if (k.startsWith("line:")) lines.push(k.slice(5));
    else if (!(k in DESCRIPTOR_LABELS)) rest.push([k, v]);
  }
  for (const [k, [label, unit]] of Object.entries(DESCRIPTOR_LABELS)) {
    if (k in desc) row(tb, k, label, fmtNumber(desc[k], 4) + (unit ? " " + unit : ""));
  }
  row(tb, "edges", "Edges", edges.sort().join(", "));
  row(tb, "lines", "X-ray lines", lines.sort().join(", "));
  for (const [k, v] of rest.sort()) row(tb, k, k, fmtNumber(v, 4));
  if (!tb.rows.length) tb.append(el("tr", {}, el("td", { colspan: 2, class: "muted" }, "none computed")));
}

function fillPaths(d) {
  const ul = $("dataset-paths");
  const paths = d.paths && d.paths.length ? d.paths : [{ path: d.path, seen: d.added }];
  paths.forEach((p) => {
    ul.append(el("li", { class: p.path === d.path ? "current" : "old" },
                 el("code", {}, p.path), p.seen ? el("span", { class: "muted" }, " seen " + p.seen) : null));
  });
}

function fillAnalyses(analyses) {
  const ul = $("dataset-analyses");
  if (!analyses.length) {
    ul.append(el("li", { class: "muted" }, "no analyses linked to this dataset"));
    return;
  }
  for (const a of analyses) {
    const li = el("li", { "data-analysis-id": a.id },
                  el("strong", {}, a.workflow || "analysis"),
                  el("span", { class: "muted" },
                     " · " + [a.time, a.atomine_version ? "atomine " + a.atomine_version : null]
                       .filter(Boolean).join(" · ")));
    const reports = a.reports || [];
    if (reports.length) {
      const links = el("span", { class: "reports" });
      for (const r of reports) {
        links.append(el("a", { href: r.url, target: "_blank", rel: "noopener noreferrer", class: "report" },
                        r.name));
      }
      li.append(" ", links);
    }
    li.append(el("div", { class: "muted small" }, el("code", {}, a.path || "")));
    ul.append(li);
  }
}

export async function loadSimilar(id) {
  const box = $("similar");
  clear(box);
  let body;
  try {
    body = await api("/api/similar/" + encodeURIComponent(id) + "?k=10");
  } catch (e) {
    showError(e.message);
    return;
  }
  clearError();
  const hits = body.hits || [];
  if (!hits.length) {
    box.append(el("p", { class: "muted" }, "no datasets with comparable content descriptors"));
    return;
  }
  for (const h of hits) {
    box.append(card(h, "distance " + fmtNumber(h.distance, 3) + (h.approximate ? " (approx.)" : "")));
  }
}
