"""asv benchmarks of deltaprop (see asv.conf.json at the repository top level).

The modules import only deltaprop's stable public names (``deltaprop.MLP``,
``deltaprop.available_backends``, ``deltaprop.MLPClassifier``), so older commits can still be
measured; a benchmark whose backend or class does not exist at a commit raises
NotImplementedError in ``setup`` and is skipped.
"""
