"""Toolkit for the autograded VAE homework: build the assignment, grade submissions."""

from .build import build_assignment
from .grade import grade_submissions
from .known import materialise_known
from .questions import load_questions, read_master

__all__ = ["build_assignment", "grade_submissions", "load_questions", "materialise_known", "read_master"]
