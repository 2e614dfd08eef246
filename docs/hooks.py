"""MkDocs hook: render the docstrings' Sphinx roles (:class:`X`, :func:`f`) as plain code.

The API reference renders docstrings as Markdown, where ``:class:`X``` would show the role
name in front of the code span; the role adds nothing a reader needs, so it is dropped.
"""

import re

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const|py:\w+):(?=<code>)")


def on_page_content(html, **kwargs):
    return _ROLE.sub("", html)
