"""Board layer: everything that touches the outside world on the board (files, screen, network)."""
