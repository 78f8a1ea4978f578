"""The tools end with one line that says what went wrong; the traceback goes to the log."""
import datetime
import difflib
import json
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


def _frames(error: BaseException) -> list:
    """The frames of ``error``'s traceback, innermost first."""
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames[::-1]


def _file_being_read(error: BaseException) -> Optional[str]:
    """The file a parser was reading when it failed (pycocotools' ``annotation_file``,
    mmengine's ``ann_file``, ...), from the innermost frame that names one."""
    for frame in _frames(error):
        for name in ('annotation_file', 'ann_file', 'file_path', 'filename'):
            value = frame.f_locals.get(name)
            if isinstance(value, str) and value:
                return value
    return None


def _dataset_building(error: BaseException):
    """The mmengine dataset whose construction raised ``error``, or None."""
    from mmengine.dataset import BaseDataset
    for frame in _frames(error):
        owner = frame.f_locals.get('self')
        if isinstance(owner, BaseDataset):
            return owner
    return None


def one_line(error: BaseException) -> str:
    """The error as one line: its message (the cause's, where it was re-raised), the file
    being read when a parser failed, and, for an unknown registry type, the registered names
    closest to it."""
    text = ' '.join(str(error).split()) or type(error).__name__
    dataset = _dataset_building(error) if isinstance(error, ValueError) else None
    if dataset is not None and 'need at least one array to concatenate' in text:
        return (f'EmptyDatasetError: the dataset of {getattr(dataset, "ann_file", "?")} holds '
                'no image (the annotation file lists none, or filter_cfg removed them all)')
    if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
        path = _file_being_read(error)
        if path and path not in text:
            text = f'{path} is not valid JSON: {text}'
    if isinstance(error, AssertionError) and text == 'AssertionError':
        where = _frames(error)[0]
        text = (f'an assertion in {osp.basename(where.f_code.co_filename)}, '
                f'{where.f_code.co_name}() failed without a message')
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
    of its own; returns where it went (or why it could not be saved: a full disk)."""
    text = traceback.format_exc()
    try:
        logger = MMLogger.get_current_instance()
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.acquire()
                try:
                    handler.stream.write(text)
                    handler.stream.flush()
                finally:
                    handler.release()
                return handler.baseFilename
        stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
        path = osp.join(tempfile.gettempdir(), f'{tool}_{stamp}_error.log')
        with open(path, 'w') as f:
            f.write(text)
        return path
    except OSError as error:
        return f'nowhere: it could not be written ({error.strerror or error})'


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
