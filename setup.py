"""The package, with ``configs/``, ``tools/`` and ``model-index.yml`` copied into
``mmdet_efficientdet/.mim/`` of a built wheel, as OpenMMLab packages ship them (mmdet's
``.mim``): ``mim``, our tools and ``EfficientDetInferencer`` find them in an installed package.
An editable install reads them from the checkout instead."""
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
MIM_ITEMS = ('configs', 'tools', 'model-index.yml')


class BuildPyWithMim(build_py):

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = osp.join(self.build_lib, 'mmdet_efficientdet', '.mim')
        for item in MIM_ITEMS:
            source, target = osp.join(HERE, item), osp.join(mim, item)
            if osp.isdir(source):
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target,
                                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copyfile(source, target)


setup(cmdclass={'build_py': BuildPyWithMim})
