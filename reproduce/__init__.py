"""Entry points that wire the parts together: ``data.py`` (write the embedded dataset), ``pretrain.py``,
``teacher.py``, ``table1.py`` ... ``table5.py``, ``record.py`` (write the recorded regression numbers) and
``bench.py``. Budgets (mmengine config files that fix data, model size, schedule and optimizer for every
method alike) live in ``budgets/``. This is the only package that imports ``methods``, ``downstream`` and
``tables`` together.
"""
