"""Board controller for Vietnam's public electronic bulletin boards (bảng tin điện tử công cộng).

The package is layered as DESIGN.md describes: model, text, layout, compose, plan, protocol, store,
board, diag, hub, cli. A module imports only from the layers before its own.
"""

__version__ = "0.1.0"
