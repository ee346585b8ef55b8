"""The Textual dashboard of a running hub (issue: the TUI). Not built yet."""
