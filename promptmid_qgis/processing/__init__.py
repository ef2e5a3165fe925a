"""Processing provider: Register raster pair, Train descriptor, Fine-tune ControlNet, Evaluate matching."""
