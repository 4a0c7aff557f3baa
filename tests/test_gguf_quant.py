"""chatft.deploy's k-quants: `chatft gguf --type q4_k_m` on a run of the tiny model (`gguf_cli` in this process, llama.cpp's
own converter and quantizer through llama-cpp-python) writes one file that llama.cpp loads and answers with, the Modelfile
naming it, the f16 kept only when asked; an unknown type is a one-line error with the choices; a failed quantization
leaves nothing behind; `quant_table` reports f16 in agreement (up to near ties) and a k-quant's token match rate.
No network: the converter comes from chatft's cache (setup.sh fetches it) or the tests skip, saying so."""
import io, contextlib
import pytest

from chatft.core import ChatftError
from chatft.deploy import (quantize_gguf, f16_beside, gguf, load_gguf, merge, rounded_chat, heldout_prompts,
                           quant_table, gguf_cli, QUANT_TYPES)
from test_deploy import need_converter, need_llama_cpp

@pytest.fixture(scope="module")
def tiny_run(tiny_practice_run): return tiny_practice_run

@pytest.fixture(scope="module")
def q4(tiny_run, tmp_path_factory):
    "`chatft gguf RUN -o .../model-q4_k_m.gguf --type q4_k_m --keep-f16`: (folder, stdout)."
    need_converter(); need_llama_cpp()
    d = tmp_path_factory.mktemp("q4")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert gguf_cli([str(tiny_run), "-o", str(d/"model-q4_k_m.gguf"), "--type", "q4_k_m", "--keep-f16"]) == 0
    return d, out.getvalue()

def test_q4_k_m_of_a_run_loads_in_llama_cpp_and_answers(q4):
    import gguf as gguf_py
    d, out = q4
    assert sorted(p.name for p in d.iterdir()) == ["model-f16.gguf", "model-q4_k_m.Modelfile", "model-q4_k_m.gguf"]
    assert all(str(d/n) in out for n in ("model-f16.gguf", "model-q4_k_m.Modelfile", "model-q4_k_m.gguf")), out
    assert "FROM ./model-q4_k_m.gguf" in (d/"model-q4_k_m.Modelfile").read_text()
    r = gguf_py.GGUFReader(str(d/"model-q4_k_m.gguf"))
    assert int(r.fields["general.file_type"].parts[-1][0]) == 15                      # LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert (d/"model-q4_k_m.gguf").stat().st_size < 0.75*(d/"model-f16.gguf").stat().st_size
    llm = load_gguf(d/"model-q4_k_m.gguf", n_ctx=256)
    r = llm.create_chat_completion([dict(role="user", content="Hello!")], max_tokens=8, temperature=0.0)
    assert r["usage"]["completion_tokens"] > 0 and isinstance(r["choices"][0]["message"]["content"], str)
    llm.close()

def test_f16_is_kept_only_when_asked(tiny_run, tmp_path):
    "Without --keep-f16 only the k-quant and its Modelfile are left; nothing temporary stays behind."
    need_converter(); need_llama_cpp()
    out = gguf(tiny_run, tmp_path/"mine.gguf", "q6_k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.Modelfile", "mine.gguf"]
    with pytest.raises(ChatftError, match="already exists"): gguf(tiny_run, out, "q6_k")
    assert f16_beside(tmp_path/"m-q5_k_m.gguf", "q5_k_m").name == "m-f16.gguf"
    assert f16_beside(tmp_path/"mine.gguf", "q5_k_m").name == "mine-f16.gguf"

def test_unknown_type_is_one_line_with_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as e: gguf_cli([str(tmp_path), "-o", str(tmp_path/"m.gguf"), "--type", "q4_k"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert e.value.code == 2 and "invalid choice: 'q4_k'" in last and all(t in last for t in QUANT_TYPES), err
    with pytest.raises(ChatftError, match="q6_k, q5_k_m, q4_k_m"): quantize_gguf(tmp_path/"a.gguf", tmp_path/"b.gguf", "q4_0")

def test_failed_quantization_leaves_nothing(tmp_path):
    need_llama_cpp()
    bad = tmp_path/"broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0"*64)
    with pytest.raises(ChatftError, match="could not quantize") as e: quantize_gguf(bad, tmp_path/"out.gguf")
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.gguf"]

def test_quant_table_reports_each_type(tiny_run, q4, tmp_path):
    "f16 agrees with transformers on the same rounded weights (up to near ties); the k-quant's rate is reported."
    d, _ = q4
    merged = merge(tiny_run, tmp_path/"merged", device="cpu")
    prompts = heldout_prompts(tiny_run, 2)
    table = quant_table(dict(f16=d/"model-f16.gguf", q4_k_m=d/"model-q4_k_m.gguf"), rounded_chat(merged), prompts, 8)
    print(table.to_string())
    row = table.set_index("type")
    assert row.agree["f16"] == "2/2" and table.same_prompt.all()
    assert 0 <= row.token_match["q4_k_m"] <= 1 and row.size_mb["q4_k_m"] < row.size_mb["f16"]
