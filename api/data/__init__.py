"""Data shipped with the web app.

``common_passwords.csv``: the 30,000 most common passwords (one column, ``password``, most
common first), the ``passwords`` frequency list of zxcvbn 4.5.0 (PyPI ``zxcvbn``, MIT licence,
``LICENSE.common_passwords``), which ranks leaked passwords by how often they occur. Used by
:mod:`api.passwords` to refuse common passwords.
"""
