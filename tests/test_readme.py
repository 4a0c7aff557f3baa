"""The README, the docs home (nbs/index.ipynb) and CI must show the same fresh-machine commands."""
import json, re
from conftest import ROOT

def shell_blocks(text: str) -> list:
    "The contents of the ```sh blocks in `text`."
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]

def index_text() -> str:
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")

def test_readme_and_index_show_the_same_commands():
    readme = shell_blocks((ROOT / "README.md").read_text())
    assert len(readme) >= 2, "README needs the two fresh-machine commands"
    assert readme == shell_blocks(index_text()), "README.md and nbs/index.ipynb disagree: edit both"

def test_index_is_the_readme():
    "The docs home shows the README's text (nbdev-readme would make one from the other; it needs quarto)."
    readme = (ROOT / "README.md").read_text()
    assert readme[readme.index("**chatft** turns"):].strip() == index_text().split("\n\n", 2)[2].strip()

def test_ci_runs_the_readme_test_command():
    main_job, test_cmd = shell_blocks((ROOT / "README.md").read_text())[:2]
    assert "chatft demo" in main_job and "pytest" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci, f".ci/run must run the README's test command {test_cmd!r}"

def test_readme_links_every_course_notebook():
    readme = (ROOT / "README.md").read_text()
    for nb in sorted((ROOT / "nbs").glob("0*.ipynb")):
        assert f"nbs/{nb.name}" in readme, f"README does not link {nb.name}"
        assert f"colab.research.google.com/github/chatft/chatft/blob/main/nbs/{nb.name}" in readme
