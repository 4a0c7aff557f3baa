"Tests of chatft.synth that do not fit in its notebook: determinism, every export shape, shards, the large export."
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
