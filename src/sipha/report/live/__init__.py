"""The live page of a run or a load: a `Board` of what to show (`board`), a `LiveServer` that
serves it (`server`: WebSocket pushes every second, token-guarded controls), and the bridge to a
run that owns its own event loop (`bridge`). The charts use uPlot, vendored in ``static/`` at a
pinned version with its licence, so the page works offline.

Import the submodules: this package imports nothing, so `sipha load` without ``--web`` does not
pay for the web server."""
