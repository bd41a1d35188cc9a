"""The `fathom` command line: the one place that knows every side (the worker, the bot, the
simulator, the renderer) and starts the one asked for."""
