"""Scoring (DER) and the clustering baselines streamdiar is compared with."""
