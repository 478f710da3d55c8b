"""What each `wecom-reminder` command does, and the HTTP app that `run` serves."""
