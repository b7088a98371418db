"""The typing stubs of the private extension (python/cnncore/_core.pyi, made by
scripts/gen-stubs.sh) list exactly the functions the built extension has, with
the same parameter names, so editors never show a stale signature."""
import ast
import pathlib
import re

import cnncore
from cnncore import _core

STUB = pathlib.Path(cnncore.__file__).with_name("_core.pyi")


def _stub_signatures():
    tree = ast.parse(STUB.read_text())
    return {node.name: [a.arg for a in node.args.args + node.args.kwonlyargs]
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def _core_signatures():
    out = {}
    for name in dir(_core):
        fn = getattr(_core, name)
        if name.startswith("__") or not callable(fn) or not hasattr(fn, "__doc__"):
            continue
        # pybind11 puts "name(arg: type, ...) -> ret" on the docstring's first line.
        head = (fn.__doc__ or "").splitlines()[0]
        m = re.match(rf"{name}\((.*)\) ->", head)
        if not m:
            continue
        out[name] = re.findall(r"(?:^|, )(\w+):", m.group(1))
    return out


def test_stub_and_py_typed_ship_with_the_package():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_stub_lists_every_core_function_with_its_parameter_names():
    stub, core = _stub_signatures(), _core_signatures()
    assert len(core) > 30
    assert set(stub) == set(core), "regenerate with scripts/gen-stubs.sh"
    for name, params in core.items():
        assert stub[name] == params, f"{name}: stub {stub[name]} vs extension {params}"
