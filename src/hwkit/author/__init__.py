"""Authoring: the master notebook's questions and lists, the test contract, the build of ``dist/``, known submissions."""
