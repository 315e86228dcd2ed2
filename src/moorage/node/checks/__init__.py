"""The individual checks ``moorage doctor`` runs, one module per concern, each usable on its own."""
