"""Decoding, frame sampling, audio extraction, detection and crops."""
