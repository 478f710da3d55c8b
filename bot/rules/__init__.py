"""What turns calendars into occurrences: one module per kind of message (pure)."""
