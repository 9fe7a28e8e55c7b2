// The server's gallery: this key's tasks of the last 24 h from GET /api/v1/tasks, so past runs
// survive a cleared browser for as long as the server keeps them. "Run again" loads one into
// the form (its seed locked); the request comes from the list's `request` extension.

const PAGE_SIZE = 24;

export function formFromTask(task) {
  const r = task.request || {};
  const tier = ["1K", "2K", "4K"].includes(r.size);
  const [w, h] = tier ? [0, 0] : String(r.size || "").split("*").map(Number);
  const boxes = r.bbox_list || [];
  return {
    model: task.model, prompt: r.prompt || "", size: tier ? r.size : "custom", width: w, height: h,
    n: r.n || 1, sequential: !!r.enable_sequential, thinking: r.thinking_mode !== false, watermark: !!r.watermark,
    seed: r.seed ?? null, seedLocked: true,
    paletteOn: !!r.color_palette, palette: (r.color_palette || []).map((p) => ({ hex: p.hex, ratio: parseFloat(p.ratio).toFixed(2) })),
    transport: "task",
    images: (r.images || []).filter(Boolean).map((src, i) => ({
      src, name: `image ${i + 1}`, width: 0, height: 0,
      boxes: (boxes[i] || []).map(([x1, y1, x2, y2]) => ({ x1, y1, x2, y2 })),
    })),
  };
}

function imagesOf(task) {
  return (task.choices || []).flatMap((ch) => (ch.message?.content || []).filter((c) => c.image).map((c) => c.image));
}

// The last answer, kept so that a language switch redraws the list at once in the new words
// instead of asking again; and a count of loads, because answers can come back out of order
// (a run's end and the Refresh button both reload) and only the latest may draw.
let last = null;
let loads = 0;

export async function loadGallery(view) {
  const mine = ++loads;
  view.list.setAttribute("aria-busy", "true");
  let body = null;
  try {
    body = await view.callJson(`api/v1/tasks?page_size=${PAGE_SIZE}`);
  } catch { /* drawn as "needs a key" below */ }
  if (mine !== loads) return;
  last = { body };
  view.list.removeAttribute("aria-busy");
  renderGallery(view);
}

// Draws the last answer in the page's current language; nothing before the first answer.
export function renderGallery({ el, list, modeLabel, t, shortText, statusWord, onRunAgain }) {
  if (!last) return;
  if (!last.body) {
    list.replaceChildren(el("li", { className: "note", textContent: t("galleryKey") }));
    return;
  }
  const tasks = last.body.tasks || [];
  list.replaceChildren();
  if (!tasks.length) list.append(el("li", { className: "note", textContent: t("galleryEmpty") }));
  for (const task of tasks) {
    const form = formFromTask(task);
    const [first] = imagesOf(task);
    const again = el("button", { type: "button", className: "small", textContent: t("runAgain") });
    again.setAttribute("aria-label", t("runAgainAria", { prompt: form.prompt }));
    again.addEventListener("click", () => onRunAgain(form));
    const facts = [modeLabel(form), task.request?.size, form.seed != null && t("seed", { seed: form.seed }), task.model]
      .filter(Boolean).join(" · ");
    list.append(el("li", { className: "gallery-item" },
      first ? el("a", { href: first, target: "_blank", rel: "noopener" }, el("img", { src: first, alt: form.prompt, loading: "lazy" }))
        : el("span", { className: "no-thumb", ariaHidden: "true" }),
      el("span", { className: "g-text" },
        el("span", { className: "h-prompt", textContent: shortText(form.prompt, 90) }),
        el("span", { className: "note", textContent: facts }),
        el("span", { className: `badge ${String(task.task_status).toLowerCase()}`, textContent: statusWord(task.task_status) })),
      again));
  }
}
