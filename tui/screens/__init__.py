"""The dashboard's screens, one module each (tui.app lists them as modes)."""
