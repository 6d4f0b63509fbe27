"""Reporting: the gradebook, the class report and the counts of failing checks, from the grader's records."""
