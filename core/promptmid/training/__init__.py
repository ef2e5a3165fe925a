"""Training: stage 1 (ControlNet fine-tune on SAR -> optical) and stage 2 (descriptor learning, InfoNCE)."""
