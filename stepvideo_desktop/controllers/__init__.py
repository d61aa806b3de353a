"""One controller per concern, each wired by stepvideo_desktop.controller.Controller (the composition root).

Each gets the root `app` (services: store, queue, engine, hub, monitor; pages: composer, queue_view,
gallery, models, settings_page, window) and owns the behaviour of one part of the window. Calls that
tests replace (`app._confirm`, `app.ask_close_choice`, `app.stop_grace_s`) are looked up on the root
each time, so a patched root is honoured everywhere.
"""
