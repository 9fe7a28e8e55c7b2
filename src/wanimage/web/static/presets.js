// /playground/presets: the same 中文 / English switch as the playground, the same remembered
// choice (i18n.js keeps it in localStorage), so both pages speak the language last picked.
import { applyLang, initialLang } from "./i18n.js";

applyLang(initialLang());
for (const button of document.querySelectorAll("[data-lang]")) {
  button.addEventListener("click", () => applyLang(button.dataset.lang, true));
}
document.body.dataset.ready = "true";
