from typing import Optional, Tuple

from mmdet.registry import HOOKS
from mmengine.dist import broadcast_object_list, get_rank, get_world_size
from mmengine.hooks import Hook

from ...utils.dataset_check import check_coco_dataset, dataset_configs, mmdet_dropped_boxes


class TrainingDataError(RuntimeError):
    """Training images that cannot be read: found before the first iteration."""


@HOOKS.register_module()
class CheckDatasetHook(Hook):
    """Before training starts, look at the training set once, cheaply (the annotation file,
    and the end of each image file; ``tools/check_dataset.py`` decodes every image):

    * images that are missing or cut off (a truncated PNG/JPEG) stop the run now, with one
      line naming how many and the first ones, instead of failing when their batch comes
      (hours into a COCO run);
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
        dataset = dataset_configs(cfg).get('train')
        if not dataset or 'ann_file' not in dataset:
            return None, None
        findings = check_coco_dataset('train', dataset, None,
                                      decode='ends' if self.check_files else False)
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
