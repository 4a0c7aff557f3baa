"Every command's options come from its sources: help starts with the parameter's comment, the default is the parameter's."
import argparse, importlib, inspect, subprocess, sys
from dataclasses import MISSING, fields, is_dataclass
import pytest
from fastcore.docments import docments
from chatft.cli import COMMANDS
from chatft.core import command_parser, add_options


class Parsed(Exception):
    "Raised instead of parsing: carries the parser a command built."
    def __init__(self, parser): self.parser = parser


def parser_of(name:str, monkeypatch)->argparse.ArgumentParser:
    "The parser `chatft name` builds, captured before it parses anything (the command never runs)."
    mod, fn, _ = COMMANDS[name]
    def capture(self, *args, **kw): raise Parsed(self)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(Parsed) as e: getattr(importlib.import_module(mod), fn)([])
    return e.value.parser


def defaults(source)->dict:
    "`{parameter: default}` of a function or a dataclass (None where it has none)."
    if is_dataclass(source): return {f.name: None if f.default is MISSING else f.default for f in fields(source)}
    return {k: None if p.default is p.empty else p.default for k, p in inspect.signature(source).parameters.items()}


def problems(p:argparse.ArgumentParser)->list:
    "What is wrong with `p`'s options: help or default not the source's, an option hand-written over a source's parameter."
    names = {k for s in p.sources for k in defaults(s)}
    out = []
    for a in p._actions:
        if isinstance(a, argparse._HelpAction): continue
        if not a.help: out.append(f"{a.dest}: no help")
        if not hasattr(a, "source"):
            if a.dest in names: out.append(f"{a.dest}: written by hand, but a source has this parameter")
            continue
        source, name = a.source
        asked = (a.help or "").endswith("(default: decided by the plan)")
        if not (a.help or "").startswith(docments(source)[name]): out.append(f"{a.dest}: help is not the comment of {name}")
        if a.default != (None if asked else defaults(source)[name]): out.append(f"{a.dest}: default {a.default!r} is not the source's")
    return out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_options_come_from_their_sources(name, monkeypatch):
    p = parser_of(name, monkeypatch)
    assert p.sources, f"chatft {name}: no option comes from a signature"
    assert problems(p) == []


def plan(
    lr:float=2e-4,      # peak learning rate
    epochs:float=3.0,   # passes over the data
): ...

@pytest.mark.parametrize("write", [
    lambda p: p.add_argument("--lr", type=float, default=1e-3, help="learning rate"),          # hand-written over a parameter
    lambda p: add_options(p, plan, "lr") and setattr(p._actions[-1], "default", 1e-3),         # a default that drifted
    lambda p: add_options(p, plan, "lr") and setattr(p._actions[-1], "help", "the rate"),      # help that is not the comment
    lambda p: p.add_argument("--threads", type=int),                                          # no help
])
def test_a_hand_written_option_fails(write):
    p = add_options(command_parser("x", ""), plan, "epochs")
    assert problems(p) == []
    write(p)
    assert problems(p)


def test_help_imports_no_torch():
    code = "import sys; from chatft.cli import main; main(['--help']); assert 'torch' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "usage: chatft" in r.stdout
