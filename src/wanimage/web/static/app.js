// wanimage playground: a plain ES module, no build step. It talks only to the public API,
// with URLs relative to the page (so it works behind a proxy prefix).

import { loadGallery, renderGallery } from "./gallery.js";
import { applyLang, currentLang, initialLang, t } from "./i18n.js";

const MAX_PROMPT = 5000, MAX_IMAGES = 9, MAX_BOXES = 2, SEED_MAX = 2147483647;
const MIN_PIXELS = 768 * 768, MAX_PIXELS = 2048 * 2048, MAX_PIXELS_PRO_T2I = 4096 * 4096;
const PRO = "wan2.7-image-pro";
const HISTORY_KEY = "wanimage.playground.history", KEY_KEY = "wanimage.playground.apiKey";
const HISTORY_MAX = 30, HISTORY_BYTES = 2_000_000, POLL_MS = 400;
const DEFAULT_PALETTE = [["#C2D1E6", 40], ["#636574", 35], ["#E8B04B", 25]];

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
};
const api = (path) => new URL(path, document.baseURI).href;
const baseUrl = () => new URL(".", document.baseURI).href.replace(/\/$/, "");

const state = {
  images: [],      // {src, name, width, height, boxes: [{x1,y1,x2,y2}], thumb}
  palette: DEFAULT_PALETTE.map(([hex, ratio]) => ({ hex, ratio })),
  run: null,       // {transport, taskId, abort, entryId}
  flavour: "curl",
  lastBody: null,
  status: ["ready", {}],  // the status line as [key, values], so a language switch re-words it
  shown: null,           // the result cards on show: showResults' arguments, for the same reason
};

// ------------------------------------------------------------------ form state

const f = {
  model: $("#model"), prompt: $("#prompt"), size: $("#size"), w: $("#size-w"), h: $("#size-h"),
  n: $("#n"), sequential: $("#sequential"), thinking: $("#thinking"), watermark: $("#watermark"),
  seed: $("#seed"), seedLock: $("#seed-lock"), paletteOn: $("#palette-on"), key: $("#api-key"),
};

function randomSeed() {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0] % (SEED_MAX + 1);
}

function readForm() {
  return {
    model: f.model.value, prompt: f.prompt.value, size: f.size.value,
    width: +f.w.value, height: +f.h.value, n: +f.n.value,
    sequential: f.sequential.checked, thinking: f.thinking.checked, watermark: f.watermark.checked,
    seed: f.seed.value === "" ? null : +f.seed.value, seedLocked: f.seedLock.checked,
    paletteOn: f.paletteOn.checked, palette: state.palette.map((p) => ({ ...p })),
    transport: document.querySelector("input[name=transport]:checked").value,
    images: state.images.map(({ src, name, width, height, boxes }) => ({ src, name, width, height, boxes: boxes.map((b) => ({ ...b })) })),
  };
}

async function writeForm(s) {
  if ([...f.model.options].some((o) => o.value === s.model)) f.model.value = s.model;
  f.prompt.value = s.prompt ?? "";
  f.size.value = s.size ?? "2K";
  f.w.value = s.width || 1280; f.h.value = s.height || 720;
  f.n.value = s.n || 1;
  f.sequential.checked = !!s.sequential; f.thinking.checked = s.thinking !== false;
  f.watermark.checked = !!s.watermark;
  f.seed.value = s.seed ?? ""; f.seedLock.checked = !!s.seedLocked;
  f.paletteOn.checked = !!s.paletteOn;
  if (s.palette?.length) state.palette = s.palette.map((p) => ({ ...p }));
  const radio = document.querySelector(`input[name=transport][value=${s.transport || "task"}]`);
  if (radio) radio.checked = true;
  state.images = [];
  for (const im of s.images || []) {
    if (!im.src) continue;
    state.images.push({ ...im, boxes: (im.boxes || []).map((b) => ({ ...b })) });
  }
  clearErrors();
  renderImages(); renderPalette(); refresh();
}

// ------------------------------------------------------------------ dependent controls

function pureT2I() { return state.images.length === 0 && !f.sequential.checked; }

// The API's mode of a request, in the words the docs use.
export function modeLabel(form) {
  const images = form.images?.length || 0;
  if (!images) return t(form.sequential ? "modeSet" : "modeT2I");
  const boxes = (form.images || []).some((im) => im.boxes?.length);
  return t("modeOf", { what: form.sequential ? "set" : boxes ? "box" : "edit", n: images });
}

// A prompt cut for a list, by characters (a cut inside a surrogate pair would show a broken 𠀀).
export function shortText(text, max) {
  const chars = [...text];
  return chars.length > max ? `${chars.slice(0, max).join("")}…` : text;
}

// Times in the page's language (the browser's own locale when that is the page's language too).
function dateLocale() { return currentLang() === "zh" ? "zh-CN" : navigator.language.startsWith("zh") ? "en" : []; }

export function statusWord(status) { return t(`status_${String(status).toLowerCase()}`); }

function showKeyNeeded() {
  if (!state.keyNeeded) return;
  $("#key-note").textContent = t("keyNeeded");
  f.key.placeholder = t("keyPlaceholder");
  f.key.removeAttribute("data-i18n-placeholder");  // the switch must not put "not needed" back
}

// Example prompts in the page's language: a click puts one in the prompt box.
function renderExamples() {
  const box = $("#examples");
  box.querySelectorAll("button").forEach((b) => b.remove());
  for (const text of t("examples")) {
    const b = el("button", { type: "button", className: "small example", textContent: text });
    b.addEventListener("click", () => { f.prompt.value = text; refresh(); f.prompt.focus(); });
    box.append(b);
  }
}

// The 中文 / English switch: static words, then everything the script has written.
function setLang(lang, remember) {
  applyLang(lang, remember);
  showKeyNeeded();
  renderExamples(); renderImages(); renderPalette(); renderHistory(); refresh(); showServing();
  if (state.status) $("#status").textContent = t(...state.status);
  if (state.shown) showResults(...state.shown, false);
  if (state.invalid) { clearErrors(); validate(readForm()); }
  renderGallery(galleryView());
}

function refresh() {
  const count = [...f.prompt.value].length;
  $("#prompt-count").textContent = `${count} / ${MAX_PROMPT}`;
  $("#prompt-count").classList.toggle("over", count >= MAX_PROMPT);

  const seq = f.sequential.checked, pro = f.model.value === PRO;
  f.n.max = seq ? 12 : 4;
  $("#n-note").textContent = t(seq ? "nNoteSet" : "nNote");

  const why = state.images.length ? t("thinkingWhyImages") : seq ? t("thinkingWhySet") : "";
  f.thinking.disabled = !!why;
  $("#thinking-note").textContent = why ? t("thinkingOff", { why }) : t("thinkingNote");

  const fourK = f.size.querySelector("option[value='4K']");
  const noFourK = !pro ? t("no4kModel") : !pureT2I() ? t("no4kMode") : "";
  fourK.disabled = !!noFourK;
  fourK.textContent = noFourK ? `4K (${noFourK})` : t("size4k");
  if (noFourK && f.size.value === "4K") f.size.value = "2K";
  const custom = f.size.value === "custom";
  $("#custom-size").hidden = !custom;
  const maxPx = pro && pureT2I() ? MAX_PIXELS_PRO_T2I : MAX_PIXELS;
  const side = Math.round(Math.sqrt(maxPx));
  let note = t(state.images.length ? "sizeLast" : "sizeSquare");
  if (custom) {
    const px = f.w.value * f.h.value, ratio = Math.max(f.w.value, f.h.value) / Math.max(1, Math.min(f.w.value, f.h.value));
    const ok = px >= MIN_PIXELS && px <= maxPx && ratio <= 8;
    note = t("sizeCustom", { side, mp: (px / 1e6).toFixed(2), ok });
  }
  $("#size-note").textContent = note;

  f.paletteOn.disabled = seq;
  $("#palette-note").textContent = t(seq ? "paletteNoSet" : "paletteNote");
  $("#palette-editor").hidden = !f.paletteOn.checked || seq;
  updatePaletteSum();
  updateCode();
}

// ------------------------------------------------------------------ palette editor

function paletteSum() {
  return state.palette.reduce((s, p) => s + Math.round((+p.ratio || 0) * 100), 0) / 100;
}

function updatePaletteSum() {
  const sum = paletteSum(), out = $("#palette-sum");
  out.textContent = t("paletteSum", { sum: sum.toFixed(2) });
  out.classList.toggle("bad", Math.abs(sum - 100) > 1e-9);
}

function renderPalette() {
  const list = $("#swatches");
  list.replaceChildren();
  state.palette.forEach((p, i) => {
    const color = el("input", { type: "color", value: p.hex.toLowerCase(), id: `swatch-${i}-hex` });
    color.setAttribute("aria-label", t("colour", { i: i + 1 }));
    color.addEventListener("input", () => { p.hex = color.value.toUpperCase(); hex.textContent = p.hex; updateCode(); });
    const hex = el("code", { textContent: p.hex.toUpperCase() });
    const ratio = el("input", { type: "number", min: "0", max: "100", step: "0.01", value: p.ratio, id: `swatch-${i}-ratio`, inputMode: "decimal" });
    ratio.setAttribute("aria-label", t("colourShare", { i: i + 1 }));
    ratio.addEventListener("input", () => { p.ratio = ratio.value; updatePaletteSum(); updateCode(); });
    const remove = el("button", { type: "button", textContent: "×", className: "icon", disabled: state.palette.length <= 3 });
    remove.setAttribute("aria-label", t("colourRemove", { i: i + 1 }));
    remove.addEventListener("click", () => { state.palette.splice(i, 1); renderPalette(); refresh(); });
    list.append(el("li", {}, color, hex, ratio, el("span", { textContent: "%" }), remove));
  });
  $("#swatch-add").disabled = state.palette.length >= 10;
  updatePaletteSum();
}

function evenSplit() {
  const n = state.palette.length, base = Math.floor(10000 / n);
  state.palette.forEach((p, i) => { p.ratio = ((base + (i < 10000 - base * n ? 1 : 0)) / 100).toFixed(2); });
  renderPalette(); refresh();
}

// ------------------------------------------------------------------ input images and boxes

function loadSize(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve([img.naturalWidth, img.naturalHeight]);
    img.onerror = () => reject(new Error("the image could not be loaded"));
    img.src = src;
  });
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

async function addImages(sources) {
  showError("images", "");
  for (const { src, name } of sources) {
    if (state.images.length >= MAX_IMAGES) { showError("images", t("tooManyImages", { max: MAX_IMAGES })); break; }
    let size = [0, 0];
    try { size = await loadSize(src); } catch { /* a URL the browser cannot show: the server checks it */ }
    state.images.push({ src, name, width: size[0], height: size[1], boxes: [] });
  }
  renderImages(); refresh();
}

function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

function renderImages() {
  const list = $("#thumbs");
  list.replaceChildren();
  state.images.forEach((im, i) => list.append(thumbFor(im, i)));
}

function thumbFor(im, i) {
  const k = i + 1;
  const img = el("img", { src: im.src, alt: t("imageAlt", { k, name: im.name }), draggable: false });
  const stage = el("div", { className: "stage" }, img);
  stage.dataset.index = i;
  stage.setAttribute("aria-label", t("stage", { k }));
  if (im.width && im.height) stage.style.aspectRatio = `${im.width} / ${im.height}`;
  const coords = el("ul", { className: "coords" });
  const err = el("p", { className: "error", id: `err-image-${k}`, role: "alert" });
  const addBox = el("button", { type: "button", textContent: t("addBox"), className: "small", disabled: !im.width || im.boxes.length >= MAX_BOXES });
  addBox.setAttribute("aria-label", t("addBoxTo", { k }));
  addBox.addEventListener("click", () => {
    const { width: W, height: H } = im;
    im.boxes.push({ x1: Math.round(W / 4), y1: Math.round(H / 4), x2: Math.round(W * 3 / 4), y2: Math.round(H * 3 / 4) });
    drawBoxes(); refresh();
    stage.querySelector(`.box[data-box="${im.boxes.length - 1}"]`)?.focus();
  });
  const left = el("button", { type: "button", textContent: "←", className: "small", disabled: i === 0 });
  left.setAttribute("aria-label", t("moveEarlier", { k }));
  left.addEventListener("click", () => { state.images.splice(i - 1, 0, ...state.images.splice(i, 1)); renderImages(); refresh(); });
  const remove = el("button", { type: "button", textContent: t("remove"), className: "small" });
  remove.setAttribute("aria-label", t("removeImage", { k }));
  remove.addEventListener("click", () => { state.images.splice(i, 1); renderImages(); refresh(); });
  const dims = im.width ? `${im.width}×${im.height}` : t("sizeUnknown");
  const li = el("li", { className: "thumb" },
    el("div", { className: "thumb-head" }, el("strong", { textContent: t("imageN", { k }) }), el("span", { className: "note", textContent: dims })),
    stage, coords,
    el("div", { className: "row" }, addBox, left, remove), err);

  function drawBoxes() {
    stage.querySelectorAll(".box").forEach((b) => b.remove());
    coords.replaceChildren();
    addBox.disabled = !im.width || im.boxes.length >= MAX_BOXES;
    im.boxes.forEach((b, j) => {
      const box = el("div", { className: "box", tabIndex: 0 });
      box.dataset.box = j;
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", t("boxAria", { k, j: j + 1, ...b }));
      Object.assign(box.style, {
        left: `${(b.x1 / im.width) * 100}%`, top: `${(b.y1 / im.height) * 100}%`,
        width: `${((b.x2 - b.x1) / im.width) * 100}%`, height: `${((b.y2 - b.y1) / im.height) * 100}%`,
      });
      box.append(el("span", { className: "box-label", textContent: String(j + 1) }));
      for (const c of ["nw", "ne", "sw", "se"]) {
        const h = el("span", { className: `handle ${c}` });
        h.dataset.corner = c;
        box.append(h);
      }
      const del = el("button", { type: "button", className: "box-del", textContent: "×", tabIndex: -1 });
      del.setAttribute("aria-label", t("deleteBox", { j: j + 1, k }));
      del.addEventListener("pointerdown", (e) => e.stopPropagation());
      del.addEventListener("click", (e) => { e.stopPropagation(); im.boxes.splice(j, 1); drawBoxes(); refresh(); });
      box.append(del);
      box.addEventListener("keydown", (e) => keyBox(e, j));
      stage.append(box);
      const rm = el("button", { type: "button", className: "icon", textContent: "×" });
      rm.setAttribute("aria-label", t("deleteBox", { j: j + 1, k }));
      rm.addEventListener("click", () => { im.boxes.splice(j, 1); drawBoxes(); refresh(); });
      coords.append(el("li", {}, el("span", { className: "coord", textContent: t("boxCoords", { j: j + 1, coords: `[${b.x1},${b.y1},${b.x2},${b.y2}]` }) }), rm));
    });
  }

  function keyBox(e, j) {
    const b = im.boxes[j];
    const step = e.ctrlKey || e.metaKey ? 1 : Math.max(1, Math.round(Math.max(im.width, im.height) / 100));
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    if (e.key === "Delete" || e.key === "Backspace") {
      im.boxes.splice(j, 1); drawBoxes(); refresh(); stage.focus(); e.preventDefault(); return;
    }
    if (!d) return;
    e.preventDefault();
    if (e.shiftKey) {
      b.x2 = clamp(b.x2 + d[0], b.x1 + 1, im.width); b.y2 = clamp(b.y2 + d[1], b.y1 + 1, im.height);
    } else {
      const w = b.x2 - b.x1, h = b.y2 - b.y1;
      b.x1 = clamp(b.x1 + d[0], 0, im.width - w); b.y1 = clamp(b.y1 + d[1], 0, im.height - h);
      b.x2 = b.x1 + w; b.y2 = b.y1 + h;
    }
    drawBoxes(); refresh();
    stage.querySelector(`.box[data-box="${j}"]`)?.focus();
  }

  // Pointer: drawing on empty space, moving a box, resizing by a corner. Everything is kept
  // in the image's own pixels; the display scale is read from the stage at every event.
  stage.addEventListener("pointerdown", (e) => {
    if (!im.width || e.button !== 0) return;
    const rect = stage.getBoundingClientRect();
    const toImg = (ev) => [
      clamp(Math.round(((ev.clientX - rect.left) / rect.width) * im.width), 0, im.width),
      clamp(Math.round(((ev.clientY - rect.top) / rect.height) * im.height), 0, im.height),
    ];
    const [px, py] = toImg(e);
    const boxEl = e.target.closest(".box"), corner = e.target.dataset.corner;
    let op;
    if (boxEl) {
      const j = +boxEl.dataset.box, b = im.boxes[j], orig = { ...b };
      op = corner ? { kind: "resize", j, orig, corner } : { kind: "move", j, orig };
    } else {
      if (im.boxes.length >= MAX_BOXES) { showError(`image-${k}`, t("tooManyBoxes", { max: MAX_BOXES })); return; }
      showError(`image-${k}`, "");
      im.boxes.push({ x1: px, y1: py, x2: px, y2: py });
      op = { kind: "draw", j: im.boxes.length - 1 };
    }
    e.preventDefault();
    stage.setPointerCapture(e.pointerId);
    const move = (ev) => {
      const [x, y] = toImg(ev), b = im.boxes[op.j];
      if (op.kind === "draw") {
        Object.assign(b, { x1: Math.min(px, x), y1: Math.min(py, y), x2: Math.max(px, x), y2: Math.max(py, y) });
      } else if (op.kind === "move") {
        const w = op.orig.x2 - op.orig.x1, h = op.orig.y2 - op.orig.y1;
        b.x1 = clamp(op.orig.x1 + x - px, 0, im.width - w); b.y1 = clamp(op.orig.y1 + y - py, 0, im.height - h);
        b.x2 = b.x1 + w; b.y2 = b.y1 + h;
      } else {
        const o = op.orig;
        const xs = op.corner.includes("w") ? [x, o.x2] : [o.x1, x];
        const ys = op.corner.includes("n") ? [y, o.y2] : [o.y1, y];
        Object.assign(b, { x1: Math.min(...xs), x2: Math.max(...xs), y1: Math.min(...ys), y2: Math.max(...ys) });
      }
      drawBoxes();
    };
    const up = (ev) => {
      stage.removeEventListener("pointermove", move);
      stage.removeEventListener("pointerup", up);
      stage.removeEventListener("pointercancel", up);
      move(ev);
      const b = im.boxes[op.j];
      if (b.x2 - b.x1 < 2 || b.y2 - b.y1 < 2) im.boxes.splice(op.j, 1);  // a click, not a box
      drawBoxes(); refresh();
    };
    stage.addEventListener("pointermove", move);
    stage.addEventListener("pointerup", up);
    stage.addEventListener("pointercancel", up);
  });
  stage.tabIndex = -1;
  drawBoxes();
  return li;
}

// ------------------------------------------------------------------ requests

function paletteForWire() {
  return state.palette.map((p) => ({ hex: p.hex.toUpperCase(), ratio: `${(+p.ratio).toFixed(2)}%` }));
}

function parameters(s) {
  const p = {
    size: s.size === "custom" ? `${s.width}*${s.height}` : s.size,
    n: s.n,
    enable_sequential: s.sequential,
  };
  if (s.images.length === 0 && !s.sequential) p.thinking_mode = s.thinking;
  p.watermark = s.watermark;
  if (s.seed !== null) p.seed = s.seed;
  if (s.images.some((im) => im.boxes.length)) {
    p.bbox_list = s.images.map((im) => im.boxes.map((b) => [b.x1, b.y1, b.x2, b.y2]));
  }
  if (s.paletteOn && !s.sequential) p.color_palette = paletteForWire();
  return p;
}

function dashscopeBody(s) {
  const content = [{ text: s.prompt }, ...s.images.map((im) => ({ image: im.src }))];
  return { model: s.model, input: { messages: [{ role: "user", content }] }, parameters: parameters(s) };
}

function openaiBody(s, stream) {
  const { size, ...rest } = parameters(s);
  const body = { model: s.model, prompt: s.prompt, size: size.replace("*", "x"), ...rest };
  if (s.images.length) body.images = s.images.map((im) => im.src);
  if (stream) Object.assign(body, { stream: true, partial_images: 3, response_format: "b64_json" });
  return body;
}

function headers(extra = {}) {
  const h = { "Content-Type": "application/json", ...extra };
  const key = f.key.value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function callJson(path, options = {}) {
  const rsp = await fetch(api(path), { ...options, headers: headers(options.headers) });
  let body = null;
  try { body = await rsp.json(); } catch { /* not JSON */ }
  if (!rsp.ok) {
    const e = body?.error ?? body ?? {};
    throw apiError(e.message || `HTTP ${rsp.status}`, e.code || String(rsp.status), e.param);
  }
  return body;
}

function apiError(message, code, field) {
  return Object.assign(new Error(message), { code, field });
}

// ------------------------------------------------------------------ errors next to fields

const FIELD_ALIASES = {
  prompt: "prompt", content: "prompt", messages: "prompt", input: "prompt", text: "prompt",
  model: "model", size: "size", n: "n", seed: "seed", enable_sequential: "enable_sequential",
  color_palette: "color_palette", bbox_list: "images", image: "images", images: "images",
  authorization: "authorization",
};

function clearErrors() {
  document.querySelectorAll(".error").forEach((p) => { p.textContent = ""; });
  document.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
}

function showError(field, text) {
  const p = document.getElementById(`err-${field}`) || $("#err-general");
  p.textContent = text;
  const control = { prompt: f.prompt, model: f.model, size: f.size, n: f.n, seed: f.seed, authorization: f.key }[field];
  if (control) text ? control.setAttribute("aria-invalid", "true") : control.removeAttribute("aria-invalid");
  return p;
}

// Messages start with the field they are about: "size: …", "image 2: …", "bbox_list: …".
function placeError(err) {
  const m = /^\s*([A-Za-z_][\w-]*)(?:\s+(\d+))?\s*:\s*([\s\S]*)$/.exec(err.message || "");
  let field = "general", words = err.message || String(err);
  if (m) {
    const [, name, num, rest] = m;
    if (name === "image" && num && document.getElementById(`err-image-${num}`)) {
      field = `image-${num}`; words = `${t("field_image", { num })}: ${rest}`;
    } else if (FIELD_ALIASES[name.toLowerCase()]) {
      field = FIELD_ALIASES[name.toLowerCase()];
      words = `${t(`field_${field}`)}: ${rest}`;
    }
  } else if (err.field && FIELD_ALIASES[err.field]) {
    field = FIELD_ALIASES[err.field];
  } else if (err.code === "InvalidApiKey") {
    field = "authorization";
  }
  if (err.code === "InvalidApiKey") { field = "authorization"; words = `${t("field_authorization")}: ${err.message}`; }
  const p = showError(field, words);
  p.dataset.code = err.code || "";
  p.scrollIntoView?.({ block: "nearest" });
  return field;
}

function validate(s) {
  let ok = true;
  const fail = (field, text) => { showError(field, text); ok = false; };
  if (!s.prompt.trim()) fail("prompt", t("needPrompt"));
  const high = s.sequential ? 12 : 4;
  if (!Number.isInteger(s.n) || s.n < 1 || s.n > high) fail("n", t("badN", { high }));
  if (s.seed !== null && (!Number.isInteger(s.seed) || s.seed < 0 || s.seed > SEED_MAX)) fail("seed", t("badSeed", { max: SEED_MAX }));
  if (s.paletteOn && !s.sequential) {
    const sum = paletteSum();
    if (s.palette.length < 3 || s.palette.length > 10) fail("color_palette", t("paletteCount"));
    else if (Math.abs(sum - 100) > 1e-9) fail("color_palette", t("paletteTotal", { sum: sum.toFixed(2) }));
  }
  return ok;
}

// ------------------------------------------------------------------ running

function setRunning(on) {
  $("#run").disabled = on;
  $("#cancel").disabled = !on;
  $("#cancel").hidden = !on;
  document.body.classList.toggle("busy", on);
}

// setProgress(pct, "done", {n: 2}): the status line in words of the page's language.
function setProgress(pct, key, values = {}) {
  if (pct !== null) $("#progress").value = pct;
  if (key) { state.status = [key, values]; $("#status").textContent = t(key, values); }
}

async function run(event) {
  event?.preventDefault();
  if (state.run) return;
  clearErrors();
  if (!f.seedLock.checked || f.seed.value === "") f.seed.value = randomSeed();
  const s = readForm();
  refresh();
  state.invalid = !validate(s);
  if (state.invalid) { setProgress(null, "notSent"); return; }
  $("#results").replaceChildren(); $("#previews").replaceChildren(); $("#revised").hidden = true; state.shown = null;
  $("#hint").hidden = true;
  setRunning(true);
  setProgress(0, "submitting");
  if (matchMedia("(max-width: 860px)").matches) $(".output").scrollIntoView({ block: "start" });  // one column
  const entry = addHistory(s);
  try {
    if (s.transport === "stream") await runStream(s, entry);
    else await runTask(s, entry);
  } catch (err) {
    if (err.name === "AbortError") {
      setProgress(null, "stopped");
      updateHistory(entry.id, { status: "CANCELED" });
    } else {
      const where = placeError(err);
      setProgress(0, "failedAt", { code: err.code || "error", where: where === "general" ? t("aboveRun") : where.startsWith("image-") ? t("imageN", { k: where.slice(6) }) : t(`field_${where}`) });
      updateHistory(entry.id, { status: "FAILED", message: err.message });
    }
  } finally {
    state.run = null;
    setRunning(false);
    refreshGallery();
  }
}

function refreshGallery() {
  return loadGallery(galleryView());
}

function galleryView() {
  return {
    callJson, el, list: $("#gallery"), modeLabel, t, shortText, statusWord,
    onRunAgain: async (form) => {
      // The stored inputs come as signed URLs of this server, which it does not fetch from itself
      // (the SSRF guard refuses loopback): send their bytes inline instead.
      for (const im of form.images) {
        try {
          im.src = await readFile(await (await fetch(im.src)).blob());
          [im.width, im.height] = await loadSize(im.src);
        } catch { /* expired or unreachable: the server names the image when it is sent */ }
      }
      await writeForm(form);
      setProgress(null, "fromGallery");
      f.prompt.focus();
    },
  };
}

async function runTask(s, entry) {
  const body = await callJson("api/v1/services/aigc/image-generation/generation", {
    method: "POST", headers: { "X-DashScope-Async": "enable" }, body: JSON.stringify(dashscopeBody(s)),
  });
  const taskId = body.output.task_id;
  updateHistory(entry.id, { taskId, status: body.output.task_status });
  await followTask(taskId, entry.id, s);
}

async function followTask(taskId, entryId, s) {
  state.run = { transport: "task", taskId, entryId };
  setRunning(true);
  let seenRunning = false;
  for (;;) {
    const rsp = await callJson(`api/v1/tasks/${encodeURIComponent(taskId)}`);
    const out = rsp.output;
    const st = out.task_status;
    if (st === "PENDING") setProgress(0, "queued", { id: taskId.slice(0, 8) });
    else if (st === "RUNNING") {
      if (!seenRunning) { seenRunning = true; updateHistory(entryId, { status: st }); }
      const pct = out.progress ?? 0;
      // at 100 % the engine is done; encoding and storing the PNGs can still take seconds at 2K/4K
      setProgress(Math.min(pct, 99), out.cancel_requested ? "cancellingPct" : pct >= 100 ? "saving" : "runningPct", { pct });
    } else {
      updateHistory(entryId, { status: st });
      if (st === "SUCCEEDED") {
        const images = [], texts = [];
        for (const ch of out.choices || []) for (const c of ch.message?.content || []) {
          if (c.type === "image" || (c.image && !c.type)) images.push(c.image);
          else if (c.type === "text") texts.push(c.text);
        }
        setProgress(100, "done", { n: images.length });
        showResults(images, { revised: texts[0], seed: s?.seed, size: rsp.usage?.size, sequential: s?.sequential });
        updateHistory(entryId, { images, size: rsp.usage?.size, revised: texts[0] });
      } else if (st === "CANCELED") {
        setProgress(null, "canceled");
      } else if (st === "UNKNOWN") {
        setProgress(0, "unknownTask");
      } else {
        const err = apiError(out.message || "generation failed", out.code);
        placeError(err);
        setProgress(0, "failed", { code: out.code || "error" });
        updateHistory(entryId, { message: out.message });
      }
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function runStream(s, entry) {
  const abort = new AbortController();
  state.run = { transport: "stream", abort, entryId: entry.id };
  const rsp = await fetch(api("v1/images/generations"), {
    method: "POST", headers: headers(), body: JSON.stringify(openaiBody(s, true)), signal: abort.signal,
  });
  if (!rsp.ok) {
    const e = (await rsp.json().catch(() => ({}))).error || {};
    throw apiError(e.message || `HTTP ${rsp.status}`, e.code, e.param);
  }
  updateHistory(entry.id, { status: "RUNNING" });
  const reader = rsp.body.getReader(), dec = new TextDecoder();
  const images = [];
  let buf = "", size = null, partials = 0, revised = null;
  setProgress(5, "streaming");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const chunk = buf.slice(0, cut); buf = buf.slice(cut + 2);
      const isError = /^event: error/m.test(chunk);
      const data = chunk.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (!data) continue;
      const ev = JSON.parse(data);
      if (isError || ev.error) throw apiError(ev.error?.message || "generation failed", ev.error?.code, ev.error?.param);
      if (ev.type?.endsWith("partial_image")) {
        partials += 1;
        setProgress(Math.min(95, partials * 25), "partial", { n: partials });
        const img = el("img", { src: `data:image/png;base64,${ev.b64_json}`, alt: t("partialAlt", { n: partials }) });
        $("#previews").append(img);
      } else if (ev.type?.endsWith("completed")) {
        images.push(`data:image/png;base64,${ev.b64_json}`);
        size = ev.size;
        revised = ev.revised_prompt || revised;
      }
    }
  }
  showResults(images, { seed: s.seed, size, revised, sequential: s.sequential });
  // the PNGs themselves are megabytes: the browser's history keeps small JPEG copies
  updateHistory(entry.id, { status: "SUCCEEDED", size, revised, images: await Promise.all(images.map((src) => thumbnail(src))) });
  setProgress(100, "done", { n: images.length });
}

async function thumbnail(src, side = 256) {
  const img = new Image();
  img.src = src;
  await img.decode();
  const scale = Math.min(1, side / Math.max(img.naturalWidth, img.naturalHeight));
  const canvas = el("canvas", { width: Math.round(img.naturalWidth * scale), height: Math.round(img.naturalHeight * scale) });
  canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.8);
}

async function cancel() {
  const r = state.run;
  if (!r) return;
  $("#cancel").disabled = true;
  if (r.transport === "stream") { r.abort.abort(); return; }
  setProgress(null, "cancelling");
  try {
    await callJson(`api/v1/tasks/${encodeURIComponent(r.taskId)}/cancel`, { method: "POST" });
  } catch (err) {
    placeError(err);
  }
}

// Image i of n independent images used seed + i; an image set shares its seed (the engines draw
// the set as one story), so its cards say which image of the set they are.
export function seedLabel(seed, i, sequential) {
  if (seed == null) return null;
  return sequential ? t("setSeed", { i: i + 1, seed }) : t("seed", { seed: seed + i });
}

function showResults(images, { revised, seed, size, sequential = false }, scroll = true) {
  state.shown = [images, { revised, seed, size, sequential }];
  const list = $("#results");
  $("#hint").hidden = true;
  list.replaceChildren();
  if (revised) { $("#revised").hidden = false; $("#revised").textContent = t("revised", { text: revised }); }
  images.forEach((src, i) => {
    const link = el("a", { href: src, download: `wanimage-${seed ?? "x"}-${i + 1}.png`, textContent: t("download") });
    const seedText = seedLabel(seed, i, sequential);
    link.setAttribute("aria-label", t("downloadN", { i: i + 1 }));
    list.append(el("li", {},
      el("a", { href: src, target: "_blank", rel: "noopener" }, el("img", { src, alt: t("resultN", { i: i + 1 }), loading: "lazy" })),
      el("div", { className: "meta" },
        el("span", { textContent: size ? size.replace(/[*x]/, "×") : "" }),
        el("span", { className: "seed", textContent: seedText || "" }),
        link)));
  });
  if (scroll && images.length && matchMedia("(max-width: 860px)").matches) list.scrollIntoView({ block: "start", behavior: "smooth" });
}

// ------------------------------------------------------------------ code view

function shorten(value) {
  if (typeof value === "string" && value.startsWith("data:") && value.length > 80) {
    return `${value.slice(0, 40)}…(${Math.round(value.length / 1024)} KB)`;
  }
  if (Array.isArray(value)) return value.map(shorten);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shorten(v)]));
  return value;
}

function py(value, indent = 0) {
  const pad = " ".repeat(indent);
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null || value === undefined) return "None";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) {
    const flat = JSON.stringify(value);
    if (flat.length < 70 && !value.some((v) => v && typeof v === "object" && !Array.isArray(v))) return flat.replaceAll(",", ", ");
    return `[\n${value.map((v) => `${pad}    ${py(v, indent + 4)}`).join(",\n")},\n${pad}]`;
  }
  if (typeof value === "object") {
    const items = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${py(v, indent + 4)}`);
    const flat = `{${items.join(", ")}}`;
    if (flat.length < 70) return flat;
    return `{\n${items.map((i) => `${pad}    ${i}`).join(",\n")},\n${pad}}`;
  }
  return String(value);
}

function codeFor(flavour, s) {
  const base = baseUrl(), key = f.key.value.trim() ? "$WANIMAGE_API_KEY" : "sk-local";
  const stream = s.transport === "stream";
  if (flavour === "curl") {
    const body = JSON.stringify(shorten(dashscopeBody(s)), null, 2).replaceAll("'", "'\\''");
    const auth = f.key.value.trim() ? `  -H "Authorization: Bearer $WANIMAGE_API_KEY" \\\n` : "";
    if (stream) {
      const ob = JSON.stringify(shorten(openaiBody(s, true)), null, 2).replaceAll("'", "'\\''");
      return `curl -N ${base}/v1/images/generations \\\n${auth}  -H 'Content-Type: application/json' \\\n  -d '${ob}'`;
    }
    return `curl -s ${base}/api/v1/services/aigc/image-generation/generation \\\n${auth}  -H 'Content-Type: application/json' \\\n  -H 'X-DashScope-Async: enable' \\\n  -d '${body}'\n\n# then poll: curl -s ${base}/api/v1/tasks/$TASK_ID`;
  }
  const params = shorten(parameters(s));
  if (flavour === "dashscope") {
    const content = shorten(dashscopeBody(s).input.messages[0].content);
    const kw = Object.entries(params).map(([k, v]) => `    ${k}=${py(v, 4)},`).join("\n");
    return `import os
import dashscope
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message

dashscope.base_http_api_url = "${base}/api/v1"
msg = Message(role="user", content=${py(content)})
task = ImageGeneration.async_call(
    model=${py(s.model)},
    api_key=os.environ.get("WANIMAGE_API_KEY", "sk-local"),
    messages=[msg],
${kw}
)
rsp = ImageGeneration.wait(task=task, api_key=os.environ.get("WANIMAGE_API_KEY", "sk-local"))
print([c["image"] for ch in rsp.output.choices for c in ch["message"]["content"] if c.get("type") == "image"])`;
  }
  const { size, n, ...extra } = params;
  if (s.images.length) extra.images = shorten(s.images.map((im) => im.src));
  const streamArgs = stream ? "\n    stream=True,\n    partial_images=3," : "";
  const tail = stream
    ? "for event in rsp:\n    print(event.type)"
    : "print([d.url for d in rsp.data], rsp.data[0].revised_prompt)";
  return `import os
from openai import OpenAI

client = OpenAI(base_url="${base}/v1", api_key=os.environ.get("WANIMAGE_API_KEY", "${key === "sk-local" ? "sk-local" : "set-me"}"))
rsp = client.images.generate(
    model=${py(s.model)},
    prompt=${py(s.prompt)},
    size=${py(size.replace("*", "x"))},
    n=${n},${streamArgs}
    extra_body=${py(extra, 4)},
)
${tail}`;
}

function updateCode() {
  const s = readForm();
  if (s.seed === null) delete s.seed;
  $("#code").textContent = codeFor(state.flavour, { ...s, seed: s.seed ?? null });
}

// ------------------------------------------------------------------ history (localStorage)

function loadHistory() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
}

function saveHistory(list) {
  list = list.slice(0, HISTORY_MAX);
  // Inline images can be large: keep them while the whole history stays small.
  let text = JSON.stringify(list);
  for (let i = list.length - 1; i >= 0 && text.length > HISTORY_BYTES; i--) {
    const form = list[i].form;
    if (form.images.some((im) => im.src.startsWith("data:"))) {
      form.images = form.images.filter((im) => !im.src.startsWith("data:"));
      list[i].dropped = true;
      text = JSON.stringify(list);
    }
  }
  try { localStorage.setItem(HISTORY_KEY, text); } catch { /* storage full or disabled */ }
  renderHistory();
}

function addHistory(form) {
  const entry = { id: `${Date.now()}-${Math.random().toString(36).slice(2, 7)}`, time: Date.now(), status: "PENDING", form };
  saveHistory([entry, ...loadHistory()]);
  return entry;
}

function updateHistory(id, changes) {
  const list = loadHistory();
  const entry = list.find((e) => e.id === id);
  if (entry) { Object.assign(entry, changes); saveHistory(list); }
}

function renderHistory() {
  const list = $("#history");
  list.replaceChildren();
  const entries = loadHistory();
  if (!entries.length) list.append(el("li", { className: "note", textContent: t("historyEmpty") }));
  for (const e of entries) {
    const when = new Date(e.time).toLocaleTimeString(dateLocale(), { hour: "2-digit", minute: "2-digit" });
    const prompt = shortText(e.form.prompt, 70);
    const load = el("button", { type: "button", className: "history-load" },
      e.images?.[0] ? el("img", { src: e.images[0], alt: "", loading: "lazy" }) : el("span", { className: "no-thumb", ariaHidden: "true" }),
      el("span", { className: "h-text" },
        el("span", { className: "h-prompt", textContent: prompt || t("noPrompt") }),
        el("span", { className: "note", textContent: `${when} · ${e.form.model} · ${modeLabel(e.form)}${e.dropped ? t("notKept") : ""}` })),
      el("span", { className: `badge ${e.status.toLowerCase()}`, textContent: statusWord(e.status) }));
    load.setAttribute("aria-label", t("loadEntry", { prompt, status: statusWord(e.status) }));
    load.addEventListener("click", () => loadEntry(e));
    list.append(el("li", {}, load));
  }
}

async function loadEntry(e) {
  await writeForm({ ...e.form, seedLocked: true });  // the same seed again: lock it
  setProgress(null, "loadedAt", { when: new Date(e.time).toLocaleString(dateLocale()) });
  if (e.images?.length) showResults(e.images, { revised: e.revised, seed: e.form.seed, size: e.size, sequential: e.form.sequential });
  f.prompt.focus();
}

// Tasks that were running when the page closed are followed again.
async function resumeRunning() {
  const running = loadHistory().filter((e) => e.taskId && (e.status === "PENDING" || e.status === "RUNNING"));
  for (const e of running.reverse()) {
    if (state.run) break;
    setProgress(null, "resuming", { id: e.taskId.slice(0, 8) });
    try {
      await followTask(e.taskId, e.id, e.form);
    } catch (err) {
      placeError(err);
    } finally {
      state.run = null;
      setRunning(false);
    }
  }
}

// ------------------------------------------------------------------ models and key

async function loadModels() {
  try {
    const body = await callJson("v1/models");
    const ids = body.data.map((m) => m.id);
    if (ids.length) {
      const current = f.model.value;
      f.model.replaceChildren(...body.data.map((m) => el("option", { value: m.id, textContent: m.available === false ? t("unavailable", { id: m.id }) : m.id })));
      if (ids.includes(current)) f.model.value = current;
      servedModels = body.data;
      showServing();
    }
    if (f.key.value.trim()) document.querySelector(".key").classList.remove("needed");
  } catch (err) {
    if (err.code === "InvalidApiKey") {
      state.keyNeeded = true;
      showKeyNeeded();
      document.querySelector(".key").classList.add("needed");
    }
  }
}

// The header names what serves the chosen model, from /v1/models' `wanimage` extension; the
// built-in model says in one line that it is a small offline one, with the way to real images.
let servedModels = [];
function showServing() {
  const m = servedModels.find((x) => x.id === f.model.value);
  const s = m && m.wanimage;
  const line = $("#serving");
  if (!s || !s.engine) { line.replaceChildren(); return; }
  if (s.engine === "builtin") {
    line.replaceChildren(t("servingBuiltin", { id: m.id }),
      el("a", { href: "playground/presets", textContent: t("realImages") }));
    return;
  }
  line.replaceChildren(t("serving", { id: m.id, label: s.label, offDisk: s.on_disk === false, resident: s.resident }));
}

// ------------------------------------------------------------------ wiring

async function init() {
  applyLang(initialLang());
  document.querySelectorAll("[data-lang]").forEach((b) => b.addEventListener("click", () => {
    if (b.dataset.lang !== currentLang()) setLang(b.dataset.lang, true);
  }));
  renderExamples();
  f.key.value = sessionStorage.getItem(KEY_KEY) || "";
  f.key.addEventListener("input", () => { sessionStorage.setItem(KEY_KEY, f.key.value.trim()); showError("authorization", ""); });
  f.key.addEventListener("change", () => { loadModels(); updateCode(); });
  f.seed.value = randomSeed();
  $("#form").addEventListener("submit", run);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !state.run) { e.preventDefault(); run(e); }
  });
  $("#form").addEventListener("input", refresh);
  $("#form").addEventListener("change", refresh);
  f.model.addEventListener("change", showServing);
  $("#cancel").addEventListener("click", cancel);
  $("#reset").addEventListener("click", () => writeForm({ seed: randomSeed() }));
  $("#seed-new").addEventListener("click", () => { f.seed.value = randomSeed(); refresh(); });
  $("#palette-on").addEventListener("change", () => { if (f.paletteOn.checked) renderPalette(); });
  $("#swatch-add").addEventListener("click", () => {
    if (state.palette.length < 10) state.palette.push({ hex: "#888888", ratio: "0.00" });
    renderPalette(); refresh();
  });
  $("#swatch-even").addEventListener("click", evenSplit);
  $("#files").addEventListener("change", async (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    await addImages(await Promise.all(files.map(async (file) => ({ src: await readFile(file), name: file.name }))));
  });
  $("#add-url").addEventListener("click", async () => {
    const url = $("#image-url").value.trim();
    if (!url) return;
    $("#image-url").value = "";
    await addImages([{ src: url, name: url.split("/").pop() }]);
  });
  $("#image-url").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); $("#add-url").click(); } });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const files = [...e.dataTransfer.files].filter((file) => file.type.startsWith("image/"));
    if (files.length) await addImages(await Promise.all(files.map(async (file) => ({ src: await readFile(file), name: file.name }))));
    else {
      const url = e.dataTransfer.getData("text/uri-list") || e.dataTransfer.getData("text/plain");
      if (url) await addImages([{ src: url.trim(), name: url.trim().split("/").pop() }]);
    }
  });
  document.addEventListener("paste", async (e) => {
    const files = [...(e.clipboardData?.files || [])].filter((file) => file.type.startsWith("image/"));
    if (files.length) await addImages(await Promise.all(files.map(async (file) => ({ src: await readFile(file), name: file.name || "pasted" }))));
  });
  const tabs = [...document.querySelectorAll("[role=tab]")];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => {
      state.flavour = tab.dataset.flavour;
      tabs.forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
      updateCode();
    });
    tab.addEventListener("keydown", (e) => {
      const d = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (d) { const next = tabs[(i + d + tabs.length) % tabs.length]; next.focus(); next.click(); }
    });
  });
  $("#code-box").addEventListener("toggle", updateCode);
  $("#copy-code").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#code").textContent); $("#copy-code").textContent = t("copied"); }
    catch { $("#copy-code").textContent = t("copyByHand"); }
    setTimeout(() => { $("#copy-code").textContent = t("copy"); }, 1500);
  });
  $("#history-clear").addEventListener("click", () => { localStorage.removeItem(HISTORY_KEY); renderHistory(); });
  renderPalette();
  renderHistory();
  refresh();
  loadModels();
  resumeRunning();
  $("#gallery-refresh").addEventListener("click", refreshGallery);
  await refreshGallery();  // "ready" means every part of the page has drawn once
  document.body.dataset.ready = "true";
}

init();
