"""Root key lifecycle: the next root version, offline k-of-n proposals, expiry warnings.

``changes``, ``proposal`` and ``expiry`` are pure (values in, a value or an error out); ``publish``
does the store and file I/O around them; ``cli`` is the ``otaseal root`` command group.
"""
