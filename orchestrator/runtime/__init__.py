"""The process: settings wired into services, the CLI, logs, metrics and the periodic monitor."""
