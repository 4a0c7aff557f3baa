"""`chatft update`: a run continued on what a later export adds (issue 25). A real run of the tiny model on the synthetic
export, and the synthetic "next month" of it (`chatft.synth.synthetic_next_month`), through the console script."""
import os, sys, json, hashlib, signal, subprocess, time
from pathlib import Path
import pytest
from conftest import chatft_server, PAUSED_TRAIN

CHATFT = str(Path(sys.executable).parent/"chatft")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
TINY = "chatft/tiny-random-smollm2"

def run(*args, ok=True):
    res = subprocess.run([CHATFT, *map(str, args)], env=ENV, capture_output=True, text=True)
    if ok: assert res.returncode == 0, res.stderr[-3000:]
    return res

@pytest.fixture(scope="module")
def first(tmp_path_factory)->dict:
    "A run trained on the synthetic export (exported, cleaned, prepared, trained as a person does), and its later export."
    from chatft.synth import synthetic_export, synthetic_next_month
    d = tmp_path_factory.mktemp("update")
    export = synthetic_export(d/"e", n=60, seed=0)
    later, truth = synthetic_next_month(d/"l", n=60, seed=0)
    run("export", export, "-o", d/"convs.jsonl", "-q")
    run("clean", d/"convs.jsonl", "-o", d/"clean.jsonl")
    run("prepare", d/"clean.jsonl", "--model", TINY, "--max-length", "256", "-o", d/"prep")
    run("train", d/"prep", "--model", TINY, "-o", d/"run", "--max-steps", "4", "--lr", "5e-3")
    return dict(dir=d, export=export, later=later, truth=truth, run=d/"run")

def digest(folder:Path)->str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file(): h.update(str(p.relative_to(folder)).encode()); h.update(p.read_bytes())
    return h.hexdigest()

def test_matching_finds_what_the_later_export_changed(first):
    from chatft.update import plan_update
    up = plan_update(first["run"], first["later"], progress=False)
    truth, kept = first["truth"], {c.id for c in up.convs}
    for k in ("new", "grown", "changed", "unchanged"):        # what cleaning kept of each, found as that kind
        assert set(up.kinds[k]) == set(truth[k]) & kept, k
    old = json.loads((first["run"]/"data_report.json").read_text())[0]["notes"]["_conversations"]
    assert set(up.kinds["deleted"]) == set(old) - kept
    assert set(truth["deleted"]) & set(old) and set(truth["deleted"]) & set(old) <= set(up.kinds["deleted"])
    assert up.kinds["new"] and up.kinds["grown"] and up.kinds["changed"] and up.kinds["deleted"]
    assert "read with the defaults" not in str(up)            # chatft export kept how it read

@pytest.fixture(scope="module")
def updated(first)->dict:
    "The run updated with the later export through `chatft update` (the parent's digest before, the output)."
    d, parent = first["dir"], first["run"]
    before = digest(parent)
    res = run("update", parent, first["later"], "-o", d/"run2", "--max-steps", "4", "--lr", "5e-3")
    return dict(before=before, stdout=res.stdout, run2=d/"run2")

def test_update_trains_a_run_that_never_sees_the_old_heldout(first, updated):
    d, parent, before, res = first["dir"], first["run"], updated["before"], updated
    assert "the run's held-out loss:" in res["stdout"] and "new held-out loss:" in res["stdout"]
    assert digest(parent) == before                                     # the run itself is not changed
    from chatft.dataset import load_prepared
    from chatft.core import Run
    old, new = load_prepared(parent/"data"), load_prepared(d/"run2"/"data")
    old_test = set(old["test"]["id"])
    assert old_test and not old_test & set(new["train"]["id"])          # the run's held-out never trains
    assert old_test <= set(new["test"]["id"])                           # ... and is still held out
    assert not set(new["test"]["id"]) & set(old["train"]["id"])         # nothing the run trained is held out now
    lineage = json.loads((d/"run2"/"lineage.json").read_text())
    e = lineage["lineage"][-1]
    assert lineage["parent"] == str(parent.resolve()) and e["counts"]["new"] > 0
    assert not set(e["counts"]) ^ {"new", "grown", "changed", "unchanged", "deleted"}
    assert not set(new["train"]["id"]) & set(first["truth"]["deleted"])   # deleted conversations are not replayed
    assert "## Lineage" in (d/"run2"/"README.md").read_text() and Run(d/"run2").state == "finished"
    # every held-out row, the new ones and the run's, scored while the update trains (4 steps: a plan's budget for
    # scoring alone would give one row, which for an update is the first new held-out row and no old one)
    assert json.loads((d/"run2"/"plan.json").read_text())["eval_rows"] == 0 and len(new["test"]) > 1
    # the loss before the update is the parent's own loss on its held-out rows: the update starts from its adapter
    from chatft.train import load_run, split_loss
    model, tok, plan = load_run(parent)
    assert e["loss_before"]["old"] == pytest.approx(split_loss(model, {"old": old["test"]}, plan, tok, "old"), rel=1e-4)

def test_a_grown_conversation_trains_from_its_new_turns(first):
    "A grown conversation the run trained trains its new turns, one old exchange before them, not its old turns again."
    from chatft.update import plan_update, update_data, CONTEXT
    from chatft.models import load_tokenizer
    up = plan_update(first["run"], first["later"], progress=False)
    old = json.loads((first["run"]/"data_report.json").read_text())[0]["notes"]["_conversations"]
    trained_grown = {i for i in up.kinds["grown"] if old[i][3] == "train"} & {c.id for c in up.train}
    assert trained_grown and set(up.grown_from) == trained_grown
    tok = load_tokenizer(str(first["run"]))
    dsd, _, rep = update_data(up, tok, 4096, replay=0)
    by, rows = {c.id: c for c in up.train}, {}
    for r in dsd["train"]: rows.setdefault(r["id"], []).append(tok.decode(r["input_ids"]))
    checked = 0
    for i, n in up.grown_from.items():
        msgs, text = by[i].messages, "".join(rows[i])
        assert all(m["content"] in text for m in msgs[n:])                  # every new turn trains
        assert msgs[n - 1]["content"] in text                               # after the old exchange it followed
        start = max((k for k in range(max(0, n - CONTEXT) + 1) if msgs[k]["role"] == "user"), default=0)
        gone = [m["content"] for m in msgs[:start]]                         # before the context's user message
        gone = [g for g in gone if not any(g in m["content"] for m in msgs[start:])]
        assert not any(g in text for g in gone)                             # the older turns do not train again
        checked += bool(gone)
    assert checked                                                          # some grown conversation had older turns
    assert rep.notes["grown, from their new turns"].startswith(f"{len(up.grown_from)} conversations")

def test_the_updated_run_loads_everywhere_a_run_loads(first, updated):
    d, run2 = first["dir"], updated["run2"]
    run("chat", run2, "-m", "hello", "--max-new-tokens", "4")
    run("merge", run2, "-o", d/"merged")
    from transformers import AutoModelForCausalLM
    assert AutoModelForCausalLM.from_pretrained(d/"merged") is not None
    from chatft.deploy import hub_card
    card = str(hub_card(run2))
    assert "## Lineage" in card and str(d) not in card                  # the Hub's card: dates and counts, no paths
    run("eval", run2, "--n", "2", "--max-new-tokens", "4", "--probe", "2", "-o", d/"eval")
    ev = json.loads((d/"eval"/"eval.json").read_text())
    assert ev                                              # scored on the updated run's held-out split

def test_the_updated_run_serves_and_converts_to_gguf(first, updated):
    "`chatft serve` answers from the updated run, and `chatft gguf` writes it for llama.cpp (f16, its template inside)."
    import httpx
    run2 = updated["run2"]
    proc, url = chatft_server(run2)
    try:
        r = httpx.post(f"{url}/v1/chat/completions", json=dict(model="chatft", max_tokens=4,
                       messages=[dict(role="user", content="hello")]), timeout=120)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None, r.text
    finally: proc.kill(); proc.wait()
    from chatft.deploy import converter_dir
    if not (converter_dir()/"convert_hf_to_gguf.py").exists(): pytest.skip("llama.cpp's converter is not cached")
    out = first["dir"]/"run2.gguf"
    run("gguf", run2, "-o", out, "--type", "f16")
    import gguf
    r = gguf.GGUFReader(str(out))
    from chatft.models import load_tokenizer
    assert bytes(r.fields["tokenizer.chat_template"].parts[-1]).decode() == load_tokenizer(str(run2)).chat_template

def test_nothing_new_says_so_and_writes_nothing(first, updated):
    d = first["dir"]
    res = run("update", first["run"], first["export"], "-o", d/"same")
    assert "nothing new" in res.stdout and not (d/"same").exists()
    res = run("update", updated["run2"], first["later"], "-o", d/"again")   # the updated run lists what it took
    assert "nothing new" in res.stdout and not (d/"again").exists()

def test_a_copy_of_an_old_heldout_conversation_never_trains(first, tmp_path):
    from chatft.core import read_jsonl, write_jsonl, Conversation
    from chatft.dataset import load_prepared
    from chatft.update import plan_update
    convs = read_jsonl(first["dir"]/"clean.jsonl")
    held = set(load_prepared(first["run"]/"data")["test"]["id"])
    h = next(c for c in convs if c.id in held)
    reply = next(m["content"] for m in h.messages if m["role"] == "assistant")
    more = ("Thanks. Now something else entirely: how do I keep basil alive on a windowsill through the winter, "
            "given the radiator underneath and the draught from the old sash window?")
    tip = ("Move it off the radiator, water only when the top of the soil is dry, pinch out the flower buds, and "
           "turn the pot every few days so it grows evenly towards the light; a cheap grow light helps in December.")
    copy = Conversation("copy-of-held-out", [dict(role="user", content="again, please"),           # one of its replies,
                                              dict(role="assistant", content=reply),               # word for word, in a
                                              dict(role="user", content=more),                     # conversation that is no
                                              dict(role="assistant", content=tip)],                # near duplicate of it
                        create_time=2e9-10, update_time=2e9-10)     # not the newest: it would train
    other = Conversation("fresh", [dict(role="user", content="what is a good name for a cat?"),
                                   dict(role="assistant", content="Try Miso, Pixel or Juniper: short names with a "
                                        "clear vowel are easy for a cat to learn.")], create_time=2e9, update_time=2e9)
    write_jsonl([*convs, copy, other], tmp_path/"later.jsonl")
    up = plan_update(first["run"], tmp_path/"later.jsonl", progress=False)
    assert set(up.kinds["new"]) == {"copy-of-held-out", "fresh"}
    assert [c.id for c in up.test] == ["fresh"] and "copy-of-held-out" not in {c.id for c in up.train}
    assert up.left_out == {"copy-of-held-out": "repeats a conversation the run held out"}

def test_bad_input_is_one_line(first, tmp_path):
    res = run("update", tmp_path, first["later"], "-o", tmp_path/"x", ok=False)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1 and "not a chatft run" in res.stderr
    res = run("update", first["run"], first["later"], "-o", first["run"], ok=False)
    assert res.returncode == 1 and "that is the run being updated" in res.stderr
    res = run("update", first["run"], tmp_path/"missing.zip", "-o", tmp_path/"y", ok=False)
    assert res.returncode == 1 and "missing.zip" in res.stderr and not (tmp_path/"y").exists()

def test_a_killed_update_resumes_where_it_stopped(first, tmp_path):
    """`chatft update` killed after step 3 (its checkpoint of step 2 on disk), then run again: without `--resume` it says
    to resume and deletes nothing; with it, it goes on from the checkpoint to the adapter, losses and starting losses of
    an update that was never stopped."""
    import torch
    from safetensors.torch import load_file
    from chatft.train import last_checkpoint
    args = ["update", first["run"], first["later"], "--max-steps", "5", "--save-steps", "2", "--lr", "5e-3"]
    run(*args, "-o", tmp_path/"whole")
    marker, log, killed = tmp_path/"paused", tmp_path/"killed.log", tmp_path/"killed"
    with open(log, "w") as err:
        p = subprocess.Popen([sys.executable, "-c", PAUSED_TRAIN, str(marker), "3", *map(str, args), "-o", str(killed)],
                             env=ENV, stdout=subprocess.DEVNULL, stderr=err)
        try:
            hang = time.monotonic() + 900                        # only against a hang; the kill point is the pause
            while not marker.exists() and p.poll() is None and time.monotonic() < hang: time.sleep(0.1)
            assert marker.exists() and p.poll() is None, log.read_text()[-3000:]
            assert last_checkpoint(killed).name == "checkpoint-2"
        finally:
            p.send_signal(signal.SIGKILL); p.wait()
    assert not (killed/"adapter_model.safetensors").exists() and not (killed/"lineage.json").exists()
    again = run(*args, "-o", killed, ok=False)
    assert again.returncode == 1 and "--resume" in again.stderr and last_checkpoint(killed).name == "checkpoint-2"
    res = run(*args, "-o", killed, "--resume")
    assert "new held-out loss:" in res.stdout
    a, b = load_file(str(tmp_path/"whole"/"adapter_model.safetensors")), load_file(str(killed/"adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    la, lb = (json.loads((d/"lineage.json").read_text())["lineage"][-1] for d in (tmp_path/"whole", killed))
    assert lb["loss_before"] == la["loss_before"] and la["loss_before"]        # read back, not measured on the checkpoint
    for k in la["loss_after"]: assert abs(la["loss_after"][k] - lb["loss_after"][k]) < 1e-4
    assert "resumed" in lb and "resumed" not in la
    done = run(*args, "-o", killed, "--resume", ok=False)                      # a finished update: nothing to resume
    assert done.returncode == 1 and "finished run" in done.stderr

def test_resuming_on_other_data_is_refused(first, tmp_path):
    "`--resume` into a folder whose plan was made for other data (here the parent run's plan) says so and changes nothing."
    stale = tmp_path/"stale"; stale.mkdir()
    (stale/"plan.json").write_bytes((first["run"]/"plan.json").read_bytes())
    res = run("update", first["run"], first["later"], "-o", stale, "--max-steps", "5", "--resume", ok=False)
    assert res.returncode == 1 and "trained on other data" in res.stderr and "--overwrite" in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "trained on other data" in res.stderr.strip().splitlines()[-1]  # (after the reading bars)
    assert sorted(p.name for p in stale.iterdir()) == ["plan.json"]
