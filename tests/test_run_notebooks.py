"""dev/run_notebooks.py runs a notebook as a learner's Colab or Kaggle would: a small constructed notebook with a
parameter cell, flagged cells, a guarded and an unguarded `google.colab` cell, and a cell that trains, in real kernels."""
import sys, tempfile
from pathlib import Path
import nbformat, pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT / "dev"))
import run_notebooks as rn

C, M = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell

def notebook(last:str="print('done')"):
    "Cell 0 says where it runs; 2 is the parameter cell; 3-4 are flagged; 5 asks for an upload only when UPLOAD is set."
    return nbformat.v4.new_notebook(cells=[
        C("import os, sys\nprint(os.environ.get('COLAB_RELEASE_TAG'), os.environ.get('KAGGLE_KERNEL_RUN_TYPE'), "
          "os.environ.get('CHATFT_WORK'), os.environ.get('CHATFT_HARDWARE'), 'google.colab' in sys.modules, os.listdir('.'))"),
        M("## Parameters\n\nWhat to change."),
        C("STEPS = 4          # training steps\nUPLOAD = False     # ask for a file on Colab"),
        C("#| slow\nprint('slow', STEPS)"),
        C("#| eval: false\nprint('eval false')"),
        C("if UPLOAD and 'google.colab' in sys.modules:\n    from google.colab import files\n    files.upload()\nprint('guarded')"),
        C("def train(): raise RuntimeError('this cell trains')"),
        C(last),
    ])

def run(nb, **how):
    "Execute `nb` in a new folder; (error line or None, notes, {cell index: printed text})."
    err, notes = rn.execute(nb, Path(tempfile.mkdtemp()), False, **how)
    return (err and err.splitlines()[0]), notes, {i: "".join(o.get("text", "") for o in c.outputs)
                                                  for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs}

def test_default_skips_flagged_cells_and_shares_the_work_folder():
    err, notes, out = run(notebook())
    assert err is None and notes == []
    assert out[0].startswith("None None work None False")            # no runtime, CHATFT_WORK=work
    assert 3 not in out and 4 not in out and out[5] == "guarded\n" and out[7] == "done\n"

def test_colab_runs_every_cell_with_the_set_values_and_refuses_to_ask_the_learner(tmp_path):
    stub = rn.colab_stub(tmp_path/"stub")
    nb = notebook("from google.colab import files\nuploaded = files.upload()   # no parameter asks for it")
    err, notes, out = run(nb, all_cells=True, runtime="colab", fresh=True, stub=stub, sets={"STEPS": "1", "EPOCHS": "2"})
    assert out[0] == "ci None None None True []\n"                   # Colab's tag, google.colab loaded, empty folder, no CHATFT_WORK
    assert out[3] == "slow 1\n" and out[4] == "eval false\n"         # flags are comments; STEPS set right after cell 2
    assert notes == ["--set STEPS=1"]                                # EPOCHS: not a parameter of this notebook
    assert out[5] == "guarded\n"                                     # UPLOAD is False: no upload asked
    assert err.startswith("cell 7 (NoLearnerHere: google.colab.files.upload() called by `uploaded = files.upload()")
    assert "UPLOAD" in err

def test_kaggle_has_no_google_colab():
    err, notes, out = run(notebook("from google.colab import files"), all_cells=True, runtime="kaggle")
    assert out[0].startswith("None Interactive work None False")
    assert out[5] == "guarded\n"                                     # the guard keeps its import from running
    assert err.startswith("cell 7 (ModuleNotFoundError: No module named 'google")

def test_profile_stops_before_the_first_cell_that_trains():
    err, notes, out = run(notebook("trainer = train()"), profile="t4")
    assert err is None and out[0].startswith("None None work t4 False")
    assert notes == ["--profile t4: stopped before cell 7, the first that trains"] and 7 not in out

def test_what_counts_as_training():
    for src in ["train(plan, dsd, run)", "t = chatft.train.train(p, d, r)", "run = course_run(EXPORT)", "x = [demo_run()]",
                "%%time\ntrainer = train_dpo(run, dsd, out)", "for m in MODELS: practice_run(m)"]:
        assert rn.trains(C(src)), src
    for src in ["def train(plan): return trainer.train()", "class A:\n    def f(self): course_run()", "f = lambda: train()",
                "trainer.state", "#| export\ndef demo_cli(argv=None): ...", "print('train(')"]:
        assert not rn.trains(C(src)), src

def test_set_values_and_parameter_names():
    assert rn.parse_sets(["MINUTES=0.2", "MODEL=HuggingFaceTB/SmolLM2-135M-Instruct", "UPLOAD=False", "EXPORT=None"]) == {
        "MINUTES": "0.2", "MODEL": "'HuggingFaceTB/SmolLM2-135M-Instruct'", "UPLOAD": "False", "EXPORT": "None"}
    with pytest.raises(SystemExit, match="NAME=VALUE"): rn.parse_sets(["MINUTES"])
    assert rn.parameter_names("A = 1  # a\nB: int = 2\nC = D = 3\nprint(A)") == ["A", "B", "C", "D"]
    assert rn.parameter_cell(nbformat.v4.new_notebook(cells=[C("x = 1"), M("# Title")])) is None

def test_stub_keeps_google_a_namespace(tmp_path):
    "The stand-in adds `google.colab` without hiding other `google.*` packages (protobuf's `google` is a namespace too)."
    stub = rn.colab_stub(tmp_path)
    assert not (stub/"google"/"__init__.py").exists()
    assert sorted(p.name for p in (stub/"google"/"colab").iterdir()) == ["__init__.py", "drive.py", "files.py", "userdata.py"]

def test_streamed_pieces_are_stored_as_one_text():
    "A reply printed piece by piece is stored as one stream output (GitHub and the docs show each output as its own block)."
    from run_notebooks import join_streams
    out = lambda name, text: nbformat.v4.new_output("stream", name=name, text=text)
    c = nbformat.v4.new_code_cell("x", outputs=[out("stdout", "you: hi\n"), out("stdout", "Hel"), out("stdout", "lo!\n"),
                                                 out("stderr", "warn\n"), out("stdout", "after")])
    nb = nbformat.v4.new_notebook(cells=[c, nbformat.v4.new_markdown_cell("m")])
    join_streams(nb)
    assert [(o.name, o.text) for o in c.outputs] == [("stdout", "you: hi\nHello!\n"), ("stderr", "warn\n"), ("stdout", "after")]

def test_expect_finds_what_the_outputs_say():
    nb = nbformat.v4.new_notebook(cells=[C("x", outputs=[nbformat.v4.new_output("stream", name="stdout", text="Using your export a.zip\n")]),
                                         C("y", outputs=[nbformat.v4.new_output("execute_result", data={"text/plain": "42"})])])
    assert rn.missing_expected(nb, ["your export", "42"]) == []
    assert rn.missing_expected(nb, ["synthetic", "your export"]) == ["synthetic"]
