"""The offline demo model and the tiny test model resolve to normal transformers folders."""
import json
import pytest
from chatft.models import model_path, load_tokenizer, DEMO_MODEL, TINY_MODEL, preset, presets_table, ChatftError

def test_demo_model_is_a_plain_safetensors_folder():
    p = model_path(DEMO_MODEL)
    cfg = json.loads((p / "config.json").read_text())
    assert "quantization_config" not in cfg, "the GGUF quantization state must be dropped before saving"
    assert (p / "model.safetensors").exists() and cfg["model_type"] == "llama"
    tok = load_tokenizer(DEMO_MODEL)
    assert tok.eos_token == "<|im_end|>" and "<|im_start|>" in tok.chat_template

def test_tiny_model_shares_the_demo_tokenizer():
    assert load_tokenizer(TINY_MODEL).chat_template == load_tokenizer(DEMO_MODEL).chat_template
    cfg = json.loads((model_path(TINY_MODEL) / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2 and cfg["hidden_size"] == 64

def test_unknown_model_offline_is_a_clear_error():
    with pytest.raises(ChatftError, match="could not be reached"): model_path("no-such-org/no-such-model")

def test_presets_cover_each_hardware():
    df = presets_table()
    assert {"cpu", "t4", "24gb"} <= set(df.hardware)
    assert preset(DEMO_MODEL).default_system and preset("meta-llama/Llama-3.2-1B-Instruct").bos_in_template
