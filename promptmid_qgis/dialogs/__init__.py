"""Dialogs: Register (the main job), Settings, and engine environment set-up."""
