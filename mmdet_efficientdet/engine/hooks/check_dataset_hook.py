from typing import Optional, Tuple

from mmdet.registry import HOOKS
from mmengine.dist import broadcast_object_list, get_rank, get_world_size
from mmengine.hooks import Hook

from ...datasets.dataset_check import (check_coco_dataset, dataset_configs,
                                       mmdet_dropped_boxes, model_num_classes)
from ..config_checks import check_image_size


class TrainingDataError(RuntimeError):
    """Training images that cannot be read: found before the first iteration."""


@HOOKS.register_module()
class CheckDatasetHook(Hook):
    """Before training starts, look at the training set once, cheaply (the annotation file,
    and the end of each image file; ``tools/check_dataset.py`` decodes every image):

    * images that are missing or cut off (a truncated PNG/JPEG) stop the run now, with one
      line naming how many and the first ones, instead of failing when their batch comes
      (hours into a COCO run);
    * a model with fewer classes than the training set (the other classes' boxes would
      train as background) and an ``image_size`` that the pipelines do not use (set in a
      child config or by ``--cfg-options``: it changes nothing) stop the run now;
    * boxes that mmdet's ``CocoDataset`` drops without a word (wholly outside their image,
      of zero size, of a category not among the config's classes) are counted in one line
      of the log.

    In a distributed run rank 0 checks and the other ranks wait for its verdict (one read of
    the files, not one per rank). Its cost on a COCO-sized set is in the results page; turn
    it off with ``custom_hooks`` without it, or keep the annotation check alone with
    ``check_files=False``.

    Args:
        check_files (bool): Check that each image file exists and is not cut off.
            Default: True.

    Example:
        >>> custom_hooks = [dict(type='CheckDatasetHook', check_files=False)]
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_files: bool = True) -> None:
        self.check_files = check_files

    def before_train(self, runner) -> None:
        verdict = [self.verdict(runner.cfg) if get_rank() == 0 else None]
        if get_world_size() > 1:
            broadcast_object_list(verdict, src=0)
        error, warning = verdict[0]
        if error:
            raise TrainingDataError(error)
        if warning:
            runner.logger.warning(warning)

    def verdict(self, cfg) -> Tuple[Optional[str], Optional[str]]:
        """(the error that stops the run, the warning for the log) for ``cfg``'s training
        set; each None when there is nothing to say."""
        try:
            check_image_size(cfg)
        except ValueError as error:
            return str(error), None
        dataset = dataset_configs(cfg).get('train')
        if not dataset or 'ann_file' not in dataset:
            return None, None
        num_classes = model_num_classes(cfg)
        findings = check_coco_dataset('train', dataset, num_classes,
                                      decode='ends' if self.check_files else False)
        if 'more classes than the model has outputs' in findings.errors:
            return (f'the training set has {len(findings.classes)} classes but '
                    f'model.bbox_head.num_classes={num_classes}: the boxes of the other '
                    f'{len(findings.classes) - num_classes} would train as background. Set '
                    f'model.bbox_head.num_classes={len(findings.classes)}'), None
        unreadable = {kind: entry for kind, entry in findings.errors.items()
                      if kind in ('missing image files', 'unreadable images')}
        if unreadable:
            parts = [f'{kind}: {count} (e.g. {examples[0]})'
                     for kind, (count, examples) in unreadable.items()]
            return (f'the training set has images that cannot be read: {"; ".join(parts)}. '
                    'Fix or remove them (tools/check_dataset.py CONFIG lists them all)'), None
        if findings.coco is None:
            return None, None
        dropped = mmdet_dropped_boxes(findings.coco, findings.classes)
        if not sum(dropped.values()):
            return None, None
        total = len(findings.coco.get('annotations', []))
        return None, (
            f'the training set loses {sum(dropped.values())} of its {total} boxes, as mmdet '
            f'drops them: {dropped["outside"]} wholly outside their image, '
            f'{dropped["zero_size"]} of zero size, {dropped["category"]} of categories not '
            'among the classes (tools/check_dataset.py CONFIG lists them)')
