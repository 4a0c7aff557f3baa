"""The ChatGPT export as it is in 2026: files that are not conversations, ChatGPT's memory, sharded conversations."""
import zipfile
import orjson, pytest
from chatft.core import ChatftError, read_jsonl
from chatft.export import read_export, export_cli, read_chatgpt_conversation, _KNOWN_FILES
from chatft.synth import synthetic_export

def say(role, text): return {"author": {"role": role}, "content": {"content_type": "text", "parts": [text]}}

def chat(cid, *messages, update=1.0, title=None):
    "A ChatGPT conversation whose thread is `messages` (node ids m0, m1, ...), under an empty root."
    mapping, parent = {"root": {"parent": None, "children": [], "message": None}}, "root"
    for k, m in enumerate(messages):
        mapping[f"m{k}"] = {"parent": parent, "children": [], "message": m}
        mapping[parent]["children"].append(f"m{k}"); parent = f"m{k}"
    return {"id": cid, "title": title or cid, "update_time": update, "mapping": mapping, "current_node": parent}

def write_zip(path, files:dict):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items(): z.writestr(name, data)
    return path

def write_folder(folder, files:dict):
    for name, data in files.items():
        (folder/name).parent.mkdir(parents=True, exist_ok=True); (folder/name).write_bytes(data)
    return folder

# --- 1. files that are not conversations ----------------------------------------------------------
CONVS = orjson.dumps([chat("c1", say("user", "hi"), say("assistant", "hello"))])
OTHERS = {**{name: b"[]" for name in _KNOWN_FILES if name.endswith(".json")},
          "chat.html": b"<html></html>", "dalle-generations/file-Ab1-0c1d.webp": b"RIFF", "c1/image/pic.png": b"\x89PNG",
          "file-Xy9-notes.pdf": b"%PDF", "file_00ab-voice.wav": b"RIFF", "user-u1/p1/mnt/data/plot.png": b"\x89PNG",
          "textdocs/d1.json": b"{}", "notes.txt": b"mine"}

@pytest.mark.parametrize("form", ["zip", "folder"])
def test_every_other_file_is_listed_with_what_it_is(tmp_path, form):
    files = {"conversations.json": CONVS, **OTHERS}
    export = write_zip(tmp_path/"export.zip", files) if form == "zip" else write_folder(tmp_path/"export", files)
    convs, report = read_export(export, progress=False)
    assert [c.id for c in convs] == ["c1"] and report.total == 1          # none of them read as conversations
    listed = report.notes["other files"]
    assert set(listed) == set(OTHERS)                                     # all of them, by their path in the export
    for name, what in _KNOWN_FILES.items(): assert listed[name] == what
    assert listed["shared_conversations.json"].startswith("the share links you made")
    assert "DALL·E" in listed["dalle-generations/file-Ab1-0c1d.webp"] and "image" in listed["c1/image/pic.png"]
    assert listed["file_00ab-voice.wav"].startswith("a recording") and listed["file-Xy9-notes.pdf"].startswith("a file")
    assert listed["notes.txt"] == listed["textdocs/d1.json"] == "not read (unknown file)"

def test_printed_report_is_one_line_per_note_and_the_saved_one_complete(tmp_path):
    export = write_zip(tmp_path/"export.zip", {"conversations.json": CONVS, **OTHERS})
    assert export_cli([str(export), "-o", str(tmp_path/"out.jsonl"), "-q"]) == 0
    _, report = read_export(export, progress=False)
    row = next(line for line in str(report).splitlines() if line.strip().startswith("other files"))
    assert f"{len(OTHERS)} (not conversations): ads.json, chat.html, " in row and row.endswith("…")   # one line
    saved = orjson.loads((tmp_path/"out.report.json").read_bytes())["notes"]["other files"]
    assert saved == dict(report.notes["other files"]) and len(saved) == len(OTHERS)

def test_known_files_are_never_read_as_conversations(tmp_path):
    "Without a conversations file every JSON is tried, except the export's other files (a share list has ids and titles)."
    shares = orjson.dumps([{"id": "s1", "conversation_id": "c1", "title": "Tea", "is_anonymous": True}])
    mine = orjson.dumps([{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}])
    folder = write_folder(tmp_path/"mine", {"chats.json": mine, "shared_conversations.json": shares,
                                            "codex.json": b"{}", "user.json": b"{}"})
    convs, report = read_export(folder, progress=False)
    assert len(convs) == 1
    assert set(report.notes["other files"]) == {"shared_conversations.json", "codex.json", "user.json"}
    alone = write_zip(tmp_path/"alone.zip", {"user.json": b"{}", "shared_conversations.json": shares})
    with pytest.raises(ChatftError, match=r"alone.zip: no conversations file found") as e:
        read_export(alone, progress=False)
    assert "\n" not in str(e.value)

def test_a_single_file_has_no_other_files(tmp_path):
    (tmp_path/"conversations.json").write_bytes(CONVS); (tmp_path/"user.json").write_bytes(b"{}")
    _, report = read_export(tmp_path/"conversations.json", progress=False)
    assert "other files" not in report.notes

def test_synthetic_export_lists_its_three_other_files(tmp_path):
    _, report = read_export(synthetic_export(tmp_path, n=6), progress=False)
    assert sorted(report.notes["other files"]) == ["chat.html", "message_feedback.json", "user.json"]

# --- 2. ChatGPT's memory --------------------------------------------------------------------------
INSTRUCTIONS = {"author": {"role": "user"}, "metadata": {"is_visually_hidden_from_conversation": True},
                "content": {"content_type": "user_editable_context", "user_profile": "I teach chemistry.",
                            "user_instructions": "Answer briefly."}}
def memory(text, hidden=False):
    return {"author": {"role": "assistant"}, "recipient": "all",
            "metadata": {"is_visually_hidden_from_conversation": hidden},
            "content": {"content_type": "model_editable_context", "model_set_context": text, "repository": None,
                        "repo_summary": None, "structured_context": None}}
NOTE = "1. [2025-03-02]. Teaches chemistry to 15-year-olds."

def remembering(cid="c1", instructions=True):
    "A conversation with custom instructions, a memory, a later empty memory (memory on, nothing new) and a hidden one."
    head = [INSTRUCTIONS] if instructions else []
    return chat(cid, *head, say("user", "Any ideas for a lesson?"), memory(NOTE), say("assistant", "A lab on pH."),
                say("user", "And for homework?"), memory(""), memory("", hidden=True), say("assistant", "Litmus at home."))

def test_memory_is_never_a_turn(tmp_path):
    (tmp_path/"conversations.json").write_bytes(orjson.dumps([remembering()]))
    for keep in (False, True):
        [c], report = read_export(tmp_path/"conversations.json", memory=keep, progress=False)
        assert [m["role"] for m in c.messages] == ["user", "assistant", "user", "assistant"]
        assert not any("Teaches chemistry" in m["content"] for m in c.messages)
        assert report.notes["messages dropped: content type model_editable_context"] == 2   # the third: "hidden"

def test_memory_left_out_by_default_and_counted(tmp_path):
    (tmp_path/"conversations.json").write_bytes(orjson.dumps([remembering("c1"), remembering("c2", instructions=False),
                                                              chat("c3", say("user", "hi"), say("assistant", "yo"))]))
    convs, report = read_export(tmp_path/"conversations.json", progress=False)
    by_id = {c.id: c for c in convs}
    assert by_id["c1"].system == "I teach chemistry.\n\nAnswer briefly." and by_id["c2"].system is None
    assert by_id["c1"].meta["memory"] == by_id["c2"].meta["memory"] == "left out" and "memory" not in by_id["c3"].meta
    assert report.notes["ChatGPT memory: left out (memory=True keeps it)"] == 2
    assert "ChatGPT memory: kept in the system prompt" not in report.notes

def test_memory_true_adds_it_after_the_custom_instructions(tmp_path):
    (tmp_path/"conversations.json").write_bytes(orjson.dumps([remembering("c1"), remembering("c2", instructions=False)]))
    convs, report = read_export(tmp_path/"conversations.json", memory=True, progress=False)
    by_id = {c.id: c for c in convs}
    label = "Memory ChatGPT saved about the user:"
    assert by_id["c1"].system == f"I teach chemistry.\n\nAnswer briefly.\n\n{label}\n{NOTE}"   # the later empty one: no change
    assert by_id["c2"].system == f"{label}\n{NOTE}"
    assert {c.meta["memory"] for c in convs} == {"kept"}
    assert report.notes["ChatGPT memory: kept in the system prompt"] == 2
    assert "ChatGPT memory: left out (memory=True keeps it)" not in report.notes

def test_newest_memory_on_the_thread_wins():
    c = read_chatgpt_conversation(chat("c", say("user", "a"), memory("old"), say("assistant", "b"), say("user", "c"),
                                       memory("new"), say("assistant", "d")), memory=True)
    assert c.system.endswith("\nnew") and "old" not in c.system

def test_memory_without_a_system_prompt_is_refused(tmp_path):
    (tmp_path/"conversations.json").write_bytes(orjson.dumps([remembering()]))
    with pytest.raises(ChatftError, match="system=False leaves out") as e:
        read_export(tmp_path/"conversations.json", system=False, memory=True, progress=False)
    assert "\n" not in str(e.value)
    [c], report = read_export(tmp_path/"conversations.json", system=False, progress=False)
    assert c.system is None and report.notes["ChatGPT memory: left out (memory=True keeps it)"] == 1

def test_cli_memory_flag(tmp_path):
    src = tmp_path/"conversations.json"; src.write_bytes(orjson.dumps([remembering()]))
    assert export_cli([str(src), "-o", str(tmp_path/"off.jsonl"), "-q"]) == 0
    assert export_cli([str(src), "-o", str(tmp_path/"on.jsonl"), "-q", "--memory"]) == 0
    assert NOTE not in read_jsonl(tmp_path/"off.jsonl")[0].system and NOTE in read_jsonl(tmp_path/"on.jsonl")[0].system
    notes = orjson.loads((tmp_path/"on.report.json").read_bytes())["notes"]
    assert notes["ChatGPT memory: kept in the system prompt"] == 1
    with pytest.raises(ChatftError, match="leave memory off"):
        export_cli([str(src), "-o", str(tmp_path/"x.jsonl"), "-q", "--no-system", "--memory"])

# --- 3. conversations in shards -------------------------------------------------------------------
def dicts(convs): return sorted((c.to_dict() for c in convs), key=lambda d: d["id"])

def test_shards_read_whole_in_a_folder_a_zip_and_a_zip_folder(tmp_path):
    whole, _ = read_export(synthetic_export(tmp_path/"one", n=30, seed=4, fmt="folder"), progress=False)  # conversations.json
    folder = synthetic_export(tmp_path/"shards", n=30, seed=4, fmt="shards")
    shards = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(n for n in shards if n.startswith("conversations")) == ["conversations-000.json", "conversations-001.json"]
    for export in (folder, write_zip(tmp_path/"flat.zip", shards),
                   write_zip(tmp_path/"nested.zip", {f"chatgpt-export/{n}": b for n, b in shards.items()})):
        convs, report = read_export(export, progress=False)
        assert dicts(convs) == dicts(whole), export.name                 # the older duplicate lost, every other one there
        assert report.reasons() == {"duplicate id: an older copy (the newest update_time is kept)": 1}
        assert report.notes["formats"] == f"chatgpt ({len(whole) + 1})"

@pytest.mark.parametrize("newest_first", [True, False])
def test_newest_copy_of_a_duplicated_id_wins_whichever_shard_holds_it(tmp_path, newest_first):
    new, old = (chat("dup", say("user", "q"), say("assistant", a), update=t, title=a)
                for a, t in (("new", 20.0), ("old", 10.0)))
    first, second = (new, old) if newest_first else (old, new)
    shards = {f"conversations-{k:03d}.json": orjson.dumps([chat(f"c{k}", say("user", "q"), say("assistant", "a"))])
              for k in range(12)}                                       # 000 ... 011: more than ten, read in order
    shards["conversations-003.json"] = orjson.dumps([first]); shards["conversations-010.json"] = orjson.dumps([second])
    convs, report = read_export(write_zip(tmp_path/"export.zip", shards), progress=False)
    assert [c.title for c in convs if c.id == "dup"] == ["new"] and len(convs) == 11
    assert report.skipped == [{"id": "dup", "reason": "duplicate id: an older copy (the newest update_time is kept)"}]
