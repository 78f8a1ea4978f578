from mmdet.registry import HOOKS
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

    Args:
        check_files (bool): Check that each image file exists and is not cut off.
            Default: True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_files: bool = True) -> None:
        self.check_files = check_files

    def before_train(self, runner) -> None:
        dataset = dataset_configs(runner.cfg).get('train')
        if not dataset or 'ann_file' not in dataset:
            return
        findings = check_coco_dataset('train', dataset, None,
                                      decode='ends' if self.check_files else False)
        unreadable = {kind: entry for kind, entry in findings.errors.items()
                      if kind in ('missing image files', 'unreadable images')}
        if unreadable:
            parts = [f'{kind}: {count} (e.g. {examples[0]})'
                     for kind, (count, examples) in unreadable.items()]
            raise TrainingDataError(
                f'the training set has images that cannot be read: {"; ".join(parts)}. Fix '
                'or remove them (tools/check_dataset.py CONFIG lists them all)')
        if findings.coco is None:
            return
        dropped = mmdet_dropped_boxes(findings.coco, findings.classes)
        if sum(dropped.values()):
            total = len(findings.coco.get('annotations', []))
            runner.logger.warning(
                f'the training set loses {sum(dropped.values())} of its {total} boxes, as '
                f'mmdet drops them: {dropped["outside"]} wholly outside their image, '
                f'{dropped["zero_size"]} of zero size, {dropped["category"]} of categories '
                'not among the classes (tools/check_dataset.py CONFIG lists them)')
