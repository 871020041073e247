"""Rendering of results: pivots, leaderboards, paper tables and figures."""
