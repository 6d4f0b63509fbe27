"""hwkit: build an otter-grader homework from one master notebook, grade it without Docker, report, ship to Gradescope.

The stages, one subpackage each:

- ``author``: read the master notebook's questions, lint its tests, build ``dist/``, make known submissions;
- ``grade``: one grading path (``grading``), the batch (``batch``), the fork engine (``executor``), the
  trusted checks (``verdict``), shards and their merge;
- ``sandbox``: the untrusted side, where a submission runs; it imports nothing of the trusted side but ``wire``;
- ``report``: gradebook, class report, counts of failing checks;
- ``written``: written answers, from the student's PDF to the TA's pages and score sheet;
- ``platforms``: Gradescope's autograder entry point and otter's Docker engine;
- ``bench``: the benchmark against a serial ``otter run`` loop.

The names below are re-exported on first use, so that importing a part (the sandbox above all) does not
import the rest.
"""

from importlib import import_module

_EXPORTS = {
    "build_assignment": "hwkit.author.build",
    "grade_submissions": "hwkit.grade.batch",
    "materialise_known": "hwkit.author.known",
    "load_questions": "hwkit.author.questions",
    "read_master": "hwkit.author.questions",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hwkit' has no attribute {name!r}")
