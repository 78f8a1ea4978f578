"""Hooks and runner components (as ``mmdet.engine``); none of our own yet."""
