"""`make bench`: the grader against a serial ``otter run`` loop, in time, CPU and memory."""
