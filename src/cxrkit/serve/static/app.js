// cxrkit serve: the page. Plain JavaScript, no framework, no build step, no third-party code.
// Every number shown comes from the server's /v1 API; nothing is computed or rounded here
// except for display (two decimals), so the page, the CSV and `cxr predict` agree.
"use strict";

const state = {
  token: "",
  limits: { max_file_mb: 50, max_request_mb: 200, max_files: 64 },
  models: null,        // GET /v1/models
  items: [],           // one per file, in the order added
  busy: 0,
};

const $ = (selector, root = document) => root.querySelector(selector);
const MB = 1024 * 1024;
const METHOD_NAMES = { "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "cam": "CAM", "saliency": "Saliency" };

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function prettyLabel(name) { return name.replace(/_/g, " "); }
function fmt2(value) { return Number(value).toFixed(2); }
function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function setStatus(text) { $("#status").textContent = text; }

// --- talking to the server --------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function api(path, { form = null, json = null, query = {} } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined) url.searchParams.set(key, String(value));
  }
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  let body = null;
  if (form) body = form;
  if (json) { body = JSON.stringify(json); headers["Content-Type"] = "application/json"; }
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(url, { method: body ? "POST" : "GET", headers, body });
    } catch (err) {
      throw new ApiError("the server cannot be reached (is cxr serve still running?)", 0);
    }
    if (response.status === 503 && attempt < 6) {
      const wait = Math.min(30, Number(response.headers.get("Retry-After")) || 2);
      setStatus(`Server busy, retrying in ${wait} s…`);
      await sleep(wait * 1000);
      continue;
    }
    if (!response.ok) {
      let detail = `the server answered ${response.status}`;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      if (response.status === 401) showTokenBox(true);
      throw new ApiError(detail, response.status);
    }
    return response;
  }
}

function fileForm(file, fields = {}) {
  const form = new FormData();
  form.append("files", file, file.name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  return form;
}

// --- start-up: limits, token, models ---------------------------------------------------

function showTokenBox(show) { $("#token-box").hidden = !show; }

async function loadHealth() {
  const health = await (await api("/healthz")).json();
  state.limits = health.limits;
  $("#version").textContent = health.version;
  $("#limit-text").textContent = `up to ${health.limits.max_file_mb} MB each`;
  showTokenBox(health.token_required);
  return health;
}

async function loadModels() {
  try {
    state.models = await (await api("/v1/models")).json();
  } catch (err) {
    $("#model-name").textContent = err.status === 401 ? "enter the access token" : "unavailable";
    return;
  }
  const main = state.models.models.find((m) => m.name === state.models.default);
  $("#model-name").textContent = main.name;
  $("#model-version").textContent = main.version ? `version ${main.version}` : "";
  renderModelDetails();
}

function classifierCard() {
  return state.models ? state.models.models.find((m) => m.name === state.models.default) : null;
}

function ageCard() {
  return state.models ? state.models.models.find((m) => m.role === "age") : null;
}

// --- the model panel -------------------------------------------------------------------

function definition(list, term, value) {
  if (value === null || value === undefined || value === "") return;
  list.append(el("dt", { text: term }), el("dd", { text: String(value) }));
}

function renderModelDetails() {
  const root = $("#model-details");
  root.replaceChildren();
  for (const model of state.models.models) {
    const role = { classifier: "Findings classifier", age: "CXR-Age model", orientation: "Orientation model" }[model.role];
    const block = el("section", { class: "model-block" }, [el("h3", { text: `${role}: ${model.name}` })]);
    const list = el("dl");
    definition(list, "Version (weights sha256)", model.version);
    definition(list, "Architecture", `${model.architecture}, ${model.input_size} px input, ${model.task}`);
    definition(list, "What it is", model.description);
    definition(list, "Intended use", model.intended_use);
    definition(list, "Evidence on held-out patients", model.evidence ? model.evidence.sentence : "none on the model card");
    const data = model.training_data || {};
    if (data.dataset) {
      const parts = [data.dataset];
      if (data.train) parts.push(`${data.train.images} training images`);
      if (data.valid) parts.push(`${data.valid.images} validation images (${data.valid.patients} patients)`);
      definition(list, "Trained on", parts.join(", "));
    }
    definition(list, "Licence", model.license);
    const validation = (model.metrics || {}).validation || {};
    if (validation.mae !== undefined) {
      definition(list, "Validation error", `mean absolute error ${validation.mae.toFixed(1)} years ` +
        `(95 % CI ${validation.mae_ci_low.toFixed(1)}–${validation.mae_ci_high.toFixed(1)}); ` +
        `always answering the mean age: ${validation.mae_of_training_mean.toFixed(1)}`);
    }
    if (validation.accuracy !== undefined) definition(list, "Validation accuracy", `${(100 * validation.accuracy).toFixed(1)} %`);
    if (validation.auc_mean !== undefined) definition(list, "Mean validation AUC", validation.auc_mean.toFixed(3));
    definition(list, "Measured on", validation.measured_on);
    block.append(list);
    if (model.role === "classifier" && validation.auc) block.append(metricsTable(model, validation.auc));
    root.append(block);
  }
}

function metricsTable(model, auc) {
  const head = el("tr", {}, ["Finding", "AUC", "95 % CI", "Threshold", "Sensitivity", "Specificity", "Positives"]
    .map((h) => el("th", { text: h })));
  const body = el("tbody");
  for (const label of model.labels) {
    const m = auc[label];
    if (!m || m.auc === null || m.auc === undefined) {
      const why = m && m.n_pos === 0 ? "not validated: no positive case in the validation split" : "not validated";
      body.append(el("tr", {}, [el("td", { text: prettyLabel(label) }), el("td", { class: "note", text: why, colspan: "6" })]));
      continue;
    }
    const cell = (v, digits = 3) => el("td", { text: v === null || v === undefined ? "–" : Number(v).toFixed(digits) });
    body.append(el("tr", {}, [
      el("td", { text: prettyLabel(label) }), cell(m.auc), el("td", { text: `${fmt2(m.ci_low)}–${fmt2(m.ci_high)}` }),
      cell(m.threshold), cell(m.sensitivity, 2), cell(m.specificity, 2), el("td", { text: `${m.n_pos} of ${m.n_pos + m.n_neg}` }),
    ]));
  }
  return el("table", { class: "metrics" }, [el("thead", {}, head), body]);
}

// --- adding files ----------------------------------------------------------------------

function chunks(files) {
  // Group files into requests that fit the server's per-request limits.
  const groups = [];
  let current = [], bytes = 0;
  for (const file of files) {
    if (current.length && (bytes + file.size > state.limits.max_request_mb * MB || current.length >= state.limits.max_files)) {
      groups.push(current); current = []; bytes = 0;
    }
    current.push(file); bytes += file.size;
  }
  if (current.length) groups.push(current);
  return groups;
}

async function addFiles(fileList) {
  const files = Array.from(fileList);
  if (!files.length) return;
  $("#empty-state").hidden = true;
  const fixOrientation = $("#fix-orientation").checked;
  const fine = [];
  for (const file of files) {
    if (file.size > state.limits.max_file_mb * MB) {
      const message = `larger than this server's limit of ${state.limits.max_file_mb} MB per file; it was not sent`;
      addItem({ file, row: { file: file.name, status: "error", error: message }, local: true });
    } else {
      fine.push(file);
    }
  }
  state.busy++;
  updateButtons();
  try {
    for (const group of chunks(fine)) {
      setStatus(`Analysing ${group.length} film${group.length > 1 ? "s" : ""}…`);
      const form = new FormData();
      for (const file of group) form.append("files", file, file.name);
      let result;
      try {
        result = await (await api("/v1/predict", { form, query: { fix_orientation: fixOrientation } })).json();
      } catch (err) {
        for (const file of group) addItem({ file, row: { file: file.name, status: "error", error: err.message }, local: true });
        continue;
      }
      const created = group.map((file, i) => addItem({ file, row: result.rows[i], labels: result.labels, model: result.model, fixOrientation }));
      for (const item of created) {
        if (item.row.status === "ok") { await loadFilm(item); await loadAge(item); }
      }
    }
    setStatus(`${state.items.length} film${state.items.length === 1 ? "" : "s"} analysed`);
  } finally {
    state.busy--;
    updateButtons();
  }
}

function updateButtons() {
  const rows = state.items.filter((item) => !item.local);
  $("#download-csv").disabled = rows.length === 0 || state.busy > 0;
  $("#clear").disabled = state.items.length === 0 || state.busy > 0;
}

function addItem(item) {
  item.overlays = new Map();
  item.card = item.row.status === "ok" ? okCard(item) : errorCard(item);
  $("#results").append(item.card);
  state.items.push(item);
  return item;
}

function errorCard(item) {
  return el("article", { class: "card error", dataset: { status: "error" } }, [
    el("header", { class: "card-head" }, [el("h2", { class: "file-name", text: item.row.file })]),
    el("div", { class: "error-body" }, [
      el("span", { class: "error-icon", text: "!" }),
      el("p", {}, ["This file could not be analysed: ", el("span", { class: "why", text: item.row.error })]),
    ]),
  ]);
}

function okCard(item) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  card.dataset.status = "ok";
  $(".file-name", card).textContent = item.row.file;
  if (item.row.orientation_fixed === "yes") {
    $(".badges", card).append(el("span", { class: "badge", text: `turned upright (found ${item.row.orientation})` }));
  }
  const body = $("tbody", card);
  const model = state.models ? state.models.models.find((m) => m.name === item.model.name) : null;
  const calibrated = model ? model.calibrated : false;
  const raw = new Set(model ? model.uncalibrated_labels : []);
  // A model its own card does not show to beat chance gets a banner beside its scores, and no
  // finding is emphasised: an orange "above the operating point" would read as a finding.
  const unproven = Boolean(model && model.evidence && !model.evidence.beats_chance);
  if (unproven) {
    $(".findings", card).prepend(el("p", { class: "unproven", role: "note", text:
      `This model is ${model.evidence.sentence}. Its scores demonstrate the software; they are not readings of this film.` }));
  }
  for (const label of item.labels) {
    const value = item.row[label];
    const known = value !== null && value !== undefined;
    const operating = known && calibrated && !raw.has(label);  // 0.5 is this label's validated operating point
    const high = operating && value >= 0.5 && !unproven;
    const bar = known ? el("div", { class: "bar" }) : null;
    if (known) {
      const fill = el("div", { class: "fill" });
      fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
      bar.append(fill);
      if (operating) bar.append(el("div", { class: "op", title: "operating point" }));
    }
    let title = `${prettyLabel(label)}: this model does not predict it`;
    if (known) {
      title = `${prettyLabel(label)}: ${value}` + (high ? " (above the operating point)" : "") +
        (operating ? "" : " (raw probability: no validated operating point for this finding)") +
        ". Click to see where the model looked.";
    }
    const name = el("td", { class: "name", text: prettyLabel(label) });
    if (known && !operating) name.append(el("span", { class: "tag", text: "uncalibrated" }));
    const row = el("tr", {
      class: `finding${high ? " high" : ""}${known ? "" : " none"}`,
      dataset: { label, score: known ? String(value) : "", calibrated: operating ? "yes" : "no" },
      tabindex: known ? "0" : "-1",
      title,
    }, [
      name,
      el("td", {}, bar),
      el("td", { class: "num", text: known ? fmt2(value) : "not predicted" }),
    ]);
    if (known) {
      row.addEventListener("click", () => toggleOverlay(item, label));
      row.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggleOverlay(item, label); } });
    }
    body.append(row);
  }
  const opacity = $(".opacity", card);
  opacity.addEventListener("input", () => { $(".overlay", card).style.opacity = String(opacity.value / 100); });
  $(".overlay", card).style.opacity = String(opacity.value / 100);
  $(".toggle-overlay", card).addEventListener("click", () => {
    const overlay = $(".overlay", card);
    overlay.hidden = !overlay.hidden;
    $(".toggle-overlay", card).textContent = overlay.hidden ? "Show map" : "Hide map";
  });
  $(".method", card).addEventListener("change", () => { if (item.label) showOverlay(item, item.label); });
  $(".known-age", card).addEventListener("change", () => loadAge(item));
  $(".print", card).addEventListener("click", () => printReport(item));
  if (!ageCard() && state.models) $(".age-box", card).hidden = true;
  return card;
}

// --- per-film requests: film, age, overlay ---------------------------------------------

async function loadFilm(item) {
  const wait = $(".film-wait", item.card);
  try {
    const response = await api("/v1/film", { form: fileForm(item.file), query: { height: 1024, fix_orientation: item.fixOrientation } });
    const img = $(".film", item.card);
    img.src = URL.createObjectURL(await response.blob());
    await img.decode();
    item.filmHeight = img.naturalHeight;
    wait.hidden = true;
  } catch (err) {
    wait.textContent = `The film cannot be shown: ${err.message}`;
  }
}

async function loadAge(item) {
  const box = $(".age-box", item.card);
  if (box.hidden) return;
  const typed = $(".known-age", item.card).value.trim();
  const value = $(".age-value", item.card);
  const gap = $(".age-gap", item.card);
  value.textContent = "estimating…";
  gap.textContent = "";
  try {
    const fields = typed ? { age: typed } : {};
    const result = await (await api("/v1/age", { form: fileForm(item.file, fields), query: { fix_orientation: item.fixOrientation } })).json();
    const row = result.rows[0];
    item.age = row;
    item.ageModel = result.model;
    if (row.status !== "ok") { value.textContent = `could not be estimated: ${row.error}`; return; }
    value.replaceChildren(el("strong", { text: row.cxr_age.toFixed(1) }), " years");
    if (row.cxr_age_sd !== null) value.append(el("span", { class: "muted", text: `  ± ${row.cxr_age_sd.toFixed(1)} across 8 views` }));
    if (row.chronological_age !== null && row.chronological_age !== undefined) {
      const source = typed ? "typed" : "from the DICOM header";
      const direction = row.age_gap >= 0 ? "the film looks older" : "the film looks younger";
      gap.textContent = `Known age ${row.chronological_age} (${source}) · gap ${row.age_gap >= 0 ? "+" : "−"}${Math.abs(row.age_gap).toFixed(1)} years (${direction})`;
    }
  } catch (err) {
    if (err.status === 404) { box.hidden = true; return; }
    value.textContent = `could not be estimated: ${err.message}`;
  }
}

function toggleOverlay(item, label) {
  const overlay = $(".overlay", item.card);
  if (item.label === label && !overlay.hidden) {
    overlay.hidden = true;
    $(".toggle-overlay", item.card).textContent = "Show map";
    return;
  }
  showOverlay(item, label);
}

async function showOverlay(item, label) {
  const card = item.card;
  const method = $(".method", card).value;
  const caption = $(".overlay-caption", card);
  const overlay = $(".overlay", card);
  item.label = label;
  for (const row of card.querySelectorAll(".finding")) row.classList.toggle("selected", row.dataset.label === label);
  const key = `${label}|${method}`;
  caption.replaceChildren(el("strong", { text: prettyLabel(label) }), ` · ${METHOD_NAMES[method]} · computing…`);
  try {
    if (!item.overlays.has(key)) {
      const response = await api("/v1/explain", {
        form: fileForm(item.file),
        query: { label, method, format: "png", alpha: 1, caption: false, height: item.filmHeight || null, fix_orientation: item.fixOrientation },
      });
      item.overlays.set(key, {
        url: URL.createObjectURL(await response.blob()),
        score: Number(response.headers.get("X-Cxrkit-Score")),
        evidence: response.headers.get("X-Cxrkit-Has-Evidence") === "True",
      });
    }
    if (item.label !== label || $(".method", card).value !== method) return;  // the user moved on
    const map = item.overlays.get(key);
    overlay.src = map.url;
    await overlay.decode();
    overlay.hidden = false;
    overlay.dataset.label = label;
    $(".toggle-overlay", card).disabled = false;
    $(".toggle-overlay", card).textContent = "Hide map";
    const note = map.evidence ? "warm colours: regions that raised the score" : "the map is empty: no region raises this score";
    caption.replaceChildren(el("strong", { text: prettyLabel(label) }), ` · ${METHOD_NAMES[method]} · score ${fmt2(map.score)} · ${note}`);
  } catch (err) {
    caption.textContent = `No map for ${prettyLabel(label)}: ${err.message}`;
  }
}

// --- CSV and report --------------------------------------------------------------------

async function downloadCsv() {
  const rows = state.items.filter((item) => !item.local).map((item) => item.row);
  try {
    const response = await api("/v1/export/csv", { json: { rows } });
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: "cxrkit-predictions.csv" });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (err) {
    setStatus(`CSV not made: ${err.message}`);
  }
}

function printReport(item) {
  // A one-page printable report (the browser's "Save as PDF" makes the PDF): film, map, table, model.
  const model = classifierCard();
  const film = $(".film", item.card);
  const overlay = $(".overlay", item.card);
  const withMap = !overlay.hidden && Boolean(overlay.getAttribute("src"));
  const figure = (caption, withOverlay) => {
    const stack = el("div", { class: "film-stack" }, el("img", { class: "film", src: film.src, alt: "Radiograph" }));
    if (withOverlay) {
      const copy = el("img", { class: "overlay", src: overlay.src, alt: "" });
      copy.style.opacity = overlay.style.opacity;
      stack.append(copy);
    }
    return el("figure", {}, [stack, el("figcaption", { text: caption })]);
  };
  const figures = [figure("Film as read", false)];
  if (withMap) figures.push(figure(`Heat map: ${$(".overlay-caption", item.card).textContent}`, true));
  const tbody = el("tbody");
  for (const row of $("tbody", item.card).children) {
    const score = row.dataset.score;
    const operating = row.dataset.calibrated === "yes";
    const high = operating && Number(score) >= 0.5;
    let note = high ? "above operating point" : "";
    if (score !== "" && !operating) note = "uncalibrated (raw probability)";
    tbody.append(el("tr", { class: high ? "high" : "" }, [
      el("td", { text: prettyLabel(row.dataset.label) }),
      el("td", { class: "num", text: score === "" ? "not predicted" : fmt2(score) }),
      el("td", { text: note }),
    ]));
  }
  const head = el("tr", {}, [el("th", { text: "Finding" }), el("th", { class: "num", text: "Score" }), el("th", { text: "" })]);
  const table = el("table", {}, [el("thead", {}, head), tbody]);
  const ageText = $(".age-value", item.card).textContent;
  const ageGap = $(".age-gap", item.card).textContent;
  const age = el("p", { class: "age-line" }, [el("strong", { text: "CXR-Age: " }), ageText, ageGap ? ` · ${ageGap}` : ""]);
  const summary = el("div", { class: "card-summary" });
  if (model) {
    const validation = (model.metrics || {}).validation || {};
    summary.append(...[
      el("p", {}, [el("strong", { text: "Model: " }), `${model.name}, version ${model.version} (${model.architecture}, ${model.input_size} px)`]),
      el("p", { text: model.description }),
      validation.auc_mean !== undefined ? el("p", { text: `Mean validation AUC ${validation.auc_mean.toFixed(3)}; ${validation.measured_on || ""}` }) : null,
      el("p", { text: `Intended use: ${model.intended_use}` }),
      model.evidence && !model.evidence.beats_chance ? el("p", { class: "unproven", text: `This model is ${model.evidence.sentence}.` }) : null,
      el("p", { text: "Scores are calibrated so that 0.5 is each finding's validated operating point, except findings marked uncalibrated." }),
    ].filter(Boolean));
  }
  $("#report").replaceChildren(el("div", { class: "report" }, [
    el("h1", { text: "cxrkit report" }),
    el("p", { class: "sub", text: `${item.row.file} · ${new Date().toLocaleString()}` }),
    el("p", { class: "ruo", text: "Research use only. Not a medical device; not for diagnosis or treatment decisions." }),
    el("div", { class: "figures" }, figures),
    age,
    table,
    summary,
  ]));
  window.print();
}

function clearAll() {
  for (const item of state.items) {
    for (const map of item.overlays.values()) URL.revokeObjectURL(map.url);
    const film = $(".film", item.card);
    if (film && film.src) URL.revokeObjectURL(film.src);
  }
  state.items = [];
  $("#results").replaceChildren();
  $("#empty-state").hidden = false;
  setStatus("");
  updateButtons();
}

// --- wiring ----------------------------------------------------------------------------

function wire() {
  const zone = $("#dropzone");
  const input = $("#file-input");
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); } });
  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => { event.preventDefault(); zone.classList.remove("dragging"); addFiles(event.dataTransfer.files); });
  $("#download-csv").addEventListener("click", downloadCsv);
  $("#clear").addEventListener("click", clearAll);
  $("#open-model").addEventListener("click", () => { if (state.models) $("#model-dialog").showModal(); });
  $("#close-model").addEventListener("click", () => $("#model-dialog").close());
  $("#token").addEventListener("change", (event) => { state.token = event.target.value.trim(); loadModels(); });
}

document.addEventListener("DOMContentLoaded", async () => {
  wire();
  try {
    await loadHealth();
    await loadModels();
  } catch (err) {
    setStatus(err.message);
  }
});
