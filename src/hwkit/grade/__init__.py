"""Grading, trusted side: one path for one submission, the batch, the fork and otter engines, the verdict, shards."""
