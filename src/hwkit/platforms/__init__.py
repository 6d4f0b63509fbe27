"""Where grading runs besides this machine: Gradescope's autograder, otter's Docker engine."""
