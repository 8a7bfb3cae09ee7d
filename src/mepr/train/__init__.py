"""Training of the three SSL-MEPR stages: data, losses, loop and the `train-*` commands."""
