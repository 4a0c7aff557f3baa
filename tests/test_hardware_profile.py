"""`CHATFT_HARDWARE` plans as if on another machine (how CI checks a T4's plan without a T4), and `train` refuses a
plan for CUDA where there is none, in one line, before it writes anything."""
import pytest, torch
from chatft.core import ChatftError
from chatft.models import TINY_MODEL
from chatft.train import HARDWARE, detect_hardware, plan_training, train

def test_profile_names_the_hardware(monkeypatch):
    monkeypatch.setenv("CHATFT_HARDWARE", "t4")
    assert detect_hardware() == HARDWARE["t4"]
    plan = plan_training(TINY_MODEL, [200]*40, measure=False)
    assert (plan.device, plan.precision, plan.hardware) == ("cuda", "fp16", str(HARDWARE["t4"]))
    monkeypatch.setenv("CHATFT_HARDWARE", "t5")
    with pytest.raises(ChatftError, match=r"CHATFT_HARDWARE=t5: not a key of chatft.train.HARDWARE \(cpu, t4,"):
        detect_hardware()

def test_without_profile_this_machine(monkeypatch):
    monkeypatch.delenv("CHATFT_HARDWARE", raising=False)
    assert detect_hardware().kind == ("cuda" if torch.cuda.is_available() else "cpu")

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: a CUDA plan trains here")
def test_train_refuses_a_cuda_plan_without_cuda(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATFT_HARDWARE", "t4")
    plan = plan_training(TINY_MODEL, [200]*40, measure=False)
    with pytest.raises(ChatftError) as e: train(plan, None, tmp_path/"run")
    assert "planned for a CUDA GPU (Tesla T4" in str(e.value) and "this machine has none" in str(e.value)
    assert "CHATFT_HARDWARE unset" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path/"run").exists()
