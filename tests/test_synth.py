"Tests of chatft.synth beyond its notebook: determinism, every shape, shards, the large export, the next month."
import zipfile, orjson, pytest
from chatft.synth import synthetic_conversations, synthetic_export, large_export

def _load_dir(folder):
    return {p.name: orjson.loads(p.read_bytes()) for p in folder.iterdir() if p.suffix == ".json"}

def test_deterministic_for_a_seed(tmp_path):
    a, b, c = synthetic_conversations(30, seed=3), synthetic_conversations(30, seed=3), synthetic_conversations(30, seed=4)
    assert a == b and a != c
    assert synthetic_export(tmp_path/"a", n=20, seed=3, fmt="json").read_bytes() == synthetic_export(tmp_path/"b", n=20, seed=3, fmt="json").read_bytes()

def test_visible_threads_are_plain_chat():
    convs = synthetic_conversations()
    for c in convs:
        assert c.messages and c.messages[0]['role'] == "user"
        assert all(m['role'] in ("user", "assistant") and isinstance(m['content'], str) and m['content'] for m in c.messages)
        assert all(a['role'] != b['role'] for a, b in zip(c.messages, c.messages[1:]))       # pieces already merged
        text = "".join(m['content'] for m in c.messages)
        assert "†source】" not in text and "\ue200" not in text and "citeturn" not in text
    assert any(c.system for c in convs) and not any("```" in (c.system or "") for c in convs)
    assert any(m['content'].startswith("[image]\n\n") for c in convs for m in c.messages)
    assert len({c.id for c in convs}) == len(convs)

@pytest.mark.parametrize("fmt", ["zip", "folder", "json", "shards"])
def test_every_format_loads(tmp_path, fmt):
    p = synthetic_export(tmp_path, n=25, fmt=fmt)
    if fmt == "zip":
        z = zipfile.ZipFile(p)
        assert sorted(z.namelist()) == ["chat.html", "conversations.json", "message_feedback.json", "user.json"]
        files = {n: orjson.loads(z.read(n)) for n in z.namelist() if n.endswith(".json")}
    elif fmt == "json": files = {p.name: orjson.loads(p.read_bytes())}
    else: files = _load_dir(p)
    convs = [c for name, v in files.items() if name.startswith("conversations") for c in v]
    ids = {c['id'] for c in convs}
    assert ids == {c.id for c in synthetic_conversations(25)}
    for c in convs:
        assert c['mapping'] and all(set(n) >= {"id", "message", "parent", "children"} for n in c['mapping'].values())
    if fmt in ("zip", "folder", "shards"):
        assert {f['rating'] for f in files["message_feedback.json"]} == {"thumbsUp", "thumbsDown"}

def test_current_node_path_skips_abandoned_branches(tmp_path):
    raws = orjson.loads(synthetic_export(tmp_path, fmt="json").read_bytes())
    first_child_wrong = 0
    for r in raws[:-1]:
        m, path, n = r['mapping'], set(), r['current_node']
        while n: path.add(n); n = m[n]['parent']
        for node in m.values():
            if len(node['children']) > 1 and node['id'] in path:
                assert sum(ch in path for ch in node['children']) == 1
                first_child_wrong += node['children'][0] not in path
    assert first_child_wrong > 0
    assert raws[-1]['current_node'] not in raws[-1]['mapping']

def test_shards_hold_a_duplicate_newest_wins(tmp_path):
    files = _load_dir(synthetic_export(tmp_path, fmt="shards"))
    s0, s1 = files["conversations-000.json"], files["conversations-001.json"]
    dup = {c['id'] for c in s0} & {c['id'] for c in s1}
    assert len(dup) == 1
    (cid,) = dup
    old = next(c for c in s1 if c['id'] == cid); new = next(c for c in s0 if c['id'] == cid)
    assert old['update_time'] < new['update_time']
    assert new['title'] == next(c for c in synthetic_conversations() if c.id == cid).title

def test_large_export_is_valid_json_of_the_target_size(tmp_path):
    p = large_export(tmp_path, target_mb=2, seed=1)
    assert 1.9e6 <= p.stat().st_size <= 2.3e6
    data = orjson.loads(p.read_bytes())
    assert len(data) > 20 and all("mapping" in c and "current_node" in c for c in data)
    assert len({c['id'] for c in data}) == len(data)
    assert large_export(tmp_path/"again", target_mb=2, seed=1).read_bytes() == p.read_bytes()

def test_large_export_of_a_heavy_user(tmp_path):
    "`chars`: the shape of issue 28's heavy user, about 5,500 characters in about 5.5 messages a conversation."
    from chatft.export import read_export
    p = large_export(tmp_path, target_mb=3, seed=2, chars=7000)
    assert 2.9e6 <= p.stat().st_size <= 3.3e6
    convs = read_export(p, progress=False)[0]
    chars = [sum(len(m['content']) for m in c.messages) for c in convs]
    assert 4500 < sum(chars) / len(convs) < 6500 and 4.5 < sum(len(c.messages) for c in convs) / len(convs) < 6.5
    assert large_export(tmp_path/"again", target_mb=3, seed=2, chars=7000).read_bytes() == p.read_bytes()

# The honesty rule: no reply, nor a 50-character stretch of one, is shared by two conversations, except the
# duplicates put there on purpose for the cleaner. The checker below is written apart from chatft.synth's own.
from chatft.export import read_export
from chatft.core import ChatftError
from chatft.clean import clean
from chatft.synth import _ERROR_REPLY, _HELLO, shared_stretches, _Seen, _fresh
import chatft.synth as synth

def stretches(text, width=50):
    t = " ".join(text.lower().split())
    return {t[k:k + width] for k in range(len(t) - width + 1)} if len(t) >= width else {t}

def sharing_pairs(convs):
    "{(id, id)} of conversations where a reply of one shares a stretch (or all of it) with any message of the other."
    in_reply, in_text = {}, {}
    for c in convs:
        for m in c.messages:
            for s in stretches(m['content']):
                in_text.setdefault(s, set()).add(c.id)
                if m['role'] == 'assistant': in_reply.setdefault(s, set()).add(c.id)
    return {tuple(sorted((a, b))) for s, ids in in_reply.items() for a in ids for b in in_text[s] if a != b}

def why_shared(a, b):
    "Which deliberate duplicate two conversations are, or None."
    if a.messages[-1]['content'] == _ERROR_REPLY == b.messages[-1]['content']: return "error reply"
    if a.messages == _HELLO == b.messages: return "greeting"
    if a.messages[1:] == b.messages[1:] and (a.messages[0]['content'].endswith(b.messages[0]['content'])
                                             or b.messages[0]['content'].endswith(a.messages[0]['content'])): return "asked again"
    return None

DELIBERATE = {20: set(), 60: {"error reply", "greeting", "asked again"}, 200: {"error reply", "greeting", "asked again"}}

@pytest.mark.parametrize("n", [20, 60, 200])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_reply_stretch_is_shared_across_conversations(tmp_path, n, seed):
    got, _ = read_export(synthetic_export(tmp_path, n=n, seed=seed), progress=False)
    by_id = {c.id: c for c in got}
    kinds = {why_shared(by_id[a], by_id[b]) for a, b in sharing_pairs(got)}
    assert kinds == DELIBERATE[n]                                    # before cleaning: only the duplicates made on purpose
    kept, report = clean(got)
    assert sharing_pairs(kept) == set()                              # the cleaner caught every one of them
    assert report.reasons()["near duplicate"] == (n + 5) // 30 and len(kept) > n * 0.7
    assert shared_stretches(kept) == {} and set(shared_stretches(got)) == sharing_pairs(got)

def test_shards_read_back_without_shared_replies(tmp_path):
    got, _ = read_export(synthetic_export(tmp_path, n=60, fmt="shards"), progress=False)
    assert len(got) == 60 and sharing_pairs(clean(got)[0]) == set()   # the older copy of a conversation is gone

def test_the_check_catches_a_planted_collision():
    seen = _Seen()
    seen.add([dict(role="user", content="how long does lentil dal keep"),
              dict(role="assistant", content="Cooked lentil dal keeps 3 to 4 days at 4 °C or colder, in a lidded tub.")])
    assert seen.clashes("q", "Yes!  COOKED lentil dal keeps 3 to 4 days at 4 °C or colder, in a box.")   # 50 characters in common
    assert not seen.clashes("q", "Cooked lentil dal keeps 3 to 4 days at 5 °C or colder, in a lidded tub.")
    assert seen.clashes("you said: cooked lentil dal keeps 3 to 4 days at 4 °C or colder?", "Yes.")  # a question quoting a reply
    assert not seen.clashes("how long does lentil dal keep", "Four days.")                            # questions may repeat
    draws = iter([("q", "Cooked lentil dal keeps 3 to 4 days at 4 °C or colder, in a lidded tub."), ("q", "Four days.")])
    assert _fresh(lambda: next(draws), seen) == ("q", "Four days.")

def test_a_generator_that_can_only_repeat_itself_fails_clearly(monkeypatch):
    same = lambda rng: ("a question", "The only answer this generator knows, long enough to be a stretch of 50.")
    monkeypatch.setattr(synth, "TOPICS", {"cooking": [same]})
    monkeypatch.setattr(synth, "OTHER_LANGUAGES", [same])
    with pytest.raises(ChatftError, match="Ask for fewer"): synthetic_conversations(5)
    reply = same(None)[1]
    a, b = synth.Conversation("a", [dict(role="assistant", content=reply)]), synth.Conversation("b", [dict(role="user", content=reply.upper())])
    assert list(shared_stretches([a, b])) == [("a", "b")] and sharing_pairs([a, b]) == {("a", "b")}

def test_replies_keep_the_house_style():
    convs = synthetic_conversations(200, seed=1)
    firsts = [c.messages[1]['content'] for i, c in enumerate(convs) if synth._plain(i)]
    assert len(firsts) > 100 and all("\n\nTip: " in a for a in firsts)
    replies = " ".join(m['content'] for c in convs for m in c.messages if m['role'] == 'assistant')
    assert "°C" in replies and " km" in replies and " g of " in replies
    assert not any(unit in replies for unit in ["°F", " miles", " lb ", " ounces", " pints", "Fahrenheit"])

# A month later: the same person's next export, read back with the real reader and compared with the first.
from chatft.synth import synthetic_next_month

def _both(tmp_path, n=60, seed=0, fmt="zip", **kw):
    "The first export and the later one as read, by id, and what the later one says happened."
    first = synthetic_export(tmp_path/"first", n=n, seed=seed, fmt=fmt)
    later, what = synthetic_next_month(tmp_path/"later", n=n, seed=seed, fmt=fmt, **kw)
    by_id = lambda p: {c.id: c for c in read_export(p, progress=False)[0]}
    return by_id(first), by_id(later), what

def _raws(p):
    "The raw conversation objects of a ZIP export, by id."
    return {r['id']: r for r in orjson.loads(zipfile.ZipFile(p).read("conversations.json"))}

@pytest.mark.parametrize("n,seed", [(60, 0), (60, 1), (120, 2)])
def test_next_month_reads_back_as_a_month_of_changes(tmp_path, n, seed):
    before, after, what = _both(tmp_path, n, seed)
    assert {k: len(v) for k, v in what.items()} == dict(grown=6, changed=3, deleted=3, new=20,
                                                        unchanged=n - 12)
    assert set(before) == {k for f in ("grown", "changed", "deleted", "unchanged") for k in what[f]}
    assert set(after) == set(before) - set(what["deleted"]) | set(what["new"])
    assert not set(what["new"]) & set(before) and not set(what["deleted"]) & set(after)
    for k in what["unchanged"]: assert after[k] == before[k]
    for k in what["grown"]:
        old, new = before[k].messages, after[k].messages
        assert new[:len(old)] == old and 1 <= (len(new) - len(old)) // 2 <= 3 and len(new) % 2 == 0
        assert [m['role'] for m in new[len(old):]] == ["user", "assistant"] * ((len(new) - len(old)) // 2)
        assert after[k].update_time > before[k].update_time and after[k].title == before[k].title
    for k in what["changed"]:
        old, new = before[k].messages, after[k].messages
        assert new[:len(old)] != old and old[:len(new)] != new            # neither is a prefix of the other
        assert after[k].update_time > before[k].update_time
    last_old = max(c.update_time for c in before.values())
    assert all(after[k].create_time > last_old for k in what["new"])
    firsts = {after[k].messages[0]['content'].split()[0] for k in what["new"]}
    assert len(firsts) > 5                                                    # all kinds of question, not one

def test_next_month_keeps_unchanged_objects_and_stamps_new_messages_later(tmp_path):
    first, (later, what) = synthetic_export(tmp_path/"a"), synthetic_next_month(tmp_path/"b")
    old, new = _raws(first), _raws(later)
    for k in what["unchanged"]: assert new[k] == old[k]                                  # object for object
    times = lambda r: [n['message']['create_time'] for n in r['mapping'].values() if n['message']]
    last_old = max(t for r in old.values() for t in times(r) + [r['update_time']] if t)
    for k in what["grown"] + what["changed"]:
        assert set(old[k]['mapping']) < set(new[k]['mapping'])                           # nothing taken out
        added = [new[k]['mapping'][n]['message']['create_time']
                 for n in set(new[k]['mapping']) - set(old[k]['mapping'])]
        assert added and all(t > last_old for t in added) and new[k]['update_time'] > max(added)
    assert all(min(t for t in times(new[k]) if t) > last_old for k in what["new"])
    ratings = orjson.loads(zipfile.ZipFile(later).read("message_feedback.json"))
    assert ratings and not {f['conversation_id'] for f in ratings} & set(what["deleted"])
    assert sorted(zipfile.ZipFile(later).namelist()) == sorted(zipfile.ZipFile(first).namelist())

def test_next_month_text_is_new(tmp_path):
    "Nothing to leak: no stretch of a new reply is in the first export, nor one of an old reply in a new message."
    before, after, what = _both(tmp_path, n=90, seed=4, new=30, grown=10, changed=5)
    old_text = set().union(*(stretches(m['content']) for c in before.values() for m in c.messages))
    old_replies = set().union(*(stretches(m['content']) for c in before.values() for m in c.messages
                                if m['role'] == 'assistant'))
    added = [m for k in what["new"] for m in after[k].messages]
    added += [m for k in what["grown"] for m in after[k].messages[len(before[k].messages):]]
    added += [m for k in what["changed"] for m in after[k].messages if m not in before[k].messages]
    assert len(added) > 60
    for m in added:
        assert not stretches(m['content']) & old_replies, m
        if m['role'] == 'assistant': assert not stretches(m['content']) & old_text, m
    assert sharing_pairs(clean(list(after.values()))[0]) == set()

def test_cleaning_keeps_the_new_conversations(tmp_path):
    "New conversations are no near duplicates of old ones: `clean`'s defaults drop only those with no reply."
    before, after, what = _both(tmp_path)
    kept, report = clean(list(after.values()))
    gone = {s['id']: s['reason'] for s in report.skipped}
    lost = {k: gone[k] for k in what["new"] if k in gone}
    assert set(lost.values()) <= {"no assistant reply"} and len(lost) <= 2
    assert all(after[k].messages[-1]['role'] == 'user' for k in lost)
    assert not [s for s in report.skipped if s.get('duplicate_of') in what["new"]]
    assert report.reasons()["near duplicate"] == clean(list(before.values()))[1].reasons()["near duplicate"]

@pytest.mark.parametrize("fmt", ["folder", "json", "shards"])
def test_next_month_in_every_format_and_deterministic(tmp_path, fmt):
    month = dict(n=40, seed=1, fmt=fmt, new=5, grown=2, changed=2, deleted=1, days=10)
    before, after, what = _both(tmp_path, **month)
    assert set(after) == set(before) - set(what["deleted"]) | set(what["new"]) and len(what["new"]) == 5
    assert synthetic_next_month(tmp_path/"again", **month)[1] == what
    files = lambda p: sorted(f.read_bytes() for f in p.rglob("*") if f.is_file())
    assert files(tmp_path/"later") == files(tmp_path/"again")
    assert synthetic_next_month(tmp_path/"other", **(month | dict(grown=3, changed=1)))[1] != what

def test_next_month_asks_for_what_it_can_make(tmp_path):
    with pytest.raises(ChatftError, match="Ask for fewer"): synthetic_next_month(tmp_path, n=10, grown=8)
    with pytest.raises(ChatftError, match="Ask for fewer"):
        synthetic_next_month(tmp_path, n=10, deleted=11, grown=0, changed=0)
    with pytest.raises(ValueError, match="days"): synthetic_next_month(tmp_path, days=0)
    with pytest.raises(ValueError, match="fmt"): synthetic_next_month(tmp_path, fmt="tar")
    _, what = synthetic_next_month(tmp_path, n=10, new=0, grown=0, changed=0, deleted=0)
    assert what["new"] == [] and len(what["unchanged"]) == 10
