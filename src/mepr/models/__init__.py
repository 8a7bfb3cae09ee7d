"""Neural models of the three SSL-MEPR stages (import torch lazily: import these modules only
inside commands that train or predict)."""
