"""The tools end with one line that says what went wrong; the traceback goes to the log."""
import datetime
import difflib
import logging
import os.path as osp
import re
import sys
import tempfile
import traceback
from typing import Callable, List, Optional

from mmengine.logging import MMLogger
from mmengine.registry import Registry

_NOT_REGISTERED = re.compile(r'(\S+) is not in the (\w+)::([\w ]+) registry')


def _registries(scope: str, name: str) -> List[Registry]:
    """Every registry of ``name`` reachable from ``scope``'s: its root and all descendants."""
    import mmdet.registry
    found = [r for r in vars(mmdet.registry).values()
             if isinstance(r, Registry) and r.name == name]
    roots = set()
    for registry in found:
        while registry.parent is not None:
            registry = registry.parent
        roots.add(registry)
    result, stack = [], list(roots)
    while stack:
        registry = stack.pop()
        result.append(registry)
        stack.extend(registry.children.values())
    return result


def registry_suggestion(message: str) -> Optional[str]:
    """``did you mean …`` for mmengine's "X is not in the scope::name registry", or None."""
    match = _NOT_REGISTERED.search(message)
    if not match:
        return None
    wanted, scope, name = match.groups()
    names = {key for registry in _registries(scope, name) for key in registry.module_dict}
    close = difflib.get_close_matches(wanted, sorted(names), n=3, cutoff=0.6)
    close += [n for n in sorted(names) if n.lower() == wanted.lower() and n not in close]
    return ', '.join(close) or None


def one_line(error: BaseException) -> str:
    """The error as one line: its message (the cause's, where it was re-raised) and, for an
    unknown registry type, the registered names closest to it."""
    text = ' '.join(str(error).split()) or type(error).__name__
    if isinstance(error, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    match = _NOT_REGISTERED.search(text)
    if match:
        wanted, scope, name = match.groups()
        suggestion = registry_suggestion(text)
        hint = f'; did you mean {suggestion}?' if suggestion else ''
        where = text[:match.start()].rstrip(': ')
        text = (f'{where}: ' if where else '') + (
            f'type {wanted!r} is not in the {scope}::{name} registry{hint} (types are '
            'case-sensitive; custom_imports must import the module that registers it)')
    return f'{type(error).__name__}: {text}'


def _save_traceback(tool: str) -> str:
    """Append the current traceback to the run's log file (mmengine's logger), or to a file
    of its own; returns the path."""
    text = traceback.format_exc()
    logger = MMLogger.get_current_instance()
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.stream.write(text)
                handler.flush()
            finally:
                handler.release()
            return handler.baseFilename
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
    path = osp.join(tempfile.gettempdir(), f'{tool}_{stamp}_error.log')
    with open(path, 'w') as f:
        f.write(text)
    return path


def run_tool(main: Callable[[], object], tool: str) -> None:
    """Run a tool's ``main``: an exception ends it with exit code 1 and one line on stderr
    (``tool: error: …``, the traceback's place named), not a traceback."""
    try:
        main()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as error:
        path = _save_traceback(tool)
        print(f'{tool}: error: {one_line(error)} (traceback in {path})', file=sys.stderr)
        sys.exit(1)
