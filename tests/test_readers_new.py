"""Grok, Gemini (Takeout My Activity) and Google AI Studio readers on hand-made fixtures, and the
invariant that no message read from any format carries private-use characters, app markup, thinking
or tool text.

The fixtures under tests/fixtures/{grok,gemini,aistudio} were written by hand after the structure of
public real exports (field names, nesting, sender spellings, Mongo-style times, `Prompted ` titles,
newest-first order, `isThought` chunks and thought parts); no real export is copied here.
"""
import html, re, zipfile
from pathlib import Path
import orjson, pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from chatft.export import read_export, read_grok_conversation, read_aistudio_conversation, read_gemini_activity, record_kind, clean_text, strip_citations, Skip, export_cli
from chatft.core import ChatftError, write_jsonl

FIX = Path(__file__).parent / "fixtures"
GROK, GEMINI, STUDIO = FIX / "grok", FIX / "gemini", FIX / "aistudio"
ACTIVITY = GEMINI / "Takeout" / "My Activity" / "Gemini Apps" / "MyActivity.json"

def texts(convs): return [m["content"] for c in convs for m in c.messages]
def zip_folder(folder, dest):
    with zipfile.ZipFile(dest, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file(): z.write(p, p.relative_to(folder).as_posix())
    return dest

# --- Grok ----------------------------------------------------------------------------------------
def test_grok_export_threads_times_and_skips():
    convs, report = read_export(GROK / "prod-grok-backend.json", progress=False)
    by_id = {c.id[-1]: c for c in convs}
    assert report.total == 5 and report.kept == 3 and set(by_id) == {"1", "2", "5"}
    kettle = by_id["1"]
    assert [m["role"] for m in kettle.messages] == ["user", "assistant"] * 2 and kettle.source == "grok"
    assert kettle.messages[1]["content"] == "Boil a mix of water and white vinegar, let it sit an hour, then rinse."
    assert kettle.title == "Kettle descaling" and kettle.model == "grok-3"
    assert kettle.create_time == 1738569600.0 and kettle.update_time == 1738569900.0
    assert "thinking_trace" not in str(kettle.to_dict()) and "Vinegar works" not in str(texts(convs))
    edited = by_id["2"]                                       # the prompt was edited and the answer regenerated
    assert edited.messages == [{"role": "user", "content": "Name a yellow fruit"}, {"role": "assistant", "content": "Lemon."}]
    assert edited.meta == {"branches": "newest leaf's thread"} and edited.model == "grok-4"
    assert report.notes["branched (Grok): newest leaf's thread used"] == 1
    assert report.notes["removed from text: citation cards (<grok:render>)"] == 1
    assert {s["id"][-1]: s["reason"] for s in report.skipped} == {"3": "no messages", "4": "responses is not a list"}
    assert report.notes["formats"] == "grok (5)"              # not one ShareGPT record with "no messages"

def test_grok_zip_and_folder_are_found(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "prod-mc-auth-mgmt-api.json").write_text('{"user": {"userId": "u"}}')   # not conversations: ignored
    (tmp_path / "export" / "prod-grok-backend.json").write_bytes((GROK / "prod-grok-backend.json").read_bytes())
    for p in (tmp_path / "export", zip_folder(tmp_path / "export", tmp_path / "grok.zip")):
        convs, report = read_export(p, progress=False)
        assert report.kept == 3 and report.total == 5, p

def test_grok_odd_types_never_crash():
    for responses in ([1, "x", None, [], {"response": None}, {"response": {"_id": [], "sender": 5, "message": {}}}],
                      [{"response": {"_id": "a", "parent_response_id": "b", "sender": "human", "message": "hi"}},
                       {"response": {"_id": "b", "parent_response_id": "a", "sender": "assistant", "message": "yo"}}]):
        try: read_grok_conversation({"conversation": {"id": "x"}, "responses": responses})
        except Skip as e: assert str(e)
    c = read_grok_conversation({"conversation": {"id": "t", "create_time": {"$date": "1738569600000"}}, "responses": [
        {"response": {"sender": "human", "message": "a"}}, {"response": {"sender": "grok", "message": "b"}}]})
    assert c.create_time == 1738569600.0 and [m["role"] for m in c.messages] == ["user", "assistant"]

# --- Gemini --------------------------------------------------------------------------------------
def test_gemini_takeout_groups_and_markdown():
    convs, report = read_export(ACTIVITY, progress=False)
    assert report.kept == 3 and report.total == 9
    assert report.notes["gemini: conversations grouped by chat link"] == 1
    assert report.notes["gemini: conversations grouped by time gaps"] == 2
    assert "Takeout has no conversation ids" in report.notes["gemini: time gap that starts a conversation"]
    assert [c.title for c in convs] == ["Plan my day", "write an add function", "Which Norwegian city is the rainiest?"]
    day, code, rain = convs                                   # oldest first, though Takeout lists newest first
    assert [m["content"] for m in day.messages] == ["Plan my day", "1. Walk\n2. Work\n3. Read", "Good morning!",
                                                    "Good morning! How can I help?"]
    assert code.id == "gemini-5c1e7d2a9b0f3e44" and code.messages[0]["content"] == "[file]\n\nwrite an add function"
    assert code.messages[1]["content"] == ("Here it is:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
                                           "- It adds *two* numbers.\n- It works for floats too.")
    assert rain.messages[1]["content"].endswith("See [the climate page](https://www.example.no/bergen).")
    assert rain.messages[3]["content"] == "| City | Rain (mm) |\n| --- | --- |\n| Bergen | 2250 |\n| Oslo | 760 |"
    assert rain.create_time < rain.update_time and rain.source == "gemini"
    assert report.reasons() == {"not a prompt (Gave feedback:)": 1, "not a prompt (Used Gemini)": 1, "prompt without an answer": 1,
                                "not an activity entry (str)": 1, "empty prompt": 1, "no time": 1}
    assert all(s["id"].startswith("MyActivity.json entry ") for s in report.skipped)

def test_gemini_takeout_zip_and_options(tmp_path):
    z = zip_folder(GEMINI, tmp_path / "takeout-20250611T000000Z-001.zip")
    with zipfile.ZipFile(z, "a") as zz:                       # other products' activity and Gemini's Gems are not chats
        zz.writestr("Takeout/My Activity/Search/MyActivity.json", '[{"header": "Search", "title": "Searched for tea"}]')
        zz.writestr("Takeout/Gemini/gems.json", '{"gems": []}')
    convs, report = read_export(z, progress=False)
    assert report.kept == 3 and report.total == 9
    dropped, _ = read_export(z, images="drop", progress=False)
    assert dropped[1].messages[0]["content"] == "write an add function"
    many, rep = read_gemini_activity(orjson.loads(ACTIVITY.read_bytes()), gap=60)[0::2]
    assert len(many) == 5 and "1 min" in rep["gemini: time gap that starts a conversation"]

def test_gemini_odd_entries():
    convs, skips, _ = read_gemini_activity([{"title": None, "time": 5}, {"title": "Prompted x", "time": "2025-01-01T00:00:00Z",
                                            "safeHtmlItem": "<p>not a list</p>"}, {"title": "Prompted y", "time": [],
                                            "safeHtmlItem": [{"html": 3}, None]}, 42])
    assert convs == [] and len(skips) == 4 and all(isinstance(r, str) and r for _, r in skips)

# --- AI Studio -----------------------------------------------------------------------------------
def test_aistudio_folder_without_extensions():
    convs, report = read_export(STUDIO, progress=False)
    by_title = {c.title: c for c in convs}
    assert report.total == 4 and report.kept == 3 and report.reasons() == {"chunkedPrompt.chunks is not a list": 1}
    s = by_title["Sorting in Python"]                        # a file without an extension, as AI Studio saves them
    assert s.system == "You are a concise Python tutor." and s.model == "gemini-2.5-pro" and s.source == "aistudio"
    assert s.messages == [{"role": "user", "content": "How do I sort a list of dicts by a key?"},
                          {"role": "assistant", "content": 'Use `sorted(rows, key=lambda r: r["age"])`.'},
                          {"role": "user", "content": "[image]\n\nAnd this table?"},
                          {"role": "assistant", "content": "Sort it by `row[1]`: the same way."}]
    assert "thought" not in str(texts(convs)).lower() and "Considering" not in str(texts(convs))
    assert report.notes["messages dropped: thinking (isThought)"] == 2
    assert by_title["No system prompt"].system is None and by_title["No system prompt"].model == "gemini-2.0-flash"

def test_aistudio_zip_single_file_and_bad_input(tmp_path):
    convs, report = read_export(zip_folder(STUDIO, tmp_path / "Google AI Studio.zip"), progress=False)
    assert report.kept == 3
    (c,), _ = read_export(STUDIO / "Sorting in Python", images="drop", progress=False)
    assert c.messages[2]["content"] == "And this table?"
    with pytest.raises(Skip, match="chunks is not a list"): read_aistudio_conversation({"chunkedPrompt": None})
    (tmp_path / "junk").write_text('{"chunkedPrompt": {"chunks": [{"role": "user", "text": "hi", "parts": 3}, 5, '
                                   '{"role": 1, "text": ["x"]}, {"role": "model", "parts": [null, {"text": 2}, {"text": "ok"}]}]}, '
                                   '"systemInstruction": {"parts": "nope"}}')
    (c,), report = read_export(tmp_path / "junk", progress=False)
    assert c.messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]

def test_detection_and_help():
    assert record_kind({"conversations": [{"conversation": {}, "responses": []}]}) == (None, None)
    assert record_kind({"conversations": [], "projects": [], "media_posts": []}) == (None, None)
    assert record_kind({"conversations": [{"from": "human", "value": "hi"}]})[0] == "sharegpt"
    assert record_kind({"chunkedPrompt": {}})[0] == "aistudio"
    assert record_kind({"header": "Gemini Apps", "title": "Used Gemini Apps", "time": "x"})[0] == "gemini"

def test_unknown_file_names_the_formats(tmp_path):
    (tmp_path / "x.json").write_text('[{"foo": 1}]')
    with pytest.raises(ChatftError, match="Grok export.*Gemini.*AI Studio"): read_export(tmp_path / "x.json", progress=False)

# --- never overwrite the user's files ------------------------------------------------------------
def test_cli_refuses_to_overwrite_its_input_and_folders(tmp_path):
    src = tmp_path / "convs.jsonl"
    src.write_text('{"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    before = src.read_bytes()
    with pytest.raises(ChatftError, match="that is the input"): export_cli([str(src), "-o", str(src), "-q"])
    assert src.read_bytes() == before
    (tmp_path / "out").mkdir()
    with pytest.raises(ChatftError, match="is a folder"): write_jsonl([], tmp_path / "out")
    assert (tmp_path / "out").is_dir()

# --- the invariant: nothing the app added reaches training ---------------------------------------
PUA = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
FORBIDDEN = ("<antThinking", "</antThinking", "<antArtifact", "</antArtifact", "<grok:render", "</grok:render", "<argument",
             "THINKSECRET", "TOOLSECRET", "CARDSECRET", "turn0search", "turn1news", "【")

words = st.text(alphabet="abcxyz ABC.,!?\n`*-é漢", min_size=1, max_size=12)
pua_char = st.one_of(st.characters(min_codepoint=0xE000, max_codepoint=0xF8FF),
                     st.characters(min_codepoint=0xF0000, max_codepoint=0xFFFFD),
                     st.characters(min_codepoint=0x100000, max_codepoint=0x10FFFD))
markup = st.one_of(
    st.builds(lambda w: f"\ue200cite\ue202turn0search{len(w)}\ue202turn1news2\ue201", words),
    st.builds(lambda w: f"\ue203{w}\ue204\ue202turn0search3", words),
    st.builds(lambda w: f"\ue200entity\ue202[\"place\",\"{w.strip() or 'x'}\"]\ue201", st.text(alphabet="abc ", max_size=6)),
    st.builds(lambda w: f"\ue200navlist\ue202{w}\ue202turn0news1,turn0news2\ue201", words),
    st.just("\ue200image_group\ue202{\"query\":[\"a\"]}\ue201"), st.just("【3†source】"),
    st.just("\ue200cite\ue202turn1search0"),
    st.builds(lambda w: f"<antThinking>THINKSECRET {w}</antThinking>", words),
    st.builds(lambda w, t: f'<antArtifact identifier="a" type="{t}" title="{w.strip()}">\n{w}\n</antArtifact>', words,
              st.sampled_from(["application/vnd.ant.code", "text/markdown", "text/html", "image/svg+xml", "application/vnd.ant.react"])),
    st.just('<grok:render card_id="1" type="render_inline_citation">\n<argument name="citation_id">CARDSECRET</argument>\n</grok:render>'))
assistant_text = st.lists(st.one_of(words, words, pua_char, markup), min_size=1, max_size=8).map("".join)
user_text = st.lists(st.one_of(words, words, pua_char), min_size=1, max_size=5).map("".join)
turns = st.lists(st.tuples(user_text, assistant_text), min_size=1, max_size=3)

def chatgpt(ts):
    mapping, parent = {"root": {"parent": None, "children": [], "message": None}}, "root"
    def add(nid, role, text, **kw):
        nonlocal parent
        mapping[nid] = {"parent": parent, "children": [], "message": {"author": {"role": role}, "recipient": kw.get("to", "all"),
                        "content": {"content_type": kw.get("kind", "text"), "parts": [text]}}}
        mapping[parent]["children"].append(nid)
        parent = nid
    for i, (u, a) in enumerate(ts):
        add(f"u{i}", "user", u)
        add(f"t{i}", "assistant", "TOOLSECRET search('x')", to="browser")
        add(f"r{i}", "tool", "TOOLSECRET results")
        add(f"h{i}", "assistant", "THINKSECRET", kind="thoughts")
        add(f"a{i}", "assistant", a)
    return [{"id": "c", "mapping": mapping, "current_node": parent}]

def claude(ts):
    msgs = []
    for u, a in ts:
        msgs += [{"sender": "human", "text": u, "content": [{"type": "text", "text": u}]},
                 {"sender": "assistant", "text": "THINKSECRET " + a, "content": [
                     {"type": "thinking", "thinking": "THINKSECRET"}, {"type": "tool_use", "name": "x", "input": {"q": "TOOLSECRET"}},
                     {"type": "tool_result", "content": [{"type": "text", "text": "TOOLSECRET"}]}, {"type": "text", "text": a}]}]
    return [{"uuid": "c", "name": "t", "chat_messages": msgs}]

def grok(ts):
    rs, prev = [], None
    for i, (u, a) in enumerate(ts):
        rs.append({"response": {"_id": f"u{i}", "sender": "human", "message": u, "parent_response_id": prev}})
        rs.append({"response": {"_id": f"a{i}", "sender": "ASSISTANT", "message": a, "parent_response_id": f"u{i}",
                                "thinking_trace": "THINKSECRET"}})
        prev = f"a{i}"
    return {"conversations": [{"conversation": {"id": "c"}, "responses": rs}], "projects": []}

def aistudio(ts):
    chunks = [c for u, a in ts for c in ({"role": "user", "text": u}, {"role": "model", "text": "THINKSECRET", "isThought": True},
                                         {"role": "model", "parts": [{"text": "THINKSECRET", "thought": True}, {"text": a}]})]
    return {"systemInstruction": {"parts": [{"text": "sys \ue000"}]}, "chunkedPrompt": {"chunks": chunks}}

def gemini(ts):
    return [{"header": "Gemini Apps", "title": "Prompted " + u, "time": f"2025-01-01T00:0{i}:00Z",
             "safeHtmlItem": [{"html": "<p>" + html.escape(a) + "</p>"}]} for i, (u, a) in enumerate(ts)][::-1]

FORMATS = {"conversations.json": chatgpt, "claude.json": claude, "prod-grok-backend.json": grok, "prompt.json": aistudio,
           "MyActivity.json": gemini,
           "sharegpt.json": lambda ts: [{"conversations": [{"from": f, "value": v} for u, a in ts for f, v in (("human", u), ("gpt", a))]}],
           "train.jsonl": lambda ts: [{"messages": [{"role": r, "content": v} for u, a in ts for r, v in (("user", u), ("assistant", a))]}]}

@given(turns)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_private_use_markup_thinking_or_tool_text_on_any_format(tmp_path_factory, ts):
    d = tmp_path_factory.mktemp("inv")
    for name, make in FORMATS.items():
        data = make(ts)
        p = d / name
        p.write_bytes(b"\n".join(orjson.dumps(r) for r in data) if name.endswith(".jsonl") else orjson.dumps(data))
        convs, report = read_export(p, progress=False)
        assert report.total >= 1, name
        for c in convs:
            for m in c.messages:
                assert not PUA.search(m["content"]), (name, m)
                assert not any(f in m["content"] for f in FORBIDDEN), (name, m)
            assert c.system is None or not PUA.search(c.system)

def test_cited_words_survive():
    assert strip_citations("It \ue203rose 3%\ue204\ue202turn0search3 in May.") == "It rose 3% in May."
    assert clean_text("a\ue203b\ue204c", role="user") == "abc"
