"""Written answers: the student's PDF, the TA pages, the hand-graded scores."""
