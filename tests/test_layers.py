"""The package's imports run one way, through the layers docs/en/architecture.md lists: each
module imports only from its own layer or the ones before it, and no modules import each
other in a cycle (function-level imports count as much as module-level ones)."""
import ast
import os
import os.path as osp

import pytest

from .conftest import ROOT

PACKAGE = 'mmdet_efficientdet'
LAYERS = (
    ('utils', 'version'),  # check_choice: what every part may use
    ('scaling', ),  # the compound-scaling tables
    ('converters', ),  # checkpoint formats and weights-only I/O
    ('datasets', 'models'),  # the registered components
    ('deploy', ),  # deploy form, ONNX, runtimes
    ('engine', ),  # hooks and config checks of a run
    ('apis', ),  # what the tools (and users' scripts) are made of
)


def layer_of(module):
    parts = module.split('.')
    if parts == [PACKAGE]:
        return len(LAYERS)  # the package's own __init__ registers everything
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f'{module} is in no layer of tests/test_layers.py: add it to one')


def package_imports():
    """{module: {imported module of ours, ...}} of every file of the package."""
    graph = {}
    base = osp.join(ROOT, PACKAGE)
    for folder, _, files in os.walk(base):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            rel = osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')
            is_package = name == '__init__.py'
            module = rel[:-len('.__init__')] if is_package else rel
            package = module if is_package else module.rsplit('.', 1)[0]
            targets = set()
            for node in ast.walk(ast.parse(open(path).read(), path)):
                if isinstance(node, ast.Import):
                    targets |= {a.name for a in node.names if a.name.startswith(PACKAGE)}
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                        source = '.'.join(anchor + ([node.module] if node.module else []))
                    else:
                        source = node.module or ''
                    if source.startswith(PACKAGE):
                        targets.add(source)
            graph[module] = targets - {module}
    return graph


def test_no_module_imports_from_a_later_layer():
    upward = [f'{module} (layer {layer_of(module)}) imports {target} '
              f'(layer {layer_of(target)})'
              for module, targets in sorted(package_imports().items())
              for target in sorted(targets) if layer_of(target) > layer_of(module)]
    assert not upward, '\n'.join(upward)


def test_no_import_cycle():
    graph = package_imports()
    state = {}

    def visit(module, trail):
        if state.get(module) == 'done':
            return
        if state.get(module) == 'open':
            cycle = trail[trail.index(module):] + [module]
            pytest.fail('import cycle: ' + ' -> '.join(cycle))
        state[module] = 'open'
        for target in sorted(graph.get(module, ())):
            # a package's __init__ importing its own modules is how packages are made
            if not target.startswith(module + '.'):
                visit(target, trail + [module])
        state[module] = 'done'

    for module in sorted(graph):
        visit(module, [])


def test_the_check_can_fail():
    assert layer_of('mmdet_efficientdet.apis.resume') > layer_of('mmdet_efficientdet.models.x')
    with pytest.raises(AssertionError, match='in no layer'):
        layer_of('mmdet_efficientdet.elsewhere')


def test_no_function_over_60_lines_without_its_reason():
    """A function of the package or the tools longer than 60 lines says why in its docstring
    ("Long because …")."""
    import glob
    long = []
    paths = glob.glob(osp.join(ROOT, PACKAGE, '**', '*.py'), recursive=True) + \
        glob.glob(osp.join(ROOT, 'tools', '*.py'))
    for path in paths:
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60 and 'Long because' not in (ast.get_docstring(node) or ''):
                    long.append(f'{osp.relpath(path, ROOT)}:{node.lineno} {node.name} '
                                f'({lines} lines)')
    assert not long, '\n'.join(long)
