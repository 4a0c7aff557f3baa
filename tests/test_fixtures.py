"""Every reader path on the project's own hand-written fixtures (tests/fixtures, see its README.md).

The fixtures reproduce, in our own words and ids, the structures the real exports in ../shared/samples
show (tests/test_samples.py reads those when they are there). The expected conversations below were
worked out by hand from each file: which branch `current_node` selects, which hidden, tool and reasoning
messages vanish, what the markers, images and merged runs become. ZIPs and shards are built from the JSON
fixtures at test time, so no binary is committed.
"""
import os, shutil, subprocess, sys, zipfile
from datetime import datetime, timezone
from pathlib import Path
import orjson, pytest
from chatft.export import read_export
from chatft.core import read_jsonl

FIX = Path(__file__).parent / "fixtures"
CHATGPT, CLAUDE, SHAREGPT, OPENAI, PLAIN = (FIX / k for k in ("chatgpt", "claude", "sharegpt", "openai", "plain"))
DUPLICATE = "duplicate id: an older copy (the newest update_time is kept)"

def U(text): return {"role": "user", "content": text}
def A(text): return {"role": "assistant", "content": text}
def utc(*args): return datetime(*args, tzinfo=timezone.utc).timestamp()

def read(path, **kw):
    "(conversations as `to_dict()`s, report)."
    convs, report = read_export(path, progress=False, **kw)
    return [c.to_dict() for c in convs], report

def by_id(dicts): return {d["id"]: d for d in dicts}

# --- ChatGPT: conversations.json (with message_feedback.json beside it) ------------------------------------
def gid(n, group=1): return f"f1c7000{group}-0000-4000-8000-00000000000{n}"

SOURDOUGH = dict(   # branches: an edited user message (abandoned draft ends in_progress) and a regenerated answer
    id=gid(1), title="Sourdough starter", create_time=1714000000.0, update_time=1714000900.5, model="gpt-4o", source="chatgpt",
    messages=[U("My sourdough starter smells like nail polish. Is it ruined?"),
              A("Not ruined: that smell means it is hungry. Feed it twice a day for a few days."),
              U("Which flour should I feed it with?"),
              A("Rye or whole wheat for a boost, then back to your usual bread flour."),
              U("How do I know when it is ready to bake with?"),
              A("When it doubles within four to six hours and a spoonful floats in water.")],
    meta={"alternatives": [{"index": 5, "content": "When it doubles within six hours of a feed."}],
          "feedback": [{"index": 1, "rating": "thumbsDown"}, {"index": 5, "rating": "thumbsUp"}]})
PORTO = dict(       # 2025: client-created-root, instructions wrapped in content and clean in metadata, channel final
    id=gid(2), title="Trip to Porto", create_time=1750000000.0, update_time=1750000300.0, model="gpt-4o", source="chatgpt",
    system="I live in Leeds and travel by train.\n\nKeep answers under five sentences.",
    messages=[U("Two days in Porto in March: what should I not miss?"),
              A("Walk the Ribeira at dusk, cross the Dom Luis I bridge on the upper deck, and book a port cellar tour in Gaia."),
              U("Is the train from the airport easy?"),
              A("Take the metro's violet line E: it runs into the centre in about half an hour.")])
REGEX = dict(       # instructions only as user_editable_context content
    id=gid(3), title="Regex for dates", create_time=1700000000.0, update_time=1700000100.0, model="gpt-4", source="chatgpt",
    system="I write Python for a living.\n\nShow code first, explain after.",
    messages=[U("A regex for dates like 2024-03-31?"),
              A(r"`\d{4}-\d{2}-\d{2}` matches the shape; parse it with datetime.strptime to be sure the date exists.")])
PLANT = dict(       # current_node not in mapping: the newest leaf, not children[0] and not the last node of mapping
    id=gid(4), title="Houseplant light", create_time=1715000000.0, update_time=1715000200.0, model="gpt-4o", source="chatgpt",
    messages=[U("How much light does a fiddle-leaf fig need?"),
              A("Bright, indirect light for most of the day, a metre or two from a south window.")],
    meta={"current_node_fallback": True, "alternatives": [{"index": 1, "content": "Lots of light."}]})
NO_MAPPING = {"id": gid(5), "reason": "no mapping (empty or corrupted conversation)"}
ODD = dict(         # null title, times, metadata and default_model_slug; a null part
    id=gid(6), source="chatgpt", messages=[U("Translate 'good morning' into Welsh."), A("Bore da.")])
PACKING = dict(     # "continue generating": the cut answer and its continuation are one message; feedback on the first piece
    id=gid(7), title="Packing list", create_time=1717000000.0, update_time=1717000060.0, model="gpt-4", source="chatgpt",
    messages=[U("What should I pack for a week of hiking in Scotland?"),
              A("Layers: a base layer, a fleece and a waterproof shell.\n\nFeet: broken-in boots and two pairs of wool socks.\n\n"
                "Extras: midge repellent, a paper map and a head torch.")],
    meta={"feedback": [{"index": 1, "rating": "thumbsUp"}]})
CHATGPT_KEPT = [SOURDOUGH, PORTO, REGEX, PLANT, ODD, PACKING]

def check_chatgpt_export(convs, report, extra_skips=(), copies=0):
    "The hand-worked result of conversations.json; `copies` older copies of the packing list (with a hidden root each) read too."
    assert by_id(convs) == by_id(CHATGPT_KEPT)
    assert report.kept == 6 and report.skipped == [NO_MAPPING, *extra_skips]
    assert report.notes["messages dropped: hidden"] == 6 + copies # 3 system roots, 2 instruction nodes, 1 contextual system
    assert report.notes["messages dropped: empty"] == 1           # the empty assistant piece of 2025 exports
    assert report.notes["current_node missing: newest leaf used"] == 1
    assert report.notes["formats"] == f"chatgpt ({7 + copies})"

@pytest.mark.parametrize("expected", CHATGPT_KEPT, ids=lambda d: d.get("title") or "odd-types")
def test_chatgpt_conversation(expected):
    convs, _ = read(CHATGPT / "conversations.json")
    assert by_id(convs)[expected["id"]] == expected

def test_chatgpt_conversations_json_report_and_order():
    convs, report = read(CHATGPT / "conversations.json")
    assert [c["id"] for c in convs] == [c["id"] for c in CHATGPT_KEPT]   # the file's order
    check_chatgpt_export(convs, report)

def test_chatgpt_folder():
    "The fixture folder is an unzipped export: conversations.json is read, the other JSON files are not data."
    check_chatgpt_export(*read(CHATGPT))

def zip_export(dest, files:dict)->Path:
    "A ZIP export with `files` (name -> bytes or a fixture path), like the one the app mails."
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items(): z.writestr(name, data.read_bytes() if isinstance(data, Path) else data)
    return dest

def export_files(**conversation_files)->dict:
    "The files of a ChatGPT export: the given conversations file(s), feedback, user.json, chat.html, an uploaded image."
    return dict(conversation_files, **{"message_feedback.json": CHATGPT / "message_feedback.json", "user.json": CHATGPT / "user.json",
                "chat.html": b"<html><body><div id='root'></div></body></html>",
                "file-F1C7AAAA0001-IMG_0412.jpeg": b"\xff\xd8\xff\xe0 not really a jpeg"})

def test_chatgpt_zip(tmp_path):
    z = zip_export(tmp_path / "export.zip", export_files(**{"conversations.json": CHATGPT / "conversations.json"}))
    check_chatgpt_export(*read(z))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.zip"]   # read in place, nothing extracted

def shards(newest_first:bool)->dict:
    "conversations-000/-001.json from the fixture; the packing list is in both, with an older, shorter copy."
    raws = orjson.loads((CHATGPT / "conversations.json").read_bytes())
    packing = raws[-1]
    older = dict(packing, update_time=packing["update_time"] - 30, title="Packing list (older copy)", current_node="s7-a1")
    first, second = raws[:3] + [older], raws[3:]
    if newest_first: first, second = raws[:3] + [packing], raws[3:-1] + [older]
    return {"conversations-000.json": orjson.dumps(first), "conversations-001.json": orjson.dumps(second)}

@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("as_zip", [False, True])
def test_chatgpt_shards_newest_copy_wins(tmp_path, newest_first, as_zip):
    files = export_files(**shards(newest_first))
    if as_zip: path = zip_export(tmp_path / "export.zip", files)
    else:
        path = tmp_path / "export"; path.mkdir()
        for name, data in files.items(): (path / name).write_bytes(data.read_bytes() if isinstance(data, Path) else data)
    convs, report = read(path)
    check_chatgpt_export(convs, report, extra_skips=[{"id": gid(7), "reason": DUPLICATE}], copies=1)

def test_chatgpt_feedback_only_beside_conversations_json(tmp_path):
    "A file of another name is not an export folder's conversations file: no message_feedback.json is looked for."
    shutil.copy(CHATGPT / "message_feedback.json", tmp_path)
    shutil.copy(CHATGPT / "conversations.json", tmp_path / "mine.json")
    convs = by_id(read(tmp_path / "mine.json")[0])
    assert convs[gid(1)]["meta"] == {"alternatives": SOURDOUGH["meta"]["alternatives"]} and "meta" not in convs[gid(7)]

def test_chatgpt_options_drop_system():
    convs, _ = read(CHATGPT / "conversations.json", system=False)
    assert [c for c in convs if "system" in c] == []
    assert by_id(convs)[gid(2)]["messages"] == PORTO["messages"]          # the instructions do not move into the messages

# --- ChatGPT: one structure per file -------------------------------------------------------------------------
def test_chatgpt_gpt4_browsing():
    (c,), report = read(CHATGPT / "browsing.json")
    assert c == dict(id=gid(1, 2), title="Clerigos tower", create_time=1698000000.0, update_time=1698000040.0, model="gpt-4",
                     source="chatgpt", messages=[U("How tall is the Clerigos tower in Porto?"),
                                                 A("The Clerigos tower is about 75 metres tall, and 240 steps lead to the top.")])
    assert report.kept == 1 and not report.skipped
    assert {k: v for k, v in report.notes.items() if k.startswith("messages dropped")} == {
        "messages dropped: hidden": 1, "messages dropped: tool call": 2, "messages dropped: tool result": 3}

def test_chatgpt_three_generations_of_citation_markers():
    (c,), report = read(CHATGPT / "citations.json")
    assert c == dict(id=gid(2, 2), title="Bridge facts", create_time=1740000000.0, update_time=1740000200.0, model="gpt-4o",
                     source="chatgpt", messages=[
                         U("When did the Dom Luis I bridge open?"), A("It opened in 1886, and the upper deck now carries the metro."),
                         U("Who designed it?"), A("Theophile Seyrig, once a partner of Gustave Eiffel."),
                         U("How long is it?"), A("The main arch spans 172 metres. The upper deck is about 395 metres long.")])

def test_chatgpt_cited_span_keeps_words_drops_markers():
    "2024-25 web answers wrap the cited words in U+E203 ... U+E204 before the citation: the words stay, the markers go."
    (c,), _ = read(CHATGPT / "cited_span.json")
    assert c["messages"] == [U("Is the Porto metro big?"),
                             A("Not very: it has six lines and about eighty stations, most of them above ground.")]
    assert not any(0xE000 <= ord(ch) <= 0xF8FF for m in c["messages"] for ch in m["content"])

IMAGES = [U("[image]\n\nWhat bird is this?"), A("A robin: the orange breast and round shape give it away."),
          U("Summarise the leaflet I attached."), A("It lists ten garden birds and what each one eats."),
          U("[image]"), A("And this one is a wren: tiny, brown, tail cocked up.")]      # an image with no words

def test_chatgpt_images_and_attachments():
    "A single conversation object (not a list), as some tools save one conversation."
    (c,), report = read(CHATGPT / "images.json")
    assert c == dict(id=gid(4, 2), title="Garden bird", create_time=1749000000.0, update_time=1749000100.0, model="gpt-4o",
                     source="chatgpt", messages=IMAGES)
    assert report.notes["messages dropped: hidden"] == 1 and report.notes["formats"] == "chatgpt (1)"
    (dropped,), _ = read(CHATGPT / "images.json", images="drop")
    assert dropped["messages"][:3] == [U("What bird is this?")] + IMAGES[1:3]
    assert "[image]" not in str(dropped["messages"])

def test_chatgpt_dropped_image_turn_does_not_merge_answers():
    "images='drop' empties the image-only question: its answer goes with it, never joined to the answer before it."
    (dropped,), report = read(CHATGPT / "images.json", images="drop")
    assert dropped["messages"] == [U("What bird is this?")] + IMAGES[1:4]          # still user, assistant, user, assistant
    assert report.notes["messages dropped: empty"] == 1 and report.notes["messages dropped: answer to an empty question"] == 1

def test_chatgpt_reasoning_thoughts_and_web_run():
    "A single conversation object with only `id` and integer times; the model comes from the answers' model_slug."
    (c,), report = read(CHATGPT / "thinking.json")
    assert c == dict(id=gid(5, 2), title="Leeds weather", create_time=1756000000.0, update_time=1756000090.0, model="gpt-5-thinking",
                     source="chatgpt", messages=[U("Will it rain in Leeds tomorrow?"), A("Showers are likely in the afternoon; take a coat."),
                                                 U("And on Sunday?"), A("Drier, with sun after lunch.")])
    assert {k: v for k, v in report.notes.items() if k.startswith("messages dropped")} == {
        "messages dropped: tool call": 1, "messages dropped: tool result": 1,
        "messages dropped: content type thoughts": 2, "messages dropped: content type reasoning_recap": 2,
        "messages dropped: hidden reasoning": 1}                    # a message on channel "analysis"

VOICE = dict(id=gid(6, 2), title="Rainy dinner", create_time=1752000000.0, update_time=1752000020.0, model="gpt-4o", source="chatgpt",
             messages=[U("It's raining. What should I cook tonight?"), A("A pot of lentil soup: warm, cheap and ready in forty minutes.")])

def test_chatgpt_voice_transcriptions_dropped_audio():
    "Voice mode: the words are the audio_transcription part; with images='drop' the audio pointers leave nothing."
    (c,), _ = read(CHATGPT / "voice.json", images="drop")
    assert c == VOICE

def test_chatgpt_voice_transcriptions_without_placeholders():
    "The recordings beside their transcriptions add no '[audio]': a model must not learn to end its answers with it."
    (c,), report = read(CHATGPT / "voice.json")
    assert c == VOICE and not any(k.startswith("attachments") for k in report.notes)

# --- Claude.ai -------------------------------------------------------------------------------------------------
def cid(n): return f"c1a0de01-0000-4000-8000-00000000000{n}"
NOTES = "Turn these notes into three action points."
NOTES_TXT = "**notes.txt**\n\n```\nBudget due Monday. Ana books the room. Test the projector.\n```"   # what Claude read
ACTIONS = "1. Send the budget by Monday.\n2. Ana books the room.\n3. Test the projector."
ROOM = "Room 2B on the plan seats twelve, so everyone fits."
CLAUDE_KEPT = [
    dict(id=cid(1), title="Dog walk route", create_time=utc(2025, 7, 1, 9), update_time=utc(2025, 7, 1, 9, 1, 10, 500000), source="claude",
         messages=[U("Where can I walk the dog for an hour near the canal?"),               # the thinking block is dropped
                   A("Try the canal towpath: flat, shaded and about 5 km there and back.")]),
    dict(id=cid(2), create_time=utc(2025, 6, 20, 18, 30), update_time=utc(2025, 6, 20, 18, 31), source="claude",   # empty name
         messages=[U("I have a job interview on Friday.\n\nAny tips for the salary question?"),  # the same sender twice: merged
                   A("Research the usual range first, then name a figure near its top.")]),
    dict(id=cid(3), title="Meeting notes", create_time=utc(2025, 5, 2, 8), update_time=utc(2025, 5, 2, 8, 2), source="claude",
         messages=[U(NOTES_TXT + "\n\n[image]\n\n" + NOTES),               # an attachment's extracted text, an image file
                   A(ACTIONS), U("[file]"), A(ROOM)]),                            # a PDF with no words
    dict(id=cid(4), title="Rain haiku", create_time=utc(2024, 3, 10, 12), update_time=utc(2024, 3, 10, 12, 0, 30), source="claude",
         messages=[U("A haiku about rain, please."),                                         # `text` only, no content blocks
                   A("Rain taps on the roof\nthe gutter hums its one tune\nthe cat stays indoors")])]

def test_claude():
    convs, report = read(CLAUDE / "conversations.json")
    assert convs == CLAUDE_KEPT
    assert report.kept == 4 and report.skipped == [{"id": cid(5), "reason": "no messages"}]   # a redacted (emptied) conversation
    assert report.notes["messages dropped: empty"] == 2 and report.notes["formats"] == "claude (5)"
    assert report.notes["attached files kept as fenced blocks (their extracted text)"] == 1
    assert report.notes["attachments as placeholders ([image], [file], [audio])"] == 2

def test_claude_files_dropped():
    "images='drop' drops the placeholders, not the text Claude read; the emptied PDF question goes with its answer."
    convs, report = read(CLAUDE / "conversations.json", images="drop")
    assert by_id(convs)[cid(3)]["messages"] == [U(NOTES_TXT + "\n\n" + NOTES), A(ACTIONS)]   # not ACTIONS + ROOM merged
    assert report.notes["messages dropped: answer to an empty question"] == 1
    assert report.notes["attachments dropped (images='drop')"] == 2

def test_claude_zip(tmp_path):
    z = zip_export(tmp_path / "claude.zip", {"conversations.json": CLAUDE / "conversations.json",
                                             "users.json": b'[{"uuid": "acc0f1c7-0000-4000-8000-000000000000"}]', "projects.json": b"[]"})
    assert read(z)[0] == CLAUDE_KEPT

# --- ShareGPT --------------------------------------------------------------------------------------------------
def test_sharegpt():
    convs, report = read(SHAREGPT / "sharegpt.json")
    assert convs == [
        dict(id="tutor_0", source="sharegpt", system="You are a patient maths tutor.",
             messages=[U("What is 7 times 8?"), A("56."), U("And 7 times 9?"), A("63: one more seven.")]),
        dict(id="sharegpt-1", source="sharegpt", messages=[U("Name a green vegetable."), A("Spinach.")]),   # no id: file and position
        dict(id="roles_user_assistant", source="sharegpt",
             messages=[U("Spell 'necessary'."), A("N-E-C-E-S-S-A-R-Y."), U("Thanks."), A("You're welcome.")])]
    assert report.kept == 3 and report.skipped == [{"id": "greeting_only", "reason": "no user message"}]
    assert report.notes["messages dropped: empty"] == 1 and report.notes["messages dropped: not user or assistant"] == 1

def test_system_false_for_flat_formats():
    "system=False drops the system prompt of every format, not only ChatGPT's custom instructions."
    for path in (SHAREGPT / "sharegpt.json", OPENAI / "train.jsonl", PLAIN / "seeds.jsonl", PLAIN / "chatft.jsonl"):
        convs, _ = read(path, system=False)
        assert convs and not any("system" in c for c in convs), path.name
    assert by_id(read(SHAREGPT / "sharegpt.json", system=False)[0])["tutor_0"]["messages"][0] == U("What is 7 times 8?")

# --- OpenAI fine-tuning JSONL ----------------------------------------------------------------------------------
PICTURE = "What is in this picture?"
OPENAI_KEPT = [
    dict(id="train-0", source="messages", system="You answer in one short sentence.",
         messages=[U("Why is the sky blue?"), A("Air scatters blue light more than red light.")]),
    dict(id="train-1", source="messages", messages=[U("Give me a word that rhymes with moon."), A("Spoon."), U("Another?"), A("Tune.")]),
    dict(id="train-3", source="messages", messages=[U("Say hello many times."), A(" ".join(["hello"] * 700))]),   # overlong: kept
    dict(id="train-4", source="messages", messages=[U(PICTURE), A("A cat asleep on a keyboard.")]),    # list-of-parts content, images="drop"
    dict(id="train-5", source="messages", messages=[U("What's the weather in Oslo?"), A("It is 4 degrees in Oslo.")])]  # tool call, result

def test_openai_finetune_jsonl():
    convs, report = read(OPENAI / "train.jsonl")
    assert [c for c in convs if c["id"] != "train-4"] == [c for c in OPENAI_KEPT if c["id"] != "train-4"]
    picture = by_id(convs)["train-4"]
    assert picture["messages"][0]["content"].endswith(PICTURE) and picture["messages"][1:] == OPENAI_KEPT[3]["messages"][1:]
    assert report.kept == 5 and report.skipped == [{"id": "train-2", "reason": "no user message"}]
    assert report.notes["messages dropped: empty"] == 1 and report.notes["messages dropped: not user or assistant"] == 1
    assert report.notes["formats"] == "messages (6)"

def test_openai_image_part_placeholder():
    "An image_url part is '[image]' before the words (as the other readers place attachments), counted in the report."
    convs, report = read(OPENAI / "train.jsonl")
    assert by_id(convs)["train-4"]["messages"][0] == U("[image]\n\n" + PICTURE)
    assert report.notes["attachments as placeholders ([image], [file], [audio])"] == 1

def test_openai_image_part_dropped():
    convs, report = read(OPENAI / "train.jsonl", images="drop")
    assert by_id(convs)["train-4"] == OPENAI_KEPT[3] and report.notes["attachments dropped (images='drop')"] == 1

# --- plain seed files and CSV transcripts ----------------------------------------------------------------------
def test_seed_json_and_jsonl():
    convs, report = read(PLAIN / "seed.json")
    assert convs == [dict(id="seed-0", source="messages", messages=[U("What's a good name for a grey cat?"), A("Pebble.")]),
                     dict(id="seed-walk", title="Morning walk", source="messages", system="You are brief.",
                          messages=[U("Should I walk before or after breakfast?"), A("Before, if you can: it is cooler.")])]
    assert report.kept == 2 and not report.skipped
    convs, report = read(PLAIN / "seeds.jsonl")
    assert convs == [dict(id="seeds-0", source="messages", messages=[U("Capital of Wales?"), A("Cardiff.")]),
                     dict(id="seeds-1", source="messages", system="Reply in French.", messages=[U("Thank you"), A("Merci.")])]
    assert read(PLAIN / "wrapped.json")[0] == [dict(id="wrapped-0", source="messages", messages=[U("Largest planet?"), A("Jupiter.")])]

def test_chatft_jsonl_round_trip():
    "chatft's own JSONL reads back as written: source, system, times and meta kept."
    lines = [orjson.loads(l) for l in (PLAIN / "chatft.jsonl").read_bytes().splitlines()]
    convs, report = read(PLAIN / "chatft.jsonl")
    assert convs == lines and report.kept == 2
    assert [c.to_dict() for c in read_jsonl(PLAIN / "chatft.jsonl")] == lines

def test_csv_transcripts():
    convs, report = read(PLAIN / "transcript.csv")                        # UTF-8 BOM, quoted comma and newline, an empty reply
    assert convs == [dict(id="transcript-k1", source="messages", messages=[
                          U("Hi, who are you?"), A("I am a helpful bot."), U("Tell me a two-line poem."), A("Roses are red,\nthe sky is too.")]),
                     dict(id="transcript-k2", source="messages", messages=[U("Bye")])]
    assert report.kept == 2 and report.notes["messages dropped: empty"] == 1
    convs, _ = read(PLAIN / "exchanges.csv")                               # prompt/response columns, no conversation column
    assert convs == [dict(id="exchanges-row-2", source="messages", messages=[U("2 + 2?"), A("4")]),
                     dict(id="exchanges-row-3", source="messages", messages=[U("Colour of the sky?"), A("Blue on a clear day.")])]

# --- the console script ----------------------------------------------------------------------------------------
def test_cli_export_zip(tmp_path):
    z = zip_export(tmp_path / "export.zip", export_files(**shards(newest_first=False)))
    out = tmp_path / "convs.jsonl"
    r = subprocess.run([str(Path(sys.executable).parent / "chatft"), "export", str(z), "-o", str(out), "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert by_id(c.to_dict() for c in read_jsonl(out)) == by_id(CHATGPT_KEPT)
    saved = orjson.loads(out.with_suffix(".report.json").read_bytes())
    assert saved["kept"] == 6 and saved["skipped"] == [NO_MAPPING, {"id": gid(7), "reason": DUPLICATE}]
    assert f"wrote 6 conversations to {out}" in r.stdout
    r = subprocess.run([str(Path(sys.executable).parent / "chatft"), "export", str(z), "-o", str(out), "-q", "--no-system", "--images", "drop"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not any(c.system for c in read_jsonl(out))
