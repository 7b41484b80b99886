"""Imports only go down: the package never reaches into experiments/, nor a layer above.

Read from the sources (no import runs): every `import`, `from ... import`, and string
given to importlib.import_module or __import__. The layers, lowest first:
  0 errors, config (choices, sections, validation, rules, defaults, overrides), parameter_paths
  1 models, objectives, data, evaluation, inspection
  2 adapters, quantization, decoding
  3 training
  4 interop
  5 run           (the run layer: tasks, sources, weights, modes)
  6 tasks         (the experiments, load, LoadedModel)
  7 the package's __init__ (the lazy `load`)
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "transformer_jax"
LAYERS = {
    **dict.fromkeys(("errors", "config_choices", "config_sections", "configuration",
                     "experiment_rules", "default_config", "config_overrides",
                     "parameter_paths"), 0),
    **dict.fromkeys(("models", "objectives", "data", "evaluation", "inspection"), 1),
    **dict.fromkeys(("adapters", "quantization", "decoding"), 2),
    "training": 3, "interop": 4, "run": 5, "tasks": 6, "__init__": 7,
}


def _imports(path: pathlib.Path) -> list[str]:
  """Every module name the file imports, or names to importlib / __import__."""
  names = []
  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
    if isinstance(node, ast.Import):
      names += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    elif isinstance(node, ast.Call):
      called = ast.unparse(node.func)
      if called.endswith(("import_module", "__import__")) and node.args:
        argument = node.args[0]
        names.append(argument.value if isinstance(argument, ast.Constant)
                     else ast.unparse(argument))
  return names


def _sources():
  return sorted(PACKAGE.rglob("*.py"))


def test_no_module_of_the_package_imports_experiments():
  offenders = [f"{path.relative_to(PACKAGE.parent)}: {name}" for path in _sources()
               for name in _imports(path)
               if name.split(".")[0] == "experiments" or "experiments." in name]
  assert offenders == []


def test_every_part_of_the_package_has_a_layer():
  parts = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in _sources()}
  assert parts == set(LAYERS)


def test_imports_only_go_down():
  upward = []
  for path in _sources():
    part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for name in _imports(path):
      pieces = name.split(".")
      if pieces[0] != "transformer_jax" or len(pieces) < 2 or pieces[1] not in LAYERS:
        continue
      target = pieces[1]
      if target != part and LAYERS[target] > LAYERS[part]:
        upward.append(f"{path.relative_to(PACKAGE.parent)} ({part}, layer {LAYERS[part]}) "
                      f"imports {name} (layer {LAYERS[target]})")
  assert upward == []
