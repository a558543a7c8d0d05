"""pirl: online RL fine-tuning for flow-matching VLA policies."""

__version__ = "0.1.0"
