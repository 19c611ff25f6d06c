"""The demo host site for the chat widget: pages in this folder, served by `server.py` (see its docstring)."""
