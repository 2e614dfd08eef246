"""MkDocs hooks for the documentation site (mkdocs.yml names this file).

- Docstring roles: the API reference renders docstrings as Markdown, where ``:class:`X```
  would show the role name in front of the code span; the role adds nothing a reader needs.
- Tutorials: a page in docs/tutorials holding ``<!-- tutorial: NAME.py -->`` is rendered
  from that jupytext script (Markdown cells as text, code cells as code), each code cell
  followed by what it printed on the last run of ``scripts/run_tutorials.py``. The script
  stays the single source: the test suite executes it, the site shows it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const|py:\w+):(?=<code>)")
_TUTORIAL = re.compile(r"<!-- tutorial: (?P<name>[\w.-]+\.py) -->")


def on_page_content(html, **kwargs):
    return _ROLE.sub("", html)


def _render(script: Path) -> str:
    import jupytext

    notebook = jupytext.read(script)
    stored = script.parent / "output" / f"{script.stem}.json"
    record = json.loads(stored.read_text()) if stored.is_file() else None
    outputs = iter(record["outputs"] if record else [])
    parts: list[str] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        parts.append(f"```python\n{cell.source}\n```")
        text = next(outputs, "")
        if text.strip():
            parts.append(f"```text\n{text.rstrip()}\n```")
    if record:
        parts.append(f"*Outputs from the last run of `scripts/run_tutorials.py`: {record['seconds']} s on a CPU, "
                     f"Python {record['python']}.* [Download the script]({script.name}).")
    else:
        parts.append(f"*Run `python scripts/run_tutorials.py` to show outputs here.* [Download the script]({script.name}).")
    return "\n\n".join(parts)


def on_page_markdown(markdown, page, config, **kwargs):
    match = _TUTORIAL.search(markdown)
    if not match:
        return markdown
    script = Path(config["docs_dir"]) / Path(page.file.src_path).parent / match["name"]
    return markdown.replace(match.group(0), _render(script))
