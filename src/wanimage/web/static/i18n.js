// The page's words in English and Chinese. Static text lives in index.html (English) and is
// marked `data-i18n="key"` (also -placeholder, -title, -label for aria-label); the English words
// are read from the page itself, so only the Chinese ones are written here. Words made by the
// script are in both tables. API error messages are never translated: they are shown as sent.

export const LANG_KEY = "wanimage.playground.lang";
const MARKS = { i18n: "textContent", i18nPlaceholder: "placeholder", i18nTitle: "title" };

// Words made by the script; a function takes the values it names.
const EN = {
  nNote: "1–4 images", nNoteSet: "1–12: an upper bound for the set",
  thinkingOff: (v) => `Thinking mode applies only to text-to-image; ${v.why}.`,
  thinkingNote: "Plans the picture before drawing (text-to-image only).",
  thinkingWhyImages: "not used with input images", thinkingWhySet: "not used for image sets",
  size4k: "4K (≈4096×4096)", no4kModel: "4K needs wan2.7-image-pro", no4kMode: "4K only for text-to-image without an image set",
  sizeLast: "Tiers keep the aspect ratio of the last input image.", sizeSquare: "Tiers give a square image.",
  sizeCustom: (v) => `Total pixels between 768×768 and ${v.side}×${v.side}, sides within 1:8…8:1 — now ${v.mp} MP${v.ok ? "" : " (outside the bounds)"}.`,
  paletteNote: "3–10 colours whose shares add up to 100 %.",
  paletteNoSet: "Not available for image sets.", paletteSum: (v) => `Sum ${v.sum} %`,
  colour: (v) => `Colour ${v.i}`, colourShare: (v) => `Share of colour ${v.i} in percent`, colourRemove: (v) => `Remove colour ${v.i}`,
  tooManyImages: (v) => `At most ${v.max} input images; the rest were not added.`,
  imageN: (v) => `image ${v.k}`, imageAlt: (v) => `image ${v.k}: ${v.name || "input"}`, stage: (v) => `image ${v.k}: drag to draw a box`,
  addBox: "Add box", addBoxTo: (v) => `Add a box to image ${v.k}`, moveEarlier: (v) => `Move image ${v.k} earlier`,
  remove: "Remove", removeImage: (v) => `Remove image ${v.k}`, sizeUnknown: "size unknown",
  boxAria: (v) => `image ${v.k} box ${v.j}: ${v.x1}, ${v.y1} to ${v.x2}, ${v.y2}. Arrow keys move, Shift+arrows resize, Delete removes.`,
  deleteBox: (v) => `Delete box ${v.j} of image ${v.k}`, boxCoords: (v) => `box ${v.j}: ${v.coords}`,
  tooManyBoxes: (v) => `At most ${v.max} boxes per image; delete one first.`,
  field_prompt: "Prompt", field_model: "Model", field_size: "Size", field_n: "Number of images", field_seed: "Seed",
  field_enable_sequential: "Image set", field_color_palette: "Colour palette", field_images: "Input images",
  field_authorization: "API key", field_image: (v) => `Image ${v.num}`,
  needPrompt: "Prompt: write what to draw (every mode needs a prompt).",
  badN: (v) => `Number of images: use 1 to ${v.high}.`, badSeed: (v) => `Seed: use 0 to ${v.max}.`,
  paletteCount: "Colour palette: use 3 to 10 colours.",
  paletteTotal: (v) => `Colour palette: the shares add up to ${v.sum} %, not 100 %. Adjust them or use Even split.`,
  ready: "Ready.", notSent: "Not sent: fix the marked fields.", submitting: "Submitting…", stopped: "Stopped.",
  failedAt: (v) => `Failed: ${v.code} (see ${v.where}).`, aboveRun: "above the Run button", failed: (v) => `Failed: ${v.code}.`,
  fromGallery: "Loaded from the server's gallery, seed locked.", queued: (v) => `Queued (task ${v.id}).`,
  cancellingPct: (v) => `Cancelling… ${v.pct} %`, saving: "Saving images…", runningPct: (v) => `Running… ${v.pct} %`,
  done: (v) => `Done: ${v.n} image${v.n === 1 ? "" : "s"}.`, canceled: "Canceled.", unknownTask: "The task is unknown or expired on the server.",
  streaming: "Running… (streaming)", partial: (v) => `Running… partial preview ${v.n}`, partialAlt: (v) => `partial preview ${v.n}`,
  cancelling: "Cancelling…", setSeed: (v) => `set image ${v.i} · seed ${v.seed}`, seed: (v) => `seed ${v.seed}`,
  revised: (v) => `Revised prompt: ${v.text}`, download: "Download", downloadN: (v) => `Download image ${v.i}`, resultN: (v) => `result ${v.i}`,
  historyEmpty: "Nothing yet: runs from this browser appear here.", noPrompt: "(no prompt)", notKept: " (inline images not kept)",
  loadEntry: (v) => `Load this request into the form: ${v.prompt} (${v.status})`, loadedAt: (v) => `Loaded the request from ${v.when}.`,
  resuming: (v) => `Resuming task ${v.id}…`, unavailable: (v) => `${v.id} (unavailable)`,
  keyNeeded: "This server requires an API key.", keyPlaceholder: "required: Bearer key",
  servingBuiltin: (v) => `Serving ${v.id} with the built-in model: a small offline model (flat emoji-style sprites). `,
  realImages: "Real images: model presets",
  serving: (v) => `Serving ${v.id} with ${v.label}${v.offDisk ? "; weights NOT on disk" : ""}${v.resident ? "; resident" : ""}`,
  copied: "Copied", copyByHand: "Select and copy", copy: "Copy",
  galleryKey: "The server's gallery needs a valid API key.", galleryEmpty: "No tasks on the server in the last 24 hours.",
  runAgain: "Run again", runAgainAria: (v) => `Load into the form and run again: ${v.prompt}`,
  modeT2I: "text-to-image", modeSet: "image set",
  modeOf: (v) => `${{ set: "image set from", box: "box edit of", edit: "edit of" }[v.what]} ${v.n} image${v.n === 1 ? "" : "s"}`,
  status_pending: "pending", status_running: "running", status_succeeded: "succeeded", status_failed: "failed",
  status_canceled: "canceled", status_unknown: "unknown",
  examples: [
    "A red apple on a wooden table",
    "Two dogs playing with a ball in the park, watercolour",
    "A yellow taxi on a rainy street at night",
    "A bowl of ramen, seen from above",
  ],
};

const ZH = {
  // index.html
  title: "wanimage 体验台", skip: "跳到“生成”按钮", playground: "体验台", links: "链接", apiRef: "API 参考",
  apiKey: "API 密钥", keyNotNeeded: "此服务器无需密钥", request: "请求",
  model: "模型", modelNote: "wan2.7-image-pro：质量更高，文生图可达 4K。wan2.7-image：更快，最高 2K。",
  prompt: "提示词", promptPlaceholder: "木桌上的一个红苹果。用“图1”“图2”……指代输入图片",
  examplesLabel: "示例：",
  inputImages: "输入图片", inputImagesNote: "（0–9 张；每张最多画 2 个框）",
  dropHere: "把图片拖到这里，或", chooseFiles: "选择文件", imageUrl: "图片网址",
  urlPlaceholder: "或粘贴图片网址（https://…）", addUrl: "添加网址",
  imagesNote: "每边 240–8000 像素，JPEG / PNG / WEBP / BMP。在图片上拖动即可画框；拖动框可移动，拖动角可缩放；方向键移动选中的框（Shift+方向键缩放，Ctrl 每次 1 像素），Delete 删除。",
  size: "尺寸", size1k: "1K（约 1024×1024）", size2k: "2K（约 2048×2048）", size4k: "4K（约 4096×4096）",
  sizeCustomOption: "自定义 宽×高", width: "宽", height: "高",
  nLabel: "图片数量（n）", sequential: "组图（enable_sequential）",
  sequentialNote: "一组连贯的图片，最多 12 张；此时 n 为上限。",
  thinking: "思考模式", thinkingNote: "先规划画面再绘制（仅文生图）。",
  watermark: "水印（右下角“AI 生成”）",
  seedLabel: "随机种子", newSeed: "新种子", newSeedTitle: "换一个随机种子", lock: "锁定",
  seedNote: "除非锁定，每次运行都随机（0–2147483647）。",
  palette: "色板", paletteNote: "3–10 种颜色，占比合计 100 %。", addColour: "添加颜色", evenSplit: "平均分配",
  runThrough: "调用方式", transportTask: "DashScope 任务（进度、取消、恢复）", transportStream: "OpenAI 流式（局部预览）",
  run: "生成", reset: "重置表单", result: "结果", progress: "进度", cancel: "取消",
  hint: "结果显示在这里。本页只调用服务器的公开 API；展开“请求代码”可看到对应的 curl、dashscope 或 openai 代码。",
  previews: "局部预览", results: "生成的图片", asCode: "请求代码", codeFlavour: "代码类型", code: "代码",
  codeNote: "内嵌图片在此处已缩短；请换成你自己的文件或网址。",
  history: "历史", thisBrowser: "（本浏览器）", clearHistory: "清空历史",
  gallery: "图库", onServer: "（服务器上，最近 24 小时）", galleryAria: "服务器上的任务", refreshGallery: "刷新图库",
  // /playground/presets (web/presets.py)
  presetsTitle: "wanimage 模型预设", presetsHeading: "模型预设",
  presetsBuiltin: "本服务器的内置模型是一个小型离线模型：它画扁平的 emoji 风格图案，无需下载。想要真实图片，请选一个适合你机器的预设（",
  presetsMarks: " 会标出哪些适合），然后：",
  presetsGpu: "GPU 预设用法相同：", presetsOffline: "离线机器：在别处运行下面第一条命令，把文件夹带过来，再用第二条载入：",
  presetsDetails: "详情见 wanimage 源码中的 docs/diffusers.md。",
  thPreset: "预设", thWhat: "内容", thRunsOn: "运行于", thCheckpoints: "权重", thLicence: "许可证", thDownload: "下载大小",
  thMemory: "内存（权重）", thSpeed: "速度", presetsBack: "返回体验台",
  // app.js
  nNote: "1–4 张", nNoteSet: "1–12：组图的上限",
  thinkingOff: (v) => `思考模式只用于文生图；${v.why}。`,
  thinkingWhyImages: "有输入图片时不使用", thinkingWhySet: "组图不使用",
  no4kModel: "4K 需要 wan2.7-image-pro", no4kMode: "4K 只用于不含组图的文生图",
  sizeLast: "档位沿用最后一张输入图片的宽高比。", sizeSquare: "档位生成正方形图片。",
  sizeCustom: (v) => `总像素介于 768×768 与 ${v.side}×${v.side} 之间，宽高比在 1:8…8:1 内——当前 ${v.mp} MP${v.ok ? "" : "（超出范围）"}。`,
  paletteNoSet: "组图不可用。", paletteSum: (v) => `合计 ${v.sum} %`,
  colour: (v) => `颜色 ${v.i}`, colourShare: (v) => `颜色 ${v.i} 的占比（百分比）`, colourRemove: (v) => `删除颜色 ${v.i}`,
  tooManyImages: (v) => `最多 ${v.max} 张输入图片；其余未添加。`,
  imageN: (v) => `图${v.k}`, imageAlt: (v) => `图${v.k}：${v.name || "输入"}`, stage: (v) => `图${v.k}：拖动以画框`,
  addBox: "添加框", addBoxTo: (v) => `给图${v.k}添加框`, moveEarlier: (v) => `把图${v.k}前移`,
  remove: "移除", removeImage: (v) => `移除图${v.k}`, sizeUnknown: "尺寸未知",
  boxAria: (v) => `图${v.k} 框 ${v.j}：${v.x1}, ${v.y1} 到 ${v.x2}, ${v.y2}。方向键移动，Shift+方向键缩放，Delete 删除。`,
  deleteBox: (v) => `删除图${v.k}的框 ${v.j}`, boxCoords: (v) => `框 ${v.j}：${v.coords}`,
  tooManyBoxes: (v) => `每张图最多 ${v.max} 个框；请先删除一个。`,
  field_prompt: "提示词", field_model: "模型", field_size: "尺寸", field_n: "图片数量", field_seed: "随机种子",
  field_enable_sequential: "组图", field_color_palette: "色板", field_images: "输入图片",
  field_authorization: "API 密钥", field_image: (v) => `图${v.num}`,
  needPrompt: "提示词：请写下要画什么（每种模式都需要提示词）。",
  badN: (v) => `图片数量：请填 1 到 ${v.high}。`, badSeed: (v) => `随机种子：请填 0 到 ${v.max}。`,
  paletteCount: "色板：请用 3 到 10 种颜色。",
  paletteTotal: (v) => `色板：占比合计 ${v.sum} %，不是 100 %。请调整，或点“平均分配”。`,
  ready: "就绪。", notSent: "未发送：请修改标出的字段。", submitting: "提交中…", stopped: "已停止。",
  failedAt: (v) => `失败：${v.code}（见${v.where}）。`, aboveRun: "“生成”按钮上方", failed: (v) => `失败：${v.code}。`,
  fromGallery: "已从服务器图库载入，种子已锁定。", queued: (v) => `排队中（任务 ${v.id}）。`,
  cancellingPct: (v) => `取消中… ${v.pct} %`, saving: "保存图片中…", runningPct: (v) => `生成中… ${v.pct} %`,
  done: (v) => `完成：${v.n} 张图片。`, canceled: "已取消。", unknownTask: "服务器上没有这个任务，或已过期。",
  streaming: "生成中…（流式）", partial: (v) => `生成中… 局部预览 ${v.n}`, partialAlt: (v) => `局部预览 ${v.n}`,
  cancelling: "取消中…", setSeed: (v) => `组图第 ${v.i} 张 · 种子 ${v.seed}`, seed: (v) => `种子 ${v.seed}`,
  revised: (v) => `改写后的提示词：${v.text}`, download: "下载", downloadN: (v) => `下载第 ${v.i} 张`, resultN: (v) => `结果 ${v.i}`,
  historyEmpty: "还没有记录：在本浏览器中的运行会显示在这里。", noPrompt: "（无提示词）", notKept: "（内嵌图片未保留）",
  loadEntry: (v) => `把这个请求载入表单：${v.prompt}（${v.status}）`, loadedAt: (v) => `已载入 ${v.when} 的请求。`,
  resuming: (v) => `继续跟进任务 ${v.id}…`, unavailable: (v) => `${v.id}（不可用）`,
  keyNeeded: "此服务器需要 API 密钥。", keyPlaceholder: "必填：Bearer 密钥",
  servingBuiltin: (v) => `${v.id} 由内置模型提供：一个小型离线模型（扁平的 emoji 风格图案）。`,
  realImages: "真实图片：模型预设",
  serving: (v) => `${v.id} 由 ${v.label} 提供${v.offDisk ? "；权重不在磁盘上" : ""}${v.resident ? "；已常驻内存" : ""}`,
  copied: "已复制", copyByHand: "请手动选择并复制", copy: "复制",
  galleryKey: "服务器图库需要有效的 API 密钥。", galleryEmpty: "最近 24 小时服务器上没有任务。",
  runAgain: "再次生成", runAgainAria: (v) => `载入表单并再次生成：${v.prompt}`,
  modeT2I: "文生图", modeSet: "组图",
  modeOf: (v) => `${{ set: "由", box: "框选编辑", edit: "编辑" }[v.what]} ${v.n} 张图片${v.what === "set" ? "生成组图" : ""}`,
  status_pending: "排队中", status_running: "生成中", status_succeeded: "成功", status_failed: "失败",
  status_canceled: "已取消", status_unknown: "未知",
  examples: [
    "木桌上的一个红苹果",
    "两只狗在公园里玩球，水彩风格",
    "雨夜街头的一辆黄色出租车",
    "俯视角度的一碗拉面",
  ],
};

let lang = "en";

export function initialLang() {
  let stored = null;
  try { stored = localStorage.getItem(LANG_KEY); } catch { /* storage disabled */ }
  if (stored === "en" || stored === "zh") return stored;
  return /^zh\b/i.test(navigator.language || "") ? "zh" : "en";
}

export function currentLang() { return lang; }

// t("done", {n: 2}) -> the words in the page's language (English when Chinese has none).
export function t(key, values = {}) {
  const words = (lang === "zh" && key in ZH) ? ZH[key] : EN[key];
  if (words === undefined) return key;
  return typeof words === "function" ? words(values) : words;
}

// Puts the page's static words in `next` ("en" | "zh"); remembers the choice when `remember`.
export function applyLang(next, remember = false) {
  lang = next;
  if (remember) { try { localStorage.setItem(LANG_KEY, next); } catch { /* storage disabled */ } }
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n], [data-i18n-placeholder], [data-i18n-title], [data-i18n-label]")) {
    for (const [mark, prop] of [...Object.entries(MARKS), ["i18nLabel", "aria-label"]]) {
      const key = node.dataset[mark];
      if (!key) continue;
      const english = `en${mark}`;
      if (!(english in node.dataset)) node.dataset[english] = prop === "aria-label" ? node.getAttribute(prop) : node[prop];
      const text = next === "zh" && key in ZH ? ZH[key] : node.dataset[english];
      if (prop === "aria-label") node.setAttribute(prop, text); else node[prop] = text;
    }
  }
  for (const button of document.querySelectorAll("[data-lang]")) button.setAttribute("aria-pressed", String(button.dataset.lang === next));
}
