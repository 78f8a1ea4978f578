from typing import Tuple

import mmcv
from mmdet.datasets.transforms import Resize
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class EfficientDetResize(Resize):
    """Keep-ratio resize as TF EfficientDet and effdet make their test inputs.

    One scale ``s = min(W / w, H / h)`` for ``scale=(W, H)``, an output of
    ``int(w·s) × int(h·s)`` pixels (truncated, at least 1) and ``scale_factor = (s, s)``:
    detections are mapped back to the image with the reference's one scale, where mmdet's
    ``Resize`` would record the per-axis ratios of the rounded size (0.2 % apart on a 700×420
    image, enough to move a box edge by a pixel). Interpolation defaults to PIL's bilinear,
    the reference's.

    Args:
        scale (tuple[int, int]): (W, H) to fit the image in.
        interpolation (str): Default: ``'bilinear'``.
        backend (str): ``'pillow'`` (the reference's) or ``'cv2'``. Default: ``'pillow'``.
        **kwargs: Other ``Resize`` arguments (``clip_object_border``).
    """

    def __init__(self, scale: Tuple[int, int], interpolation: str = 'bilinear',
                 backend: str = 'pillow', **kwargs) -> None:
        super().__init__(scale=scale, keep_ratio=True, interpolation=interpolation,
                         backend=backend, **kwargs)

    def _resize_img(self, results: dict) -> None:
        img = results.get('img')
        if img is None:
            return
        h, w = img.shape[:2]
        target_w, target_h = results['scale']
        scale = min(target_w / w, target_h / h)
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        results['img'] = mmcv.imresize(img, size, interpolation=self.interpolation,
                                       backend=self.backend)
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = (scale, scale)
        results['keep_ratio'] = True
