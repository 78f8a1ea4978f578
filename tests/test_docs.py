"""The README stays short and a measured figure stands in one place: the results page."""
import glob
import os.path as osp

from .conftest import ROOT

# figures measured once, written on the results page alone (the others link to it)
FIGURES = ('95.9 %', '5.6 GiB', '33.0 ms alone', '12–30 minutes', '828,009')


def _pages():
    paths = [osp.join(ROOT, 'README.md')] + sorted(glob.glob(osp.join(ROOT, 'docs', 'en',
                                                                      '*.md')))
    return {osp.relpath(path, ROOT): open(path).read() for path in paths}


def test_readme_is_short():
    assert len(open(osp.join(ROOT, 'README.md')).read().splitlines()) <= 200


def test_measured_figures_stand_once_on_the_results_page():
    pages = _pages()
    for figure in FIGURES:
        where = {name: text.count(figure) for name, text in pages.items() if figure in text}
        assert list(where) == ['docs/en/results.md'], (figure, where)
