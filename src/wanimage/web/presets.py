"""`/playground/presets`: the model presets and the three commands to real images, as a page the
playground links to (it works offline; docs/diffusers.md has the same table, from the same code).
Its words switch between English and Chinese with the playground's own switch and memory
(static/presets.js, static/i18n.js); the table's rows are the presets' data, as `wanimage presets`
prints them."""

from __future__ import annotations

from html import escape


def presets_page(presets: list, repos: dict) -> str:
    """`presets`: the presets `wanimage pull` knows; `repos`: their checkpoints by repository id
    (both from the service, ImageService.presets)."""
    rows = []
    for p in presets:
        checkpoints = "<br>".join(
            f'<a href="{escape(repos[r].page)}">{escape(r)}</a>{" (gated)" if repos[r].gated else ""}' for r in p.repos)
        speed = escape(p.speed) + (f' (<a href="{escape(p.speed_source)}">source</a>)'
                                   if p.speed_source.startswith("http") else "")
        rows.append(f"<tr><td><code>{escape(p.name)}</code></td><td>{escape(p.title)}</td><td>{escape(p.device)}</td>"
                    f"<td>{checkpoints}</td><td>{escape('; '.join(p.licences))}</td>"
                    f"<td>{p.download_bytes / 1e9:.1f} GB</td><td>{p.memory_bytes / 1e9:.1f} GB</td><td>{speed}</td></tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title data-i18n="presetsTitle">wanimage model presets</title><link rel="stylesheet" href="app.css">
<script type="module" src="presets.js"></script></head>
<body><main class="panel" style="max-width: 70rem; margin: 1rem auto">
<div class="lang" role="group" aria-label="Language / 语言">
  <button type="button" data-lang="zh" lang="zh" aria-pressed="false">中文</button>
  <button type="button" data-lang="en" lang="en" aria-pressed="true">English</button>
</div>
<h1 data-i18n="presetsHeading">Model presets</h1>
<p><span data-i18n="presetsBuiltin">This server's built-in model is a small offline one: it draws flat emoji-style sprites, with no download.
For real images, pick a preset that fits your machine (</span><code>wanimage presets</code><span data-i18n="presetsMarks"> marks them), then:</span></p>
<pre>wanimage pull sd-turbo            # 2.9 GB; runs on a CPU
wanimage serve --preset sd-turbo</pre>
<p><span data-i18n="presetsGpu">A GPU preset works the same way:</span> <code>wanimage pull z-image-turbo</code>.
<span data-i18n="presetsOffline">Offline machines: run this elsewhere, carry the folder, then load it:</span>
<code>wanimage pull NAME --to DIR</code>, <code>wanimage pull NAME --from DIR</code>.
<span data-i18n="presetsDetails">Details: docs/diffusers.md in the wanimage sources.</span></p>
<table><thead><tr><th data-i18n="thPreset">preset</th><th data-i18n="thWhat">what</th><th data-i18n="thRunsOn">runs on</th>
<th data-i18n="thCheckpoints">checkpoints</th><th data-i18n="thLicence">licence</th><th data-i18n="thDownload">download</th>
<th data-i18n="thMemory">memory (weights)</th><th data-i18n="thSpeed">speed</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p><a href="../playground" data-i18n="presetsBack">Back to the playground</a></p>
</main></body></html>
"""
