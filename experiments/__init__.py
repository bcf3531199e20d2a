"""eqjax experiments: reproductions and benchmarks, run as ``python -m experiments``.

Each experiment is a module ``experiments/<name>.py`` with a one-line
``DESCRIPTION`` and ``main(argv: list[str]) -> int``. It writes its table (Markdown
and CSV) and plots (PNG) to ``experiments/results/<name>/`` and prints the table.
``--quick`` selects the small size used by the tests.
"""
