"""Real exports written by others (../shared/samples, see its SOURCES.md) read with the expected visible thread.

The expectations below were worked out by reading each file by hand: which branch `current_node`
selects, which hidden, tool and reasoning messages must vanish, and what the first and last visible
messages are. The files themselves are never copied into this repository.
"""
import pytest
from chatft.export import read_export

def read(samples, name):
    convs, report = read_export(samples / name, progress=False)
    return convs, report

def roles(c): return "".join(m["role"][0] for m in c.messages)

def test_every_sample_reads(samples):
    for f in sorted(samples.glob("*.json*")):
        convs, report = read(samples, f.name)
        assert report.total == report.kept + len(report.skipped) and report.total > 0, f.name

def test_every_sample_reads_the_same_on_two_cores(samples, tmp_path):
    """A large file is read in forked parts (`PARALLEL_MB`): each sample, and each list of records repeated 40 times
    (large enough to be cut), gives in parts what it gives in one process."""
    import orjson
    from collections import Counter
    from chatft.export import _read_parts
    files, cut = [], 0
    for f in sorted(samples.glob("*.json*")):
        files.append(f)
        data = orjson.loads(f.read_bytes()) if f.suffix == ".json" else None
        if isinstance(data, list):
            files.append(tmp_path / f.name); files[-1].write_bytes(orjson.dumps(data * 40))
            options = dict(images="placeholder", system=True, memory=False, feedback={}, why=Counter())
            cut += _read_parts(str(files[-1]), files[-1].stat().st_size, options, 2) is not None
    assert cut >= 5                       # Claude's and ChatGPT's lists (the others: records it must read in one)
    for f in files:
        one, r1 = read_export(f, progress=False, processes=1)
        two, r2 = read_export(f, progress=False, processes=2)
        assert [c.to_dict() for c in two] == [c.to_dict() for c in one], f.name
        assert (r2.skipped, r2.notes, r2.total) == (r1.skipped, r1.notes, r1.total), f.name

def test_browsing_conversation_drops_tools_and_citations(samples):
    convs, report = read(samples, "librechat__chatgpt-export.json")
    assert report.kept == 2 and not report.skipped
    web = next(c for c in convs if c.id.startswith("d6523d1e"))
    assert roles(web) == "uauaua" and web.model == "gpt-4"
    assert web.messages[0]["content"].startswith("What is the fuel consumption of vw  transporter")
    assert web.messages[2]["content"] == "What about 10 year old model"
    text = " ".join(m["content"] for m in web.messages)
    assert "†" not in text and "【" not in text and "search(" not in text and "mclick(" not in text
    assert "additional weight." in text                                   # "weight【13†source】." lost only the marker
    assert report.notes["messages dropped: tool call"] == 4 and report.notes["messages dropped: tool result"] == 5
    code = next(c for c in convs if c.id.startswith("7c5ab593"))
    assert roles(code) == "uaua" and code.messages[2]["content"] == "give me code in C#"
    assert code.model == "text-davinci-002-render-sha"

def test_tree_follows_current_node_not_children0(samples):
    (c,), _ = read(samples, "librechat__chatgpt-tree.json")
    assert [m["content"] for m in c.messages[:5]] == ["hi there", "Hello! How can I assist you today?", "hi again",
                                                      "Hey! Welcome back. What's on your mind?", "tell me a joke"]
    assert "so cool bro" not in str(c.messages) and "Once upon a time" not in str(c.messages)   # the abandoned branch
    assert c.messages[-1]["content"].endswith("Because they make up everything!")
    assert c.meta["alternatives"][0]["index"] == 5                      # the regenerated joke is kept for preference data

def test_modern_export_custom_instructions_and_corrupted_entry(samples):
    convs, report = read(samples, "librechat__chatgpt-modern-export.json")
    assert report.total == 3 and report.kept == 2
    assert report.skipped == [{"id": "6b0f0d9c-0000-4000-8000-000000000002", "reason": "no mapping (empty or corrupted conversation)"}]
    sre = next(c for c in convs if c.title == "Deploying the staging cluster")
    assert sre.system == "The user is an SRE.\n\nAnswer concisely." and roles(sre) == "uaua"
    assert all("SRE" not in m["content"] for m in sre.messages)           # instructions stay out of the messages
    assert sre.messages[-1]["content"] == "Restore from the last known-good chart."
    pasta = next(c for c in convs if c.title == "Weeknight pasta")
    assert pasta.messages == [{"role": "user", "content": "Something with anchovies?"}, {"role": "assistant", "content": "Puttanesca."}]

def test_2025_exports_with_about_user_and_images(samples):
    (c,), report = read(samples, "echomine__golden_master__001_simple_text__raw.json")
    assert roles(c) == "ua" and c.model == "gpt-4o" and c.title == "Indigenous DNA in Mexico"
    assert c.system.startswith("Preferred name: Tecolote") and report.notes["messages dropped: hidden"] == 4
    assert c.messages[0]["content"].startswith("ME:\n\nWhere in the spectrum of Mexican society")
    (img,), _ = read(samples, "echomine__golden_master__002_with_images__raw.json")
    assert roles(img) == "uaua" and img.messages[0]["content"] == "[image]\n\nInterpret this painting"
    assert img.messages[2]["content"] == "Could there also be erotic connotations?"
    (dropped,), _ = read_export(samples / "echomine__golden_master__002_with_images__raw.json", images="drop", progress=False)
    assert dropped.messages[0]["content"] == "Interpret this painting"
    (gpt,), _ = read(samples, "openwebui-importer__examples__gpt_example.json")
    assert roles(gpt) == "ua" * 5 and gpt.system.startswith("Please keep the initial response to 1 to 2 paragraphs")

def test_thinking_and_web_run_are_dropped(samples):
    (c,), report = read(samples, "skeleton__pionxzh-chatgpt-exporter__tests-fixtures__thinking-summaries.json")
    assert c.messages == [{"role": "user", "content": "question 1"}, {"role": "assistant", "content": "answer 1"},
                          {"role": "user", "content": "question 2"}, {"role": "assistant", "content": "answer 2"}]
    assert report.notes["messages dropped: content type thoughts"] == 4
    assert report.notes["messages dropped: content type reasoning_recap"] == 2

def test_handmade_branch(samples):
    (c,), _ = read(samples, "handmade__mitkury-chatgpt-export-parser__example-conversation.json")
    assert roles(c) == "uaua" and c.messages[0]["content"] == "Hello! Can you help me with a programming question?"
    assert c.messages[-1]["content"].endswith("const greet = (name) => `Hello, ${name}!`;\n```")

def test_claude_thinking_block_dropped(samples):
    (c,), _ = read(samples, "claude__yaleman-anthropic-data__conversations.json")
    assert c.source == "claude" and c.title == "Bleep bloop" and roles(c) == "ua"
    assert c.messages[0]["content"].startswith("Tell me about the facts behind the belief that dog saliva")
    assert c.messages[1]["content"].startswith("Dog saliva") and "The user is asking" not in c.messages[1]["content"]

def test_claude_bulk_redacted(samples):
    convs, report = read(samples, "openwebui-importer__examples__claude_example.json")
    assert report.total == 85 and report.kept == 1                        # the publisher emptied the text of 84
    assert report.reasons() == {"no messages": 84}
    (c,) = convs
    assert c.title == "How Photosynthesis Works" and roles(c) == "ua" * 5  # same-sender runs merged

def test_sharegpt(samples):
    convs, report = read(samples, "sharegpt__lm-sys-FastChat__data__dummy_conversation.json")
    assert report.kept == 500 and convs[0].id == "identity_0" and convs[0].source == "sharegpt"
    assert convs[0].messages[0] == {"role": "user", "content": "Who are you?"}
    assert all(c.messages[0]["role"] == "user" for c in convs)

def test_openai_jsonl_bad_rows(samples):
    convs, report = read(samples, "openai-finetune-jsonl__openai-cookbook__examples-data__toy_chat_fine_tuning.jsonl")
    assert report.total == 5 and report.kept == 4 and report.reasons() == {"no user message": 1}
    assert convs[0].system == "You are a happy assistant that puts a positive spin on everything."
    assert roles(convs[1]) == "ua" * 4
    assert max(len(c.messages[-1]["content"]) for c in convs) > 20000     # the overlong reply is kept: cleaning decides
