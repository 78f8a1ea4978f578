"""Helpers (as ``mmdet.utils``): runner arguments, resume, one-line tool errors, dataset
checks, ``check_choice``."""
from .misc import check_choice
from .resume import WorkDirError, checkpoints_in, resolve_resume
from .runner_args import (ConfigOptionError, add_runner_args, amp_unavailable_reason,
                          apply_randomness_args, load_runner_config, prepare_cpu_distributed,
                          refuse_parse_time_options)
from .tool_errors import one_line, registry_suggestion, run_tool

__all__ = [
    'check_choice', 'WorkDirError', 'checkpoints_in', 'resolve_resume', 'ConfigOptionError',
    'add_runner_args', 'amp_unavailable_reason', 'apply_randomness_args', 'load_runner_config',
    'prepare_cpu_distributed', 'refuse_parse_time_options', 'one_line', 'registry_suggestion',
    'run_tool'
]
