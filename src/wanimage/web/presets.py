"""`/playground/presets`: the model presets and the three commands to real images, as a page the
playground links to (it works offline; docs/diffusers.md has the same table, from the same code)."""

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
<title>wanimage model presets</title><link rel="stylesheet" href="app.css"></head>
<body><main class="panel" style="max-width: 70rem; margin: 1rem auto">
<h1>Model presets</h1>
<p>This server's built-in model is a small offline one: it draws flat emoji-style sprites, with no download.
For real images, pick a preset that fits your machine (<code>wanimage presets</code> marks them), then:</p>
<pre>wanimage pull sd-turbo            # 2.9 GB; runs on a CPU
wanimage serve --preset sd-turbo</pre>
<p>A GPU preset works the same way (<code>wanimage pull z-image-turbo</code>, ...). Offline machines:
<code>wanimage pull NAME --to DIR</code> elsewhere, carry DIR, then <code>wanimage pull NAME --from DIR</code>.
Details: docs/diffusers.md in the wanimage sources.</p>
<table><thead><tr><th>preset</th><th>what</th><th>runs on</th><th>checkpoints</th><th>licence</th>
<th>download</th><th>memory (weights)</th><th>speed</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p><a href="../playground">Back to the playground</a></p>
</main></body></html>
"""
