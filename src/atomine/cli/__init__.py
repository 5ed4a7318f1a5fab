"""The ``atomine`` command line (typer + rich): ``info``, ``convert``, ``simulate``, ``demo``.

This is the only package that parses arguments, prints for the user, or exits.
"""
