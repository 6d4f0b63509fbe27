"""The untrusted side: where a submission's notebook and the probes of its functions run, confined.

Its modules import nothing of the toolkit but each other and ``hwkit.wire`` (and ``wire``'s text helper);
``tests/test_layout.py`` checks it.
"""
