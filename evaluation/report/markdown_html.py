"""The Markdown tables (results/table_*.md) as self-contained HTML pages, for Snakemake's report.

`snakemake --report` embeds a CSV only as a download (its viewer shows images and HTML, not tables), so
each table rule also writes the .md as .html and marks that for the report. Only the Markdown the table
writers produce is understood: a `# title`, paragraphs (with **bold**), `- ` notes and one pipe table.
"""

import html
import re

STYLE = ("body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse}"
         "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right;white-space:nowrap}"
         "th{background:#eee}td:first-child,th:first-child{text-align:left}")


def inline(text):
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def table_cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_to_html(text):
    out, notes, rows = [], [], []

    def flush_notes():
        if notes:
            out.append("<ul>" + "".join(f"<li>{inline(n)}</li>" for n in notes) + "</ul>")
            notes.clear()

    for line in text.splitlines():
        if line.startswith("- "):
            notes.append(line[2:])
            continue
        flush_notes()
        if line.startswith("|"):
            if not set(line) <= set("|-: "):          # the |---|---| separator carries nothing
                rows.append(table_cells(line))
        elif line.startswith("# "):
            out.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush_notes()
    if rows:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>{''.join(out)}</body></html>\n"
