"""chatft.deploy's Inference Endpoints: the request `endpoint_request` builds (checked against the installed
huggingface_hub's `create_inference_endpoint` signature) for the demo model's size and a 7B model; the GPU rule; the
real call's failure without the Hub as one line (HF_HUB_OFFLINE=1, and the network as it is here); `chatft push
--endpoint` on a run of the tiny model up to the upload (a dry run). Nothing here reaches the network."""
import io, json, inspect, contextlib
import pytest

from chatft.core import ChatftError
from chatft.deploy import (endpoint_request, endpoint_price, endpoint_name, smallest_gpu, serving_memory, model_size,
                           create_endpoint, how_to_call, push, push_cli, TGI_IMAGE)

def bind(request:dict):
    "The request bound to the installed `HfApi.create_inference_endpoint`: a TypeError if an argument is unknown."
    from huggingface_hub import HfApi
    return inspect.signature(HfApi.create_inference_endpoint).bind(None, **request)

def test_request_for_the_demo_model():
    r = endpoint_request("me/My Chat.Model", 134_515_008, context=8192)
    bind(r)
    assert (r["instance_type"], r["instance_size"], r["accelerator"], r["vendor"]) == ("nvidia-t4", "x1", "gpu", "aws")
    assert (r["type"], r["min_replica"], r["max_replica"], r["scale_to_zero_timeout"]) == ("authenticated", 0, 1, 15)
    assert r["task"] == "text-generation" and r["repository"] == "me/My Chat.Model" and r["name"] == "my-chat-model"
    assert r["custom_image"] == dict(url=TGI_IMAGE, healthRoute="/health", port=80)
    assert r["env"] == dict(MODEL_ID="/repository", DTYPE="float16", MAX_TOTAL_TOKENS="4096", MAX_INPUT_TOKENS="2048")
    assert "$0.50 an hour" in endpoint_price(r) and "15 idle minutes" in endpoint_price(r)

def test_request_for_a_7b_model():
    "Llama-2-7b / Mistral-7B (about 7.2B parameters, 14 GB in 16 bits) do not fit a T4 (14 GB): an L4 (24 GB)."
    r = endpoint_request("me/mistral-chat", 7_241_732_096, context=32768)
    bind(r)
    assert r["instance_type"] == "nvidia-l4" and r["env"]["DTYPE"] == "bfloat16"
    assert serving_memory(7_241_732_096) > 14 and smallest_gpu(7_241_732_096)[1] == 24
    assert endpoint_request("me/gpt2", 124_439_808, context=1024)["env"]["MAX_TOTAL_TOKENS"] == "1024"   # GPT-2's 1024
    assert smallest_gpu(7_241_732_096, "float32")[0] == "nvidia-l40s"

def test_too_big_is_one_line():
    with pytest.raises(ChatftError, match="more than one nvidia-a100") as e: endpoint_request("me/big", 70_000_000_000)
    assert "\n" not in str(e.value)
    assert endpoint_name("me/___") == "chatft" and len(endpoint_name("me/" + "a"*50)) == 32

def test_offline_call_is_one_line(monkeypatch):
    "The real call: without the Hub (offline mode, and this machine's network) it fails as one line naming the endpoint."
    from huggingface_hub import constants
    r = endpoint_request("me/my-chat-model", 134_515_008)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)          # what HF_HUB_OFFLINE=1 sets at import
    with pytest.raises(ChatftError, match="could not create the Inference Endpoint my-chat-model") as e: create_endpoint(r)
    assert "offline mode" in str(e.value) and "\n" not in str(e.value)
    assert "base_url=\"https://x.cloud/v1/\"" in how_to_call("https://x.cloud/")

@pytest.fixture(scope="module")
def tiny_run(tiny_practice_run): return tiny_practice_run

def test_push_endpoint_dry_run(tiny_run, tmp_path):
    "`chatft push RUN REPO --endpoint --dry-run` builds the merged folder and the request for it, and uploads nothing."
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert push_cli([str(tiny_run), "me/tiny", "--endpoint", "--dry-run", "-o", str(tmp_path/"p")]) == 0
    line = next(l for l in out.getvalue().splitlines() if l.startswith("chatft push: endpoint_request: "))
    request = json.loads(line.split(": ", 2)[2].removesuffix(" (dry run: not uploaded)"))
    size = model_size(tmp_path/"p/model")
    assert request == endpoint_request("me/tiny", **size) and (tmp_path/"p/model/model.safetensors").exists()
    with pytest.raises(ChatftError, match="serves the merged model"):
        push(tiny_run, "me/tiny", what="adapter", endpoint=True, dry_run=True, out=tmp_path/"q")
