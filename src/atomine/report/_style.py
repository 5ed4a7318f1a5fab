"""Inline stylesheet of the HTML report (no external fonts or files: the report must work offline)."""

CSS = """
:root { --fg: #1d2329; --muted: #5c6670; --line: #d8dde2; --accent: #1f5f99; --bg-alt: #f4f6f8; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0; line-height: 1.45; font-size: 15px; }
header { padding: 1.2rem 2rem 0.6rem; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 0.2rem; font-size: 1.6rem; }
header p { margin: 0.1rem 0; color: var(--muted); }
nav { padding: 0.6rem 2rem; background: var(--bg-alt); border-bottom: 1px solid var(--line); }
nav ol { margin: 0; padding-left: 1.2rem; columns: 2; }
nav a { color: var(--accent); text-decoration: none; }
main { padding: 0 2rem 2rem; max-width: 1400px; }
section { margin-top: 1.6rem; }
section section { margin-top: 1rem; padding-left: 0.8rem; border-left: 3px solid var(--line); }
h2 { font-size: 1.35rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem; }
h3 { font-size: 1.1rem; margin-bottom: 0.4rem; }
h4 { font-size: 1rem; margin-bottom: 0.3rem; }
figure { margin: 0.6rem 0; display: inline-block; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.88rem; max-width: 60ch; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.row > * { flex: 0 1 auto; }
table.data { border-collapse: collapse; font-size: 0.85rem; margin: 0.4rem 0; }
table.data th, table.data td { border: 1px solid var(--line); padding: 0.2rem 0.5rem; text-align: right; }
table.data th { background: var(--bg-alt); }
table.data td:first-child, table.data th:first-child { text-align: left; }
.caption { color: var(--muted); font-size: 0.88rem; margin: 0.2rem 0; }
.note { color: var(--muted); font-style: italic; }
.warn { color: #8a5a00; }
footer { padding: 1rem 2rem; color: var(--muted); font-size: 0.8rem; border-top: 1px solid var(--line); }
"""
