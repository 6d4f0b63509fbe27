"""Toolkit for the autograded VAE homework: build the assignment, grade submissions."""

from .build import build_assignment
from .grade import grade_submissions
from .known import materialise_known
from .questions import QUESTIONS

__all__ = ["QUESTIONS", "build_assignment", "grade_submissions", "materialise_known"]
