"""Reader properties that need many cases (hypothesis) or files a notebook should not make."""
import io, zipfile, struct
import orjson, pytest
from hypothesis import assume, given, settings, strategies as st, HealthCheck
import chatft.export as ex
from chatft.export import read_export, thread_ids, iter_json_array, Skip, read_chatgpt_conversation
from chatft.core import ChatftError, read_jsonl, write_jsonl
from chatft.synth import synthetic_export, synthetic_conversations

# --- the tree walk -------------------------------------------------------------------------------
@st.composite
def trees(draw):
    "A random mapping: node i's parent is any node (cycles and dangling parents included), and a random current_node."
    n = draw(st.integers(1, 30))
    ids = [f"n{i}" for i in range(n)]
    parents = [draw(st.one_of(st.none(), st.sampled_from(ids + ["missing"]))) for _ in ids]
    mapping = {i: {"id": i, "parent": p, "children": []} for i, p in zip(ids, parents)}
    for i, p in zip(ids, parents):
        if p in mapping: mapping[p]["children"].append(i)
    current = draw(st.one_of(st.sampled_from(ids), st.just("not-there"), st.none()))
    return mapping, current

@given(trees())
@settings(max_examples=400, deadline=None)
def test_thread_is_exactly_the_parent_path(tree):
    mapping, current = tree
    try: path, fallback = thread_ids(mapping, current)
    except Skip as e:
        assert "cycle" in str(e) or "leaf" in str(e); return
    assert fallback == (current not in mapping)
    assert len(path) == len(set(path)) and path                               # no loops, never empty
    for child, parent in zip(path[1:], path[:-1]): assert mapping[child]["parent"] == parent
    assert mapping[path[0]]["parent"] not in mapping                          # starts at a root
    if not fallback: assert path[-1] == current

@given(st.lists(st.tuples(st.sampled_from(["user", "assistant", "tool", "system"]), st.text(max_size=20),
                          st.sampled_from(["all", "python", None]), st.booleans()), max_size=12))
@settings(max_examples=200, deadline=None)
def test_chatgpt_reader_never_crashes_on_odd_messages(msgs):
    "Any chain of messages with odd roles, recipients, empty or hidden text gives a conversation or a Skip."
    mapping, parent = {"root": {"parent": None, "children": [], "message": None}}, "root"
    for k, (role, text, rcpt, hidden) in enumerate(msgs):
        mapping[f"m{k}"] = {"parent": parent, "children": [], "message": {"author": {"role": role}, "recipient": rcpt,
                            "metadata": {"is_visually_hidden_from_conversation": hidden}, "content": {"content_type": "text", "parts": [text]}}}
        parent = f"m{k}"
    try: c = read_chatgpt_conversation({"id": "x", "mapping": mapping, "current_node": parent})
    except Skip: return
    assert all(m["role"] in ("user", "assistant") and m["content"].strip() for m in c.messages)
    assert all(a["role"] != b["role"] for a, b in zip(c.messages, c.messages[1:]))   # merged runs

# --- streaming JSON ------------------------------------------------------------------------------
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**62, 2**62) | st.text(alphabet='ab"\\{}[],: é\ue200\n'),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(alphabet='k"\\{', max_size=3), kids, max_size=4),
                           max_leaves=20)

@given(st.lists(json_values, max_size=6), st.integers(1, 40))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_streamed_items_equal_a_whole_parse(items, chunk):
    raw = orjson.dumps(items, option=orjson.OPT_INDENT_2 if chunk % 2 else 0)
    old, ex.CHUNK = ex.CHUNK, chunk
    try: assert list(iter_json_array(io.BytesIO(raw), "t.json")) == orjson.loads(raw)
    finally: ex.CHUNK = old

@given(st.lists(st.dictionaries(st.text(alphabet='k"\\{', max_size=3), json_values, max_size=4), min_size=1, max_size=6),
       st.integers(1, 40), st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_error_position_is_the_whole_parses(items, chunk, data):
    "A damaged byte in a list of objects (conversations) is reported where `orjson.loads` of the whole file finds it."
    raw = orjson.dumps(items, option=orjson.OPT_INDENT_2)
    k = data.draw(st.integers(1, len(raw) - 2))
    bad = raw[:k] + b"\x01" + raw[k + 1:]
    try: bad.decode()
    except UnicodeDecodeError: assume(False)              # half a character: orjson says only "not valid UTF-8" at 0
    try: orjson.loads(bad)
    except orjson.JSONDecodeError as e: pos = len(bad.decode("utf-8", "surrogateescape")[:e.pos].encode("utf-8", "surrogateescape"))
    old, ex.CHUNK = ex.CHUNK, chunk
    try:
        with pytest.raises(ChatftError) as got: list(iter_json_array(io.BytesIO(bad), "t.json"))
    finally: ex.CHUNK = old
    line = bad.count(b"\n", 0, pos) + 1
    col = pos - (bad.rfind(b"\n", 0, pos) + 1) + 1
    assert f"byte {pos} (line {line}, column {col})" in str(got.value) or "ends early" in str(got.value)

def test_truncated_and_garbage_files(tmp_path):
    for data, msg in [(b"", "empty"), (b"   ", "empty"), (b'[{"mapping": {}}', "ends early"), (b'{"a": ', "invalid JSON"),
                      (b'[{"mapping": {}}]]', "unbalanced")]:
        p = tmp_path / "conversations.json"; p.write_bytes(data)
        with pytest.raises(ChatftError, match=msg): read_export(p, progress=False)

# --- ZIPs ----------------------------------------------------------------------------------------
def test_zip_member_lying_about_its_size_is_refused(tmp_path):
    "A member whose header declares a small size but inflates to more is stopped while streaming."
    p = tmp_path / "export.zip"
    big = b"[" + b" " * 5_000_000 + b"]"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z: z.writestr("conversations.json", big)
    data = bytearray(p.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):              # local header and central directory: file_size
        i = data.find(sig); data[i + off:i + off + 4] = struct.pack("<I", 1000)
    p.write_bytes(bytes(data))
    with pytest.raises(ChatftError, match="declared size|zip bomb|Bad|CRC"): read_export(p, progress=False)

def test_absolute_member_refused(tmp_path):
    p = tmp_path / "export.zip"
    with zipfile.ZipFile(p, "w") as z: z.writestr("/abs/conversations.json", "[]")
    with pytest.raises(ChatftError, match="unsafe path"): read_export(p, progress=False)

def test_zip_is_not_extracted(tmp_path):
    export = synthetic_export(tmp_path / "in", n=8)
    before = set(tmp_path.rglob("*"))
    convs, report = read_export(export, progress=False)
    assert set(tmp_path.rglob("*")) == before and report.kept == 8

# --- formats and options -------------------------------------------------------------------------
def test_every_synthetic_format_gives_the_shown_threads(tmp_path):
    expected = {c.id: c for c in synthetic_conversations(40, seed=3)}
    for fmt in ("zip", "folder", "json", "shards"):
        convs, report = read_export(synthetic_export(tmp_path / fmt, n=40, seed=3, fmt=fmt), progress=False)
        got = {c.id: c for c in convs}
        assert set(got) == set(expected), fmt
        for cid, c in expected.items():
            if not got[cid].meta.get("current_node_fallback"): assert got[cid].messages == c.messages, (fmt, cid)
        if fmt == "shards": assert report.reasons() == {"duplicate id: an older copy (the newest update_time is kept)": 1}

def test_shards_newest_copy_wins(tmp_path):
    convs, _ = read_export(synthetic_export(tmp_path, n=10, fmt="shards"), progress=False)
    assert "an older copy" not in [c.title for c in convs]

def test_feedback_and_alternatives_kept_for_preference_data(tmp_path):
    convs, _ = read_export(synthetic_export(tmp_path, n=20), progress=False)
    assert any(c.meta.get("feedback") for c in convs) and any(c.meta.get("alternatives") for c in convs)
    for c in convs:
        for f in c.meta.get("feedback", []): assert c.messages[f["index"]]["role"] == "assistant"

def test_options_images_and_system(tmp_path):
    export = synthetic_export(tmp_path, n=20)
    convs, _ = read_export(export, images="drop", system=False, progress=False)
    assert all(c.system is None for c in convs) and not any("[image]" in m["content"] for c in convs for m in c.messages)
    with pytest.raises(ChatftError, match="images must be"): read_export(export, images="keep")

def test_csv_and_seed_json(tmp_path):
    (tmp_path / "chat.csv").write_text("conversation_id,user_message,assistant_response\n1,hi,hello\n1,how are you?,fine\n2,bye,see you\n")
    convs, report = read_export(tmp_path / "chat.csv", progress=False)
    assert report.kept == 2 and [len(c.messages) for c in convs] == [4, 2]
    (tmp_path / "bad.csv").write_text("question,reply\nhi,hello\n")
    with pytest.raises(ChatftError, match="user_message and assistant_response"): read_export(tmp_path / "bad.csv", progress=False)
    (tmp_path / "seed.json").write_bytes(orjson.dumps([{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}]))
    assert read_export(tmp_path / "seed.json", progress=False)[1].kept == 1

def test_jsonl_error_names_line(tmp_path):
    p = tmp_path / "train.jsonl"
    p.write_text('{"messages": [{"role": "user", "content": "a"}]}\n{"messages": [\n')
    with pytest.raises(ChatftError, match=r"train.jsonl, line 2"): read_export(p, progress=False)

def test_chatft_jsonl_round_trip(tmp_path):
    convs, _ = read_export(synthetic_export(tmp_path, n=12), progress=False)
    back, report = read_export(write_jsonl(convs, tmp_path / "out.jsonl"), progress=False)
    assert [c.to_dict() for c in back] == [c.to_dict() for c in convs] and report.kept == 12
    assert read_jsonl(tmp_path / "out.jsonl") == convs

def test_missing_path():
    with pytest.raises(ChatftError, match="no such file"): read_export("/nonexistent/export.zip")

# --- odd types anywhere --------------------------------------------------------------------------
_junk = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=6)
def _maybe(s): return st.one_of(s, _junk)
_odd_msg = st.fixed_dictionaries({}, optional={
    "author": _maybe(st.fixed_dictionaries({"role": _maybe(st.sampled_from(["user", "assistant", "system", "tool"]))})),
    "content": _maybe(st.fixed_dictionaries({"content_type": _maybe(st.sampled_from(["text", "multimodal_text", "code", "user_editable_context"])),
                                             "parts": _maybe(st.lists(_maybe(st.text(max_size=6)), max_size=3))})),
    "metadata": _maybe(st.fixed_dictionaries({}, optional={"model_slug": _junk, "user_context_message_data": _junk})),
    "recipient": _maybe(st.just("all")), "create_time": _junk})

@st.composite
def _odd_conversation(draw):
    ids = [f"m{i}" for i in range(draw(st.integers(0, 5)))]
    node = lambda: {"parent": draw(_maybe(st.sampled_from(ids + [None]))), "children": draw(_maybe(st.lists(st.sampled_from(ids + ["zz"]), max_size=3))),
                    "message": draw(_maybe(_odd_msg))}
    return {"id": draw(_maybe(st.text(min_size=1, max_size=3))), "mapping": draw(_maybe(st.just({i: node() for i in ids}))),
            "current_node": draw(_maybe(st.sampled_from(ids + ["zz"]))), "title": draw(_junk), "update_time": draw(_junk)}

@given(st.lists(_odd_conversation(), min_size=1, max_size=4))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_odd_types_give_skips_never_crashes(tmp_path_factory, convs):
    "Nulls, lists, numbers where strings or objects belong: every record is kept or skipped with a reason."
    convs[0]["mapping"] = convs[0]["mapping"] if isinstance(convs[0]["mapping"], dict) else {}   # so the file is recognised as ChatGPT
    p = tmp_path_factory.mktemp("odd")/"conversations.json"
    p.write_bytes(orjson.dumps(convs))
    got, rep = read_export(p, progress=False)
    assert rep.total == len(convs)
    assert all(s["reason"] for s in rep.skipped)
