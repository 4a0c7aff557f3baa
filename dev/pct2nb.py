"Convert a jupytext percent-format script to a notebook, keeping cells as written."
import sys, nbformat
from pathlib import Path

def convert(src):
    src = Path(src); text = src.read_text()
    cells, kind, buf = [], None, []
    def flush():
        if kind is None: return
        body = "\n".join(buf).strip("\n")
        if kind == "md":
            body = "\n".join(l[2:] if l.startswith("# ") else l[1:] if l.startswith("#") else l for l in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body))
        elif body: cells.append(nbformat.v4.new_code_cell(body))
    for line in text.splitlines():
        if line.startswith("# %%"):
            flush(); buf = []
            kind = "md" if "[markdown]" in line else "code"
        elif kind is not None: buf.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}
    out = src.with_suffix(".ipynb"); nbformat.write(nb, out); print(out)

if __name__ == "__main__":
    for f in sys.argv[1:]: convert(f)
