"""Scripts that peer libraries' Pythons run (``epoch_server.py``); deltaprop never imports them.

This folder holds nothing else, so a peers python that runs a script here has none of
deltaprop's modules on its path.
"""
