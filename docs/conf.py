"""Sphinx configuration of deltaprop's documentation (pydata-sphinx-theme, numpydoc, sphinx-gallery).

Build: ``python -m sphinx -W -b html docs docs/_build/html`` from the repository root.
The example gallery (``examples/``) is executed at build time; no page needs the network.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # gallery_order

os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")

try:
    import deltaprop  # the installed package: pip install -e '.[docs]'
except ImportError:  # an uninstalled checkout: its sources, with whatever backends import
    sys.path.insert(0, str(ROOT / "src"))
    import deltaprop

project = "deltaprop"
author = "deltaprop developers"
copyright = "deltaprop developers"
release = deltaprop.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served with the site: formulas render without a network
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.md5"]
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"

# --------------------------------------------------------------------------- API reference
autosummary_generate = True
autosummary_imported_members = True
# Members inherited from deltaprop's own mixins are documented (MLP's training and file methods,
# the estimators' fit and predict); scikit-learn's are left to scikit-learn's documentation.
autodoc_default_options = {
    "members": True,
    "inherited-members": "object,BaseEstimator,ClassifierMixin,RegressorMixin,ReprHTMLMixin,"
                         "_HTMLDocumentationLinkMixin,_MetadataRequester",
}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False



def skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated metadata-routing setters (``set_fit_request`` ...)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", skip_member)


# --------------------------------------------------------------------------- no network
# intersphinx is off on purpose: the build needs no network. Formulas are typeset by MathJax in
# the reader's browser, from the copy sphinx-mathjax-offline puts in the site.

# --------------------------------------------------------------------------- gallery
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("deltaprop",),
    "inspect_global_variables": False,
}

# --------------------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"deltaprop {release}"
html_static_path = ["_static"]
html_css_files = ["deltaprop.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": []}
